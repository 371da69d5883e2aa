//! Against a real domain controller: NTLM logons passed through to a
//! Samba Active Directory domain by ntlm_auth, right and wrong passwords,
//! an unknown user, and the helper killed in the middle of a run.
//!
//! The DC is `../shared/peers/samba-ad/start.sh`, on loopback; it needs
//! root. Without root these tests say why and do nothing; CI runs them as
//! root.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::daemon::*;
use common::*;
use ilsd::server::Config;

/// What `start.sh` printed about the running DC (`AD_SMBCONF=...` and
/// the like); `None` without root.
fn facts() -> Option<&'static Vec<(String, String)>> {
    static FACTS: OnceLock<Option<Vec<(String, String)>>> = OnceLock::new();
    FACTS
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                // CI runs as root: there a missing root is a failure.
                assert!(
                    std::env::var_os("ILSD_CI").is_none(),
                    "the Samba AD DC peer needs root, and CI runs as root"
                );
                eprintln!(
                    "SKIPPED: the Samba AD DC peer needs root; run the tests as root (as CI does)"
                );
                return None;
            }
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/samba-ad/start.sh");
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{} failed: {}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let facts: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| k.starts_with("AD_"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert!(
                facts.iter().any(|(k, _)| k == "AD_SMBCONF"),
                "no AD_SMBCONF in what start.sh printed: {text}"
            );
            Some(facts)
        })
        .as_ref()
}

fn fact(name: &str) -> String {
    facts()
        .and_then(|f| f.iter().find(|(k, _)| k == name))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("start.sh printed no {name}"))
}

/// The DC's smb.conf, once the DC runs; `None` without root.
fn domain() -> Option<PathBuf> {
    facts().map(|_| PathBuf::from(fact("AD_SMBCONF")))
}

