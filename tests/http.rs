//! The HTTP side as its users meet it: the "who is online" page in a
//! real browser (headless Chromium), `/metrics` through Prometheus' own
//! parser (python prometheus_client), `/healthz`, `http-allow`, and
//! hostile HTTP clients beside LDAP ones.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use ilsd::auth::moderation::Cidr;
use ilsd::server::Config;

fn http_server(change: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with(|c| {
        c.http_listen = vec!["127.0.0.1:0".parse().unwrap()];
        change(c);
    })
}

fn http_addr(server: &TestServer) -> SocketAddr {
    server.server.http_addrs()[0]
}

/// Chromium, installed with apt-get when missing (as root, as CI runs).
fn chromium() -> &'static PathBuf {
    static BROWSER: OnceLock<PathBuf> = OnceLock::new();
    BROWSER.get_or_init(|| {
        let find = || {
            ["chromium", "chromium-browser"].iter().find_map(|name| {
                let out = Command::new("sh")
                    .args(["-c", &format!("command -v {name}")])
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            })
        };
        if let Some(found) = find() {
            return found;
        }
        if nix::unistd::geteuid().is_root() {
            let _ = Command::new("apt-get")
                .args([
                    "-o",
                    "DPkg::Lock::Timeout=300",
                    "install",
                    "-y",
                    "-q",
                    "chromium",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        find().unwrap_or_else(|| {
            panic!(
                "Chromium is needed for the page tests and could not be installed \
                 (apt-get install chromium, as root)"
            )
        })
    })
}

fn browser(args: &[&str], url: &str) -> String {
    let profile = tempdir("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page as the browser built it.
fn dom(url: &str) -> String {
    browser(&["--dump-dom"], url)
}

/// A GET by hand: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_from(addr, path, None)
}

fn get_from(addr: SocketAddr, path: &str, from: Option<std::net::Ipv4Addr>) -> (u16, String) {
    // curl, a client nobody here wrote.
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]);
    if let Some(ip) = from {
        cmd.args(["--interface", &ip.to_string()]);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        eprintln!("curl: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Registers the people the page tests look for, with the ldap3 crate
/// and, for bytes it cannot send, the raw client.
fn register_people(server: &TestServer) {
    let mut ldap = server.ldap();
    let person = |cn: &str, given: &str, sur: &str, extra: Vec<(&str, Vec<&str>)>| {
        let mut attrs: Vec<(String, std::collections::HashSet<String>)> = vec![
            ("objectClass".into(), ["RTPerson".to_string()].into()),
            ("cn".into(), [cn.to_string()].into()),
            ("givenName".into(), [given.to_string()].into()),
            ("surName".into(), [sur.to_string()].into()),
            ("rfc822Mailbox".into(), [cn.to_string()].into()),
            ("location".into(), ["Lisbon".to_string()].into()),
            ("comment".into(), ["hello".to_string()].into()),
            ("ipAddress".into(), ["1613317642".to_string()].into()),
        ];
        for (a, v) in extra {
            attrs.push((a.into(), v.into_iter().map(String::from).collect()));
        }
        (format!("cn={cn},ou=Dynamic,o=Intranet"), attrs)
    };
    for (dn, attrs) in [
        person("alice@example.org", "Alice", "Example", vec![]),
        person("albert@example.org", "Albert", "Other", vec![]),
        person("bob@example.org", "Bob", "Builder", vec![]),
        person(
            "mallory@example.org",
            "<img src=x onerror=alert(1)>",
            "<script>alert(2)</script>",
            vec![],
        ),
        person(
            "hidden@example.org",
            "Hidden",
            "Person",
            vec![("sFlags", vec!["0"])],
        ),
    ] {
        let attrs: Vec<(&str, std::collections::HashSet<&str>)> = attrs
            .iter()
            .map(|(a, v)| (a.as_str(), v.iter().map(String::as_str).collect()))
            .collect();
        ldap.add(&dn, attrs).unwrap().success().unwrap();
    }
    // NetMeeting writes names in Windows-1252: "Renée Müller".
    let mut raw = server.raw();
    let (_, done) = raw.call(&add(
        7,
        b"cn=renee@example.org,ou=Dynamic,o=Intranet",
        &[
            (b"objectClass", &[b"RTPerson"]),
            (b"cn", &[b"renee@example.org"]),
            (b"givenName", &[b"Ren\xe9e"]),
            (b"surName", &[b"M\xfcller"]),
        ],
    ));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
}

#[test]
fn the_page_in_a_browser_shows_who_is_online_and_nothing_it_should_not() {
    let server = http_server(|_| {});
    register_people(&server);
    let url = format!("http://{}/", http_addr(&server));
    let page = dom(&url);
    for name in [
        "Alice Example",
        "Albert Other",
        "Bob Builder",
        "Renée Müller",
    ] {
        assert!(page.contains(name), "{name} is not on the page: {page}");
    }
    // The hostile name is text, not markup: escaped in the DOM, and no
    // element was made of it.
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the hostile name is not shown as text: {page}"
    );
    assert!(
        !page.contains("<img") && !page.contains("<script"),
        "{page}"
    );
    assert!(!page.contains("Hidden"), "a hidden user is shown: {page}");
    assert!(
        !page.contains("10.70.41.96"),
        "addresses are shown by default"
    );
    assert!(page.contains("5 online"), "{page}");

    // The search box, as a person types into it: "al%".
    let found = dom(&format!("{url}?q=al%25"));
    assert!(
        found.contains("Alice Example") && found.contains("Albert Other"),
        "{found}"
    );
    assert!(!found.contains("Bob Builder"), "{found}");
    // An exact name, case aside, finds one.
    let found = dom(&format!("{url}?q=BOB%40example.org"));
    assert!(
        found.contains("Bob Builder") && !found.contains("Alice"),
        "{found}"
    );

    // A screenshot for whoever looks at the test's artifacts.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("who-is-online.png");
    let _ = std::fs::remove_file(&shot);
    browser(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1024,768",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn addresses_show_only_when_the_administrator_asks() {
    let server = http_server(|c| c.http_show_addresses = true);
    register_people(&server);
    let page = dom(&format!("http://{}/", http_addr(&server)));
    assert!(page.contains("10.70.41.96"), "{page}");
    let (code, json) = get(http_addr(&server), "/users.json");
    assert_eq!(code, 200);
    assert!(json.contains("\"address\":\"10.70.41.96\""), "{json}");
}

#[test]
fn users_json_gives_the_same_list_for_scripts() {
    let server = http_server(|_| {});
    register_people(&server);
    let script = r#"
import json, sys, urllib.request
doc = json.load(urllib.request.urlopen(sys.argv[1]))
print(doc["online"], doc["found"], ",".join(u["name"] for u in doc["users"]), "address" in doc["users"][0])
"#;
    let out = run_python(
        script,
        &[format!("http://{}/users.json?q=al%25", http_addr(&server))],
    );
    assert_eq!(out.trim(), "5 2 Albert Other,Alice Example False");
}

#[test]
fn a_large_directory_is_paged_and_sorted_by_name() {
    let server = http_server(|_| {});
    let mut raw = server.raw();
    for i in 0..120 {
        let cn = format!("user{i:03}@example.org");
        let dn = format!("cn={cn},ou=Dynamic,o=Intranet");
        let (_, done) = raw.call(&add(
            i + 1,
            dn.as_bytes(),
            &[(b"objectClass", &[b"RTPerson"]), (b"cn", &[cn.as_bytes()])],
        ));
        assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    }
    let addr = http_addr(&server);
    let (_, first) = get(addr, "/");
    assert!(
        first.contains("user000@") && first.contains("user049@") && !first.contains("user050@")
    );
    assert!(
        first.contains("Page 1 of 3") && first.contains("rel=\"next\""),
        "{first}"
    );
    let (_, third) = get(addr, "/?page=3");
    assert!(
        third.contains("user119@") && !third.contains("user099@"),
        "{third}"
    );
    let (_, down) = get(addr, "/?sort=-name");
    let at = |s: &str| down.find(s).unwrap();
    assert!(at("user119@") < at("user118@"), "not sorted down");
}

/// The samples of `/metrics` as Prometheus' own parser reads them:
/// "name{label=value,...} value" lines.
fn scrape(addr: SocketAddr) -> Vec<String> {
    let script = r#"
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1]).read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;
    run_python(script, &[format!("http://{addr}/metrics")])
        .lines()
        .map(str::to_string)
        .collect()
}

fn sample(samples: &[String], key: &str) -> f64 {
    samples
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_parse_and_move_with_the_operations() {
    let server = http_server(|_| {});
    let addr = http_addr(&server);
    let before = scrape(addr);
    register_people(&server);
    let mut raw = server.raw();
    for i in 0..5 {
        raw.call(&search(
            100 + i,
            b"ou=Dynamic,o=Intranet",
            1,
            f::present(b"cn"),
            &[],
        ));
    }
    raw.call(&search(
        200,
        b"cn=nobody,ou=Dynamic,o=Intranet",
        0,
        f::present(b"cn"),
        &[],
    ));
    let after = scrape(addr);
    let moved = |key: &str| sample(&after, key) - sample(&before, key);
    assert_eq!(
        moved("ilsd_operations_total{code=0,op=search}"),
        5.0,
        "{after:?}"
    );
    assert_eq!(moved("ilsd_operations_total{code=32,op=search}"), 1.0);
    assert_eq!(moved("ilsd_operations_total{code=0,op=add}"), 6.0);
    assert_eq!(moved("ilsd_registrations_total{}"), 6.0);
    assert_eq!(
        moved("ilsd_operation_duration_seconds_count{op=search}"),
        6.0
    );
    assert!(
        sample(
            &after,
            "ilsd_operation_duration_seconds_bucket{le=+Inf,op=search}"
        ) >= 6.0
    );
    assert_eq!(sample(&after, "ilsd_entries{class=person}"), 6.0);
    assert!(sample(&after, "ilsd_connections_accepted_total{}") >= 2.0);
    assert!(sample(&after, "ilsd_connections_open{}") >= 1.0);
    assert!(moved("ilsd_received_bytes_total{}") > 0.0 || moved("ilsd_received_total{}") > 0.0);
    assert!(sample(&after, "ilsd_store_memory_bytes{}") > 0.0);
    let (in_use, held) = (
        sample(&after, "ilsd_heap_bytes{kind=in_use}"),
        sample(&after, "ilsd_heap_bytes{kind=held}"),
    );
    assert!(in_use > 0.0 && held >= in_use, "{in_use} {held}");
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("ilsd_build_info{version=")),
        "{after:?}"
    );
    // One source, two views: cn=Monitor says the same.
    let (entries, _) = raw.call(&search(
        300,
        b"cn=Monitor,ou=Admin,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[],
    ));
    let registrations = entries[0].first("registrations").unwrap();
    assert_eq!(registrations, b"6");
}

#[test]
fn healthz_says_ok_while_serving_and_503_while_stopping() {
    let server = http_server(|c| c.stop_timeout = Duration::from_secs(3));
    let addr = http_addr(&server);
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
    // A client that asked for a large answer and does not read it holds
    // the stop open until stop-timeout.
    let mut raw = server.raw();
    add_large_people(&mut raw, 200, 100 * 1024);
    let mut holder = TcpStream::connect(server.addr).unwrap();
    holder
        .write_all(&search(
            1,
            b"ou=Dynamic,o=Intranet",
            1,
            f::present(b"cn"),
            &[],
        ))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stopper = std::thread::spawn(move || server.server.shutdown());
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = get(addr, "/healthz");
    while seen.0 != 503 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        seen = get(addr, "/healthz");
    }
    assert_eq!(seen, (503, "stopping\n".into()));
    stopper.join().unwrap();
    let _ = holder.read(&mut [0u8; 16]);
}

