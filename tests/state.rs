//! A restart loses no one: the state file keeps every dynamic entry with
//! its owner and the time it has left, is read back at start, survives a
//! kill -9 after a snapshot, and a damaged file is read as far as it is
//! sound.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ilsd::server::{Config, Server};

/// A fresh directory for one test's state file.
fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ilsd-state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(path: &Path) -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 2,
        min_ttl: 1,
        state_file: Some(path.to_path_buf()),
        ..Config::default()
    }
}

fn person(msgid: i32, cn: &str, ttl: &str) -> Vec<u8> {
    add(
        msgid,
        format!("cn={cn},ou=Dynamic,o=Intranet").as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[cn.as_bytes()]),
            (b"givenName", &[b"M\xfcller"]),
            (b"entryTTL", &[ttl.as_bytes()]),
        ],
    )
}

/// Every person with its TTL and owner, as an administrator sees them.
fn people(addr: std::net::SocketAddr) -> Vec<(String, u64, String)> {
    let mut raw = Raw::connect(addr);
    assert_eq!(
        raw.code(&bind_simple(1, 3, b"cn=admin,o=Intranet", b"secret")),
        SUCCESS
    );
    let mut found: Vec<_> = raw
        .found(&search(
            2,
            b"ou=Dynamic,o=Intranet",
            1,
            f::present(b"cn"),
            &[b"cn", b"entryTTL", b"ilsOwner", b"givenName"],
        ))
        .into_iter()
        .map(|e| {
            assert_eq!(e.first("givenName"), Some(&b"M\xfcller"[..]), "bytes kept");
            let text = |n| String::from_utf8_lossy(e.first(n).unwrap()).into_owned();
            (
                text("cn"),
                text("entryTTL").parse().unwrap(),
                text("ilsOwner"),
            )
        })
        .collect();
    found.sort();
    found
}

fn with_admin(mut c: Config) -> Config {
    c.set("account", "cn=admin,o=Intranet secret", true)
        .unwrap();
    c.set("admin", "cn=admin,o=Intranet", true).unwrap();
    c
}

