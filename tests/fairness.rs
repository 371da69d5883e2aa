//! The many against the few: one address cannot take every connection
//! slot, a guessed password slows its guesser and no one else, and IPv4
//! and IPv6 listen side by side on one port.

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use ilsd::server::{Config, Server};

#[test]
fn one_address_cannot_take_every_connection() {
    let server = TestServer::with(|c| c.max_connections_per_address = 256);
    let crowd = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for _ in 0..256 {
        let mut raw = Raw::connect_from(server.addr, crowd);
        // An answer proves the connection is being served, not queued.
        assert_eq!(raw.code(&bind_v2(1)), SUCCESS);
        held.push(raw);
    }
    let mut one_more = Raw::connect_from(server.addr, crowd);
    one_more.send(&bind_v2(1));
    match one_more.recv() {
        Some(Response::Extended { code, name, .. }) => {
            assert_eq!(code, 51, "busy");
            assert_eq!(name.as_deref(), Some(&b"1.3.6.1.4.1.1466.20036"[..]));
        }
        other => panic!("the 257th from one address: {other:?}"),
    }
    assert!(one_more.recv().is_none(), "and closed");
    let mut neighbour = Raw::connect_from(server.addr, Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(
        neighbour.code(&bind_v2(1)),
        SUCCESS,
        "another address gets in"
    );
    let monitor = neighbour.found(&search(
        2,
        b"cn=Monitor,ou=Admin,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[b"refusedPerAddress"],
    ));
    assert_eq!(monitor[0].first("refusedPerAddress"), Some(&b"1"[..]));
    // A connection that closes gives its slot back.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = Raw::connect_from(server.addr, crowd);
        again.send(&bind_v2(1));
        if let Some(Response::Result { code: 0, .. }) = again.recv() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn failed_binds_slow_their_address_and_no_other() {
    let server = TestServer::with(|c| {
        c.set("account", "cn=admin,o=Intranet secret", true)
            .unwrap();
        c.bind_failures = 5;
    });
    let guesser = Ipv4Addr::new(127, 0, 0, 4);
    let wrong = bind_simple(1, 3, b"cn=admin,o=Intranet", b"guess");
    let mut raw = Raw::connect_from(server.addr, guesser);
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(raw.code(&wrong), 49);
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the first five are not slowed"
    );
    // The sixth waits a second, the seventh two.
    assert_eq!(raw.code(&wrong), 49);
    let seventh = Instant::now();
    assert_eq!(raw.code(&wrong), 49);
    assert!(
        seventh.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        seventh.elapsed()
    );
    // Meanwhile another address binds at full speed.
    let mut other = Raw::connect_from(server.addr, Ipv4Addr::new(127, 0, 0, 5));
    let quick = Instant::now();
    assert_eq!(
        other.code(&bind_simple(1, 3, b"cn=admin,o=Intranet", b"secret")),
        SUCCESS
    );
    assert_eq!(other.code(&wrong), 49);
    assert!(
        quick.elapsed() < Duration::from_millis(500),
        "{:?}",
        quick.elapsed()
    );
    let monitor = other.found(&search(
        2,
        b"cn=Monitor,ou=Admin,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[b"bindsDelayed"],
    ));
    assert_eq!(monitor[0].first("bindsDelayed"), Some(&b"2"[..]));
}

#[test]
fn ipv4_and_ipv6_listen_on_one_port_and_both_answer() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let mut config = Config::default();
    config
        .set("listen", &format!("0.0.0.0:{port}"), true)
        .unwrap();
    config
        .set("listen", &format!("[::]:{port}"), false)
        .unwrap();
    let server = Server::start(&config).expect("0.0.0.0:P and [::]:P start together");
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let stream = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        let mut raw = Raw::connect(stream.peer_addr().unwrap());
        assert_eq!(raw.code(&bind_v2(1)), SUCCESS, "{addr}");
    }
    server.shutdown();
}