#[test]
fn addresses_outside_http_allow_get_403() {
    let server = http_server(|c| c.http_allow = vec![Cidr::parse("127.0.0.2").unwrap()]);
    let addr = http_addr(&server);
    assert_eq!(get_from(addr, "/", Some([127, 0, 0, 1].into())).0, 403);
    assert_eq!(
        get_from(addr, "/metrics", Some([127, 0, 0, 1].into())).0,
        403
    );
    assert_eq!(
        get_from(addr, "/healthz", Some([127, 0, 0, 2].into())).0,
        200
    );
    let default = http_server(|_| {});
    assert_eq!(
        get_from(http_addr(&default), "/healthz", Some([127, 0, 0, 3].into())).0,
        200
    );
}

#[test]
fn slow_and_oversized_http_requests_do_not_disturb_ldap_clients() {
    let server = http_server(|c| {
        c.http_timeout = Duration::from_secs(3);
        c.http_max_connections = 4;
    });
    let addr = http_addr(&server);
    // Slow clients: a byte, then nothing, on more connections than the
    // workers and the queue hold.
    let slow: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(b"G");
            s
        })
        .collect();
    // An oversized request: a header of a megabyte, refused early.
    let mut big = TcpStream::connect(addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let _ = big.write_all(head.as_bytes());
    // LDAP clients meanwhile are served at once.
    let mut raw = server.raw();
    for i in 0..50 {
        let started = Instant::now();
        let (_, done) = raw.call(&search(i + 1, b"", 0, f::present(b"objectClass"), &[]));
        assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "LDAP waited {:?}",
            started.elapsed()
        );
    }
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431")
            || answer.starts_with("HTTP/1.1 503")
            || answer.is_empty(),
        "{answer:.80}"
    );
    // Once the slow ones time out, the page is served again.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut code = get(addr, "/healthz").0;
    while code != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        code = get(addr, "/healthz").0;
    }
    assert_eq!(code, 200);
}