#[test]
fn a_thousand_entries_come_back_with_their_owners_and_time_left() {
    let dir = state_dir("thousand");
    let path = dir.join("state.ldif");
    let server = Server::start(&with_admin(config(&path))).unwrap();
    for block in 0..4u8 {
        let mut raw = Raw::connect_from(server.local_addr(), Ipv4Addr::new(127, 0, 1, block));
        for i in 0..250 {
            let cn = format!("user{block}-{i}");
            assert_eq!(raw.code(&person(i + 1, &cn, "600")), SUCCESS);
        }
    }
    let mut raw = server_raw(&server);
    assert_eq!(raw.code(&person(1, "brief", "1")), SUCCESS);
    let before = people(server.local_addr());
    assert_eq!(before.len(), 1001);
    server.shutdown();
    assert!(path.exists(), "the stop writes the state file");

    // Down for a moment: the brief entry's second runs out meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let server = Server::start(&with_admin(config(&path))).unwrap();
    let after = people(server.local_addr());
    assert_eq!(after.len(), 1000, "all but the one whose time ran out");
    for ((cn, ttl, owner), (cn0, ttl0, owner0)) in
        after.iter().zip(before.iter().filter(|p| p.0 != "brief"))
    {
        assert_eq!((cn, owner), (cn0, owner0));
        assert!(ttl0 - ttl <= 2, "{cn}: {ttl} s left after {ttl0} s");
    }
    assert_eq!(after[0].2, "ip:127.0.1.0");
    assert_eq!(after[999].2, "ip:127.0.1.3");
    // The owners still own their entries after the restart.
    let mut stranger = Raw::connect_from(server.local_addr(), Ipv4Addr::new(127, 0, 2, 1));
    assert_eq!(
        stranger.code(&delete(5, b"cn=user0-1,ou=Dynamic,o=Intranet")),
        50
    );
    let mut owner = Raw::connect_from(server.local_addr(), Ipv4Addr::new(127, 0, 1, 0));
    assert_eq!(
        owner.code(&delete(5, b"cn=user0-1,ou=Dynamic,o=Intranet")),
        SUCCESS
    );
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

fn server_raw(server: &Server) -> Raw {
    Raw::connect(server.local_addr())
}

#[test]
fn application_entries_come_back_living_with_their_person() {
    let dir = state_dir("apps");
    let path = dir.join("state.ldif");
    let server = Server::start(&config(&path)).unwrap();
    let mut raw = server_raw(&server);
    assert_eq!(raw.code(&person(1, "eve", "600")), SUCCESS);
    let app = modify(
        2,
        b"cn=eve,ou=Dynamic,o=Intranet",
        &[
            (0, b"smodop", &[b"0"]),
            (0, b"sappid", &[b"ms-netmeeting"]),
            (0, b"sport", &[b"1503"]),
        ],
    );
    assert_eq!(raw.code(&app), SUCCESS);
    server.shutdown();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("ilsLivesWith: cn=eve,ou=Dynamic,o=Intranet"),
        "{text}"
    );

    let server = Server::start(&config(&path)).unwrap();
    let mut raw = server_raw(&server);
    let shown = raw.found(&search(
        3,
        b"cn=eve,ou=Dynamic,o=Intranet",
        0,
        f::present(b"cn"),
        &[b"sport"],
    ));
    assert_eq!(
        shown[0].first("sport"),
        Some(&b"1503"[..]),
        "merged with its application"
    );
    // Deleting the person takes the application with it, as before.
    assert_eq!(
        raw.code(&delete(4, b"cn=eve,ou=Dynamic,o=Intranet")),
        SUCCESS
    );
    let apps = raw.found(&search(
        5,
        b"ou=Applications,o=Intranet",
        2,
        f::eq(b"cn", b"eve"),
        &[],
    ));
    assert!(apps.is_empty());
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_damaged_file_is_read_as_far_as_it_is_sound_and_kept_aside() {
    let dir = state_dir("damaged");
    let path = dir.join("state.ldif");
    let server = Server::start(&config(&path)).unwrap();
    let mut raw = server_raw(&server);
    for (i, cn) in ["a", "b", "c", "d"].iter().enumerate() {
        assert_eq!(raw.code(&person(i as i32 + 1, cn, "600")), SUCCESS);
    }
    server.shutdown();
    let text = std::fs::read_to_string(&path).unwrap();
    // Garbage in the middle of the first record, and the file cut short
    // in the middle of the last one (the records come in the table's
    // order, whichever entries those are).
    let starts: Vec<usize> = text.match_indices("\ndn: ").map(|(at, _)| at + 1).collect();
    assert_eq!(starts.len(), 4);
    let first_end = starts[0] + text[starts[0]..].find("\n\n").unwrap();
    let mut damaged = text[..starts[0]].to_string();
    let first_dn = text[starts[0]..].lines().next().unwrap();
    damaged.push_str(&format!("{first_dn}\n\u{1}\u{2}garbage without a colon\n"));
    damaged.push_str(&text[first_end..]);
    let last = damaged.rfind("\ndn: ").unwrap() + 1;
    let cut = last + damaged[last..].find("ilsDeadline").unwrap();
    std::fs::write(&path, &damaged[..cut]).unwrap();

    let server = Server::start(&config(&path)).unwrap();
    let mut raw = server_raw(&server);
    let found = raw.found(&search(
        1,
        b"ou=Dynamic,o=Intranet",
        1,
        f::present(b"cn"),
        &[b"cn"],
    ));
    assert_eq!(found.len(), 2, "the two sound records of four");
    let bad = dir.join("state.ldif.bad");
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        &damaged[..cut],
        "kept aside"
    );
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_state_directory_that_cannot_be_written_stops_the_start() {
    let path = std::env::temp_dir()
        .join(format!("ilsd-no-such-dir-{}", std::process::id()))
        .join("state.ldif");
    let err = match Server::start(&config(&path)) {
        Ok(_) => panic!("started without a place to keep its state"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot write"), "{err}");
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn daemon(path: &Path, port: u16) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_ilsd"))
        .args(["-f", "/dev/null", "-l", &format!("127.0.0.1:{port}")])
        .args([
            "--state-file",
            path.to_str().unwrap(),
            "--state-interval",
            "1",
        ])
        .args(["--log-level", "warn"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ilsd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

#[test]
fn kill_9_after_a_snapshot_loses_nothing_of_it() {
    let dir = state_dir("kill");
    let path = dir.join("state.ldif");
    let port = free_port();
    let server = daemon(&path, port);
    let mut raw = Raw::connect(([127, 0, 0, 1], port).into());
    assert_eq!(raw.code(&person(1, "survivor", "600")), SUCCESS);
    // The next snapshot holds the entry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&path)
        .unwrap_or_default()
        .contains("cn=survivor")
    {
        assert!(Instant::now() < deadline, "no snapshot within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = server;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let port = free_port();
    let _server = daemon(&path, port);
    let mut raw = Raw::connect(([127, 0, 0, 1], port).into());
    let found = raw.found(&search(
        1,
        b"ou=Dynamic,o=Intranet",
        1,
        f::eq(b"cn", b"survivor"),
        &[b"cn"],
    ));
    assert_eq!(found.len(), 1);
    drop(_server);
    let _ = std::fs::remove_dir_all(dir);
}