fn helper(conf: &std::path::Path) -> Vec<String> {
    [
        "ntlm_auth",
        &format!("--configfile={}", conf.display()),
        "--helper-protocol=ntlm-server-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// python ldap3's NTLM bind and WhoAmI.
fn ldap3_bind(port: u16, user: &str, password: &str) -> String {
    let script = r#"
import sys
from ldap3 import Server, Connection, NTLM
c = Connection(Server('127.0.0.1', port=int(sys.argv[1])), user=sys.argv[2], password=sys.argv[3], authentication=NTLM)
ok = c.bind()
print(c.result['result'], (c.extend.standard.who_am_i() or '') if ok else '-')
"#;
    run_python(script, &[port.to_string(), user.into(), password.into()])
}

#[test]
fn logons_pass_through_to_the_domain() {
    let Some(conf) = domain() else { return };
    let command = helper(&conf);
    let server = TestServer::with(move |c: &mut Config| {
        c.ntlm_helper = Some(command);
        c.ntlm_helpers = 2;
    });
    let port = server.addr.port();
    assert_eq!(
        ldap3_bind(port, "ILSTEST\\alice", "Al1ce-Pass-ils"),
        "0 u:ilstest\\alice"
    );
    assert_eq!(ldap3_bind(port, "ILSTEST\\alice", "wrong"), "49 -");
    assert_eq!(
        ldap3_bind(port, "ILSTEST\\nobody", "Al1ce-Pass-ils"),
        "49 -",
        "unknown user"
    );

    // The helpers killed in the middle of a run: the next logon starts a
    // fresh one.
    let _ = Command::new("pkill")
        .args(["-f", "^ntlm_auth .*ntlm-server-1"])
        .status();
    assert_eq!(
        ldap3_bind(port, "ILSTEST\\alice", "Al1ce-Pass-ils"),
        "0 u:ilstest\\alice"
    );

    // A simple bind as a domain user, by the basic helper.
    let mut raw = server.raw();
    assert_eq!(
        raw.code(&bind_simple(1, 3, b"ILSTEST\\alice", b"Al1ce-Pass-ils")),
        SUCCESS
    );
    assert_eq!(
        raw.code(&bind_simple(2, 3, b"alice@ils.test", b"Al1ce-Pass-ils")),
        SUCCESS
    );
    assert_eq!(raw.code(&bind_simple(3, 3, b"ILSTEST\\alice", b"nope")), 49);
}

#[test]
fn a_helper_that_cannot_answer_makes_the_logon_unavailable() {
    let Some(_) = domain() else { return };
    let server = TestServer::with(|c: &mut Config| {
        c.ntlm_helper = Some(vec!["/nonexistent/ntlm_auth".into()]);
        c.ntlm_helper_timeout = std::time::Duration::from_secs(1);
    });
    assert_eq!(
        ldap3_bind(server.addr.port(), "ILSTEST\\alice", "Al1ce-Pass-ils"),
        "52 -"
    );
}

/// Where this run's ilsd publishes itself: the DC, as root, the TLS
/// settings, and the name (each test its own).
fn publish_args(scratch: &Scratch, uri: &str, name: &str) -> Vec<String> {
    let password = scratch.file("publish.pw", &format!("{}\n", fact("AD_ADMIN_PASS")));
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    [
        "--publish-uri",
        uri,
        "--publish-bind",
        &fact("AD_ADMIN"),
        "--publish-password-file",
        password.to_str().unwrap(),
        "--publish-ca-file",
        &fact("AD_CA"),
        "--publish-name",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start_published(args: &[String]) -> Daemon {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-f",
        "/dev/null",
        "-l",
        "127.0.0.1:0",
        "--log-level",
        "info",
    ])
    .args(args);
    Daemon::spawn(cmd)
}

/// One of OpenLDAP's tools against the DC over LDAPS, bound as its
/// administrator.
fn dc_tool(tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env("LDAPTLS_CACERT", fact("AD_CA")).args([
        "-H",
        &fact("AD_LDAPS"),
        "-D",
        &fact("AD_ADMIN"),
        "-w",
        &fact("AD_ADMIN_PASS"),
    ]);
    cmd
}

/// OpenLDAP's ldapsearch against the DC, as the administrator, over
/// LDAPS: the entries found, each as (attribute, value) pairs with the
/// base64 values decoded.
fn dc_search(base: &str, filter: &str) -> Vec<Vec<(String, Vec<u8>)>> {
    use base64::Engine;
    let out = dc_tool("ldapsearch")
        .args(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter])
        .output()
        .expect("ldapsearch runs (ldap-utils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // 32: noSuchObject, an empty answer.
    assert!(
        out.status.success() || out.status.code() == Some(32),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|entry| {
            entry
                .lines()
                .filter_map(|line| {
                    if let Some((a, v)) = line.split_once(":: ") {
                        let v = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
                        Some((a.to_lowercase(), v))
                    } else {
                        let (a, v) = line.split_once(": ")?;
                        Some((a.to_lowercase(), v.as_bytes().to_vec()))
                    }
                })
                .collect()
        })
        .collect()
}

fn values<'a>(entry: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    entry
        .iter()
        .filter(|(a, _)| a == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// The ILS class GUID of [MS-TAIL] 3.5.8, as an LDAP filter escapes it.
const ILS_CLASS_FILTER: &str = "(&(objectClass=serviceInstance)(cn=*)(serviceClassID=\\40\\79\\f1\\c9\\a7\\79\\d1\\11\\b0\\08\\00\\c0\\4f\\c3\\01\\ee))";

fn winsock_services() -> String {
    format!("CN=WinsockServices,CN=System,{}", fact("AD_BASE"))
}

fn list_servers(scratch: &Scratch, name: &str) -> String {
    let out = Command::new(BIN)
        .args(["-f", "/dev/null", "--list-servers"])
        .args(publish_args(scratch, &fact("AD_LDAPS"), name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "--list-servers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other run of these tests uses.
fn instance_name(test: &str) -> String {
    format!("{test}-{}.ils.test", std::process::id())
}

/// Deletes a test's serviceInstance from the DC when the test ends.
struct Remove(String);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = dc_tool("ldapdelete").arg(&self.0).output();
    }
}

#[test]
fn publishes_itself_in_the_domain_and_withdraws_at_sigterm() {
    if domain().is_none() {
        return;
    }
    let scratch = Scratch::new("publish");
    let name = instance_name("ils-a");
    // ldap:// is StartTLS: the DC refuses simple binds without TLS.
    let mut daemon = start_published(&publish_args(&scratch, &fact("AD_LDAP"), &name));
    let line = daemon.wait_for("publish: CN=");
    let dn = format!("CN={name},{}", winsock_services());
    let _remove = Remove(dn.clone());
    assert!(line.contains(&dn), "{line}");

    // The search of [MS-TAIL] 3.5.8 finds it, with what 3.5.9 says.
    let found = dc_search(&winsock_services(), ILS_CLASS_FILTER);
    let entry = found
        .iter()
        .find(|e| values(e, "cn") == [name.as_bytes()])
        .unwrap_or_else(|| panic!("{name} not found by the 3.5.8 search: {found:?}"));
    assert!(values(entry, "objectclass").contains(&&b"serviceInstance"[..]));
    assert_eq!(values(entry, "displayname"), [name.as_bytes()]);
    assert_eq!(
        values(entry, "serviceinstanceversion"),
        [&[5u8, 0, 0, 0, 1, 0, 0, 0][..]]
    );
    let addresses: Vec<_> = values(entry, "winsockaddresses")
        .iter()
        .map(|v| ilsd::publish::winsock::decode_address(v))
        .collect();
    let listening: std::net::SocketAddr = ([127, 0, 0, 1], daemon.port).into();
    assert_eq!(addresses, [Some(listening)]);

    // An administrator checks it the same way.
    let listed = list_servers(&scratch, &name);
    assert!(
        listed.contains(&format!("{name}\t{listening}\tanswers")),
        "{listed}"
    );

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(daemon.wait(Duration::from_secs(15)).success());
    let after = dc_search(&dn, "(objectClass=*)");
    assert_eq!(after.len(), 1, "the entry stays: {after:?}");
    assert!(
        values(&after[0], "winsockaddresses").is_empty(),
        "{after:?}"
    );
    let listed = list_servers(&scratch, &name);
    assert!(
        listed.contains(&format!("{name}\t-\twithdrawn")),
        "{listed}"
    );
}

#[test]
fn an_entry_published_before_is_brought_up_to_date_not_duplicated() {
    if domain().is_none() {
        return;
    }
    let scratch = Scratch::new("republish");
    let name = instance_name("ils-b");
    let dn = format!("CN={name},{}", winsock_services());
    let _remove = Remove(dn.clone());
    // What an older server left: another display name and version, an
    // address that is not ours.
    let ldif = scratch.file(
        "old.ldif",
        &format!(
            "dn: {dn}\nobjectClass: serviceInstance\ncn: {name}\ndisplayName: old\nserviceClassID:: QHnxyad50RGwCADAT8MB7g==\nserviceInstanceVersion:: AQAAAAAAAAA=\nwinsockAddresses:: AAAAABAAAAAAAAAAEAAAAAEAAAAGAAAAAgAD6sAAAgoAAAAAAAAAAAIAA+rAAAIKAAAAAAAAAAA=\n"
        ),
    );
    let out = dc_tool("ldapadd").arg("-f").arg(&ldif).output().unwrap();
    assert!(
        out.status.success(),
        "ldapadd: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let daemon = start_published(&publish_args(&scratch, &fact("AD_LDAPS"), &name));
    daemon.wait_for("publish: CN=");
    let found: Vec<_> = dc_search(&winsock_services(), ILS_CLASS_FILTER)
        .into_iter()
        .filter(|e| values(e, "cn") == [name.as_bytes()])
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(values(&found[0], "displayname"), [name.as_bytes()]);
    assert_eq!(
        values(&found[0], "serviceinstanceversion"),
        [&[5u8, 0, 0, 0, 1, 0, 0, 0][..]]
    );
    let addresses: Vec<_> = values(&found[0], "winsockaddresses")
        .iter()
        .map(|v| ilsd::publish::winsock::decode_address(v))
        .collect();
    assert_eq!(addresses, [Some(([127, 0, 0, 1], daemon.port).into())]);
}

/// A stand-in for a DC that is down, then up: nothing listens on its
/// port until [`Relay::open`], which then relays every connection to the
/// real DC's LDAPS port (its certificate names 127.0.0.1).
struct Relay {
    port: u16,
}

impl Relay {
    fn closed() -> Relay {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        Relay { port }
    }

    fn open(&self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(dc) = std::net::TcpStream::connect("127.0.0.1:636") else {
                    continue;
                };
                let (mut c2, mut d2) = (client.try_clone().unwrap(), dc.try_clone().unwrap());
                let (mut c1, mut d1) = (client, dc);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut d1);
                    let _ = d1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut d2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
    }
}

#[test]
fn a_dc_down_at_start_delays_nothing_and_is_published_to_once_up() {
    if domain().is_none() {
        return;
    }
    let scratch = Scratch::new("dc-down");
    let name = instance_name("ils-c");
    let _remove = Remove(format!("CN={name},{}", winsock_services()));
    let relay = Relay::closed();
    let uri = format!("ldaps://127.0.0.1:{}", relay.port);
    let daemon = start_published(&publish_args(&scratch, &uri, &name));
    // The ILS service is up while the DC is not.
    daemon.wait_for("trying again in");
    let mut raw = daemon.raw();
    let (_, done) = raw.call(&search(2, b"", 0, f::present(b"objectClass"), &[]));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    relay.open();
    let line = daemon.wait_for("publish: CN=");
    assert!(line.contains(&name), "{line}");
    let found = dc_search(
        &format!("CN={name},{}", winsock_services()),
        "(objectClass=*)",
    );
    assert_eq!(values(&found[0], "winsockaddresses").len(), 1);
}