#[test]
fn a_directory_larger_than_a_slice_of_the_store_is_listed_whole() {
    let server = http_server(|_| {});
    let mut raw = server.raw();
    let count = 2600;
    for i in 0..count {
        let cn = format!("many{i:04}@example.org");
        let dn = format!("cn={cn},ou=Dynamic,o=Intranet");
        raw.send(&add(
            i + 1,
            dn.as_bytes(),
            &[(b"objectClass", &[b"RTPerson"]), (b"cn", &[cn.as_bytes()])],
        ));
    }
    for _ in 0..count {
        assert!(matches!(raw.recv(), Some(Response::Result { code: 0, .. })));
    }
    let (code, page) = get(http_addr(&server), "/");
    assert_eq!(code, 200);
    assert!(page.contains(&format!("{count} online")), "{:.300}", page);
    let script = r#"
import json, sys, urllib.request
names = set()
for page in (1, 2, 3):
    doc = json.load(urllib.request.urlopen(sys.argv[1] + str(page)))
    names.update(u["cn"] for u in doc["users"])
print(len(names), doc["pages"])
"#;
    let out = run_python(
        script,
        &[format!("http://{}/users.json?page=", http_addr(&server))],
    );
    assert_eq!(out.trim(), format!("{count} 3"));
}

#[test]
fn conferences_are_listed_escaped_and_no_more_than_two_hundred() {
    let server = http_server(|_| {});
    let mut raw = server.raw();
    let count = 250;
    for i in 0..count {
        let uid = format!("Conf{i:03} <b>");
        let dn = format!("uid=Conf{i:03},ou=Dynamic,o=Intranet");
        raw.send(&add(
            i + 1,
            dn.as_bytes(),
            &[
                (b"objectClass", &[b"rtConference"]),
                (b"uid", &[uid.as_bytes()]),
                (b"generalDescription", &[b"weekly"]),
            ],
        ));
    }
    for _ in 0..count {
        assert!(matches!(raw.recv(), Some(Response::Result { code: 0, .. })));
    }
    let page = dom(&format!("http://{}/", http_addr(&server)));
    assert!(page.contains("250 conference(s)"), "{:.300}", page);
    assert!(page.contains("Conf000 &lt;b&gt;") && page.contains("Conf199 &lt;b&gt;"));
    assert!(
        !page.contains("Conf200"),
        "more than 200 conferences listed"
    );
    assert!(page.contains("The first 200 of 250 conferences."));
}

#[test]
fn a_host_that_is_not_this_server_gets_421() {
    let server = http_server(|c| c.http_hosts = vec!["ils.example.org".into()]);
    let addr = http_addr(&server);
    let status = |host: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &format!("Host: {host}"),
            ])
            .arg(format!("http://{addr}/users.json"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A page whose domain was rebound to 127.0.0.1, in the operator's
    // browser: its requests carry its own name.
    assert_eq!(status("rebound.example.com"), "421");
    assert_eq!(status("ils.example.org:8002"), "200");
    assert_eq!(status("localhost"), "200");
}

#[test]
fn only_get_and_head_are_served() {
    let server = http_server(|_| {});
    let addr = http_addr(&server);
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-d",
            "x=1",
        ])
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405");
    assert_eq!(get(addr, "/nothing-here").0, 404);
    let out = Command::new("curl")
        .args(["-s", "-I"])
        .arg(format!("http://{addr}/healthz"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'"),
        "{head}"
    );
}
