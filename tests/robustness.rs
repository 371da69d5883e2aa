//! Bad input: garbage, truncated, oversized and malformed frames, the
//! PROTOS c06 suite, pipelining, split writes, the connection limit and
//! idle clients. None of it may harm another client's session.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use ilsd::server::Config;

/// Reads the Notice of Disconnection and then EOF.
fn expect_notice(raw: &mut Raw, code: i64) {
    match raw.recv() {
        Some(Response::Extended {
            msgid: 0,
            code: c,
            name,
            ..
        }) => {
            assert_eq!(c, code);
            assert_eq!(name.as_deref(), Some(&b"1.3.6.1.4.1.1466.20036"[..]));
        }
        other => panic!("expected a notice of disconnection, got {other:?}"),
    }
    assert!(raw.closed());
}

#[test]
fn garbage_gets_a_notice_and_does_not_disturb_another_session() {
    let server = TestServer::start();
    let mut good = server.raw();
    assert_eq!(good.code(&bind_v2(1)), 0);
    assert_eq!(
        good.code(&add(2, b"cn=steady,objectClass=rtPerson", &[])),
        0
    );
    let mut bad = server.raw();
    bad.send(b"GET / HTTP/1.0\r\n\r\n");
    expect_notice(&mut bad, 2);
    // The first client's session and data are untouched.
    let e = good.found(&search(
        3,
        b"objectClass=rtPerson",
        0,
        f::eq(b"cn", b"steady"),
        &[b"cn"],
    ));
    assert_eq!(e.len(), 1);
}

#[test]
fn malformed_messages_are_protocol_errors() {
    let server = TestServer::start();
    for frame in [
        &[0x30, 0x02, 0x02, 0x01][..],               // inner element cut short
        &[0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x00], // a response sent as a request
        &[0x30, 0x05, 0x02, 0x01, 0x01, 0x7f, 0x00], // unknown operation
        &[0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0, 0], // indefinite length
        &[0x30, 0x06, 0x02, 0x01, 0x01, 0x63, 0x01, 0x00], // search that is not a sequence
        &[0x30, 0x00],                               // empty message
    ] {
        let mut raw = server.raw();
        raw.send(frame);
        expect_notice(&mut raw, 2);
    }
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/ldap-valid/malformed-message-empty.bin"),
    )
    .unwrap();
    let mut raw = server.raw();
    raw.send(&bytes);
    raw.send(&[0x30, 0x00]);
    expect_notice(&mut raw, 2);
}

#[test]
fn a_well_encoded_request_with_a_value_out_of_range_is_answered_alone() {
    // RFC 4511 4.1.1 ends the session for a broken encoding; a scope of 7
    // or a modify operation of 9 is well encoded, and slapd too answers
    // the operation with protocolError and serves the next.
    let server = TestServer::start();
    let mut raw = server.raw();
    let present = f::present(b"objectClass");
    let bad_modify = modify(5, b"cn=x,ou=Dynamic,o=Intranet", &[(9, b"cn", &[b"y"])]);
    for (request, want_tag) in [
        (search(1, b"o=Intranet", 7, present.clone(), &[]), 5),
        (bad_modify, 7),
    ] {
        let (entries, done) = raw.call(&request);
        assert!(entries.is_empty());
        assert!(
            matches!(done, Response::Result { code: 2, tag, .. } if tag == want_tag),
            "{done:?}"
        );
    }
    // Limits out of range are no limits, as they always were.
    let unlimited = search_full(8, b"o=Intranet", 0, -1, -1, false, present.clone(), &[]);
    assert_eq!(raw.found(&unlimited).len(), 1);
    let (entries, done) = raw.call(&search(9, b"o=Intranet", 0, present, &[]));
    assert_eq!(entries.len(), 1, "the session goes on");
    assert!(matches!(
        done,
        Response::Result {
            code: 0,
            msgid: 9,
            ..
        }
    ));
    // A scope of 7 in a request that is broken besides ends the session.
    let scope_only = message(10, cons(0x63, &[octets(b"o=Intranet"), int(0x0a, 7)]));
    raw.send(&scope_only);
    assert!(matches!(
        raw.recv(),
        Some(Response::Extended {
            msgid: 0,
            code: 2,
            ..
        })
    ));
}

#[test]
fn oversized_requests_are_refused_from_the_header() {
    let server = TestServer::with(|c| c.max_request_size = 1024);
    let mut raw = server.raw();
    // Announces 2 GiB; the server must not wait for, or buffer, the body.
    raw.send(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01]);
    expect_notice(&mut raw, 2);
    let mut raw = server.raw();
    let big = add(
        1,
        b"cn=big,objectClass=rtPerson",
        &[(b"comment", &[&[b'x'; 2000]])],
    );
    let _ = raw.stream.write_all(&big);
    expect_notice(&mut raw, 2);
    let mut raw = server.raw();
    assert_eq!(
        raw.code(&add(
            1,
            b"cn=small,objectClass=rtPerson",
            &[(b"comment", &[&[b'x'; 500]])]
        )),
        0
    );
}

#[test]
fn truncated_requests_are_dropped_at_the_idle_timeout() {
    let server = TestServer::with(|c| c.idle_timeout = Duration::from_secs(1));
    let mut raw = server.raw();
    let frame = search(
        1,
        b"ou=Dynamic,o=Intranet",
        2,
        f::present(b"objectClass"),
        &[b"cn"],
    );
    assert!(frame.len() > 40);
    // A trickle of a byte every 200 ms would take 8 s and more: the idle
    // timeout runs from the request's first byte, not its last.
    let started = Instant::now();
    let mut cut = None;
    for b in &frame[..frame.len() - 1] {
        if raw.stream.write_all(&[*b]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = cut.expect("the trickle was never cut off");
    assert!(cut < Duration::from_secs(4), "cut off after {cut:?}");
    // A silent client is closed too, at the idle timeout.
    let mut silent = server.raw();
    let started = Instant::now();
    assert!(silent.closed());
    let after = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&after),
        "closed after {after:?}"
    );
}

#[test]
fn pipelined_and_split_requests() {
    let server = TestServer::start();
    let mut raw = server.raw();
    // Two requests in one write.
    let mut two = bind_v2(1);
    two.extend(add(2, b"cn=pipe,objectClass=rtPerson", &[]));
    raw.send(&two);
    assert!(matches!(
        raw.recv(),
        Some(Response::Result {
            msgid: 1,
            code: 0,
            ..
        })
    ));
    assert!(matches!(
        raw.recv(),
        Some(Response::Result {
            msgid: 2,
            code: 0,
            ..
        })
    ));
    // One request over many writes.
    let req = search(
        3,
        b"objectClass=rtPerson",
        0,
        f::eq(b"cn", b"pipe"),
        &[b"cn"],
    );
    for part in req.chunks(3) {
        raw.send(part);
        std::thread::sleep(Duration::from_millis(2));
    }
    let (entries, _) = raw.collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn protos_c06_suite_never_crashes_the_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/protos-c06-enc");
    let files = std::fs::read_dir(&dir).unwrap();
    let server = TestServer::with(|c| c.max_request_size = 256 * 1024);
    let mut paths: Vec<_> = files.flatten().map(|f| f.path()).collect();
    paths.sort();
    let mut answered = 0;
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let mut raw = server.raw();
        // The largest cases are refused from their header, so the server
        // may close before the whole request is written.
        let _ = raw.stream.write_all(&bytes);
        match raw.recv() {
            Some(Response::Entry(..)) | Some(Response::Result { .. }) => answered += 1,
            Some(Response::Extended { msgid: 0, .. }) | None => {}
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    assert!(
        answered >= 90,
        "only {answered} of {} answered",
        paths.len()
    );
    // Still serving.
    assert_eq!(server.raw().code(&bind_v2(1)), 0);
}

#[test]
fn ber_vectors_never_crash_the_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ber-vectors");
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    let server = TestServer::with(|c| c.idle_timeout = Duration::from_secs(1));
    let mut tried = 0;
    for line in expected.lines().skip(1) {
        let mut fields = line.split('\t');
        let (Some(file), Some(outcome)) = (fields.next(), fields.next()) else {
            panic!("EXPECTED.tsv: {line}");
        };
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let mut raw = server.raw();
        let _ = raw.stream.write_all(&bytes);
        // None of them is an LDAP request: each is refused with a Notice
        // of Disconnection, and a truncated one, still waiting for its
        // end, is closed at the idle timeout.
        match raw.recv() {
            Some(Response::Extended { msgid: 0, code, .. }) => assert_eq!(code, 2, "{file}"),
            None if outcome == "unexpected EOF" => {}
            other => panic!("{file} ({outcome}): {other:?}"),
        }
        tried += 1;
    }
    assert_eq!(tried, 51);
    assert_eq!(server.raw().code(&bind_v2(1)), 0);
}

#[test]
fn connections_over_the_limit_are_told_busy() {
    let server = TestServer::with(|c| c.max_connections = 2);
    let mut first = server.raw();
    let mut second = server.raw();
    assert_eq!(first.code(&bind_v2(1)), 0);
    assert_eq!(second.code(&bind_v2(1)), 0);
    let mut third = server.raw();
    expect_notice(&mut third, 51);
    // Those inside are still served, and a slot frees when one leaves.
    assert_eq!(first.code(&bind_v2(2)), 0);
    second.send(&unbind(3));
    assert!(second.closed());
    let started = Instant::now();
    loop {
        let mut next = server.raw();
        next.send(&bind_v2(1));
        match next.recv() {
            Some(Response::Result { code: 0, .. }) => break,
            _ => assert!(started.elapsed() < Duration::from_secs(3), "no slot freed"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shutdown_returns_with_idle_clients_connected() {
    let server = TestServer::start();
    let mut idle = server.raw();
    assert_eq!(idle.code(&bind_v2(1)), 0);
    let started = Instant::now();
    server.server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(idle.closed());
}

#[test]
fn a_burst_of_connections_is_served_at_once_by_a_small_pool() {
    // Twenty clients connect together while one worker waits: each must
    // get a worker of its own, none may wait in the queue for another
    // client to leave.
    let server = TestServer::with(|c| c.workers = 1);
    let mut clients: Vec<Raw> = (0..20).map(|_| server.raw()).collect();
    for client in &mut clients {
        client.send(&bind_v2(1));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        assert!(
            matches!(client.recv(), Some(Response::Result { code: 0, .. })),
            "client {i} was not served while the others stayed connected"
        );
    }
}

#[test]
fn no_entry_holds_more_values_than_max_values() {
    let server = TestServer::with(|c| c.max_values = 20);
    let mut raw = server.raw();
    let names: Vec<String> = (0..25).map(|i| format!("x{i}")).collect();
    const ONE: &[&[u8]] = &[b"1"];
    let many: Vec<(&[u8], &[&[u8]])> = names.iter().map(|n| (n.as_bytes(), ONE)).collect();
    let dn = b"cn=many,ou=Dynamic,o=Intranet";
    let mut attrs: Vec<(&[u8], &[&[u8]])> = vec![(b"objectClass", &[b"rtPerson"])];
    attrs.extend(&many);
    assert_eq!(raw.code(&add(1, dn, &attrs)), 11, "adminLimitExceeded");
    attrs.truncate(10);
    assert_eq!(raw.code(&add(2, dn, &attrs)), SUCCESS);
    // Values added one Modify at a time stop at the limit too.
    let values: Vec<Vec<u8>> = (0..15).map(|i| format!("v{i}").into_bytes()).collect();
    let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    assert_eq!(raw.code(&modify(3, dn, &[(0, b"comment", &values)])), 11);
    assert_eq!(
        raw.code(&modify(4, dn, &[(0, b"comment", &values[..5])])),
        SUCCESS
    );
    // One Modify can carry no more values than an entry may hold.
    let lots: Vec<&[u8]> = (0..30).map(|_| &b"same"[..]).collect();
    assert_eq!(raw.code(&modify(5, dn, &[(2, b"location", &lots)])), 11);
    let entries = raw.found(&search(6, dn, 0, f::present(b"objectClass"), &[b"comment"]));
    assert_eq!(
        entries[0].get("comment").map(Vec::len),
        Some(5),
        "the refused ones changed nothing"
    );
}

#[test]
fn a_full_directory_refuses_registrations_and_keeps_what_it_holds() {
    // Room for some twenty people of a few hundred bytes each.
    let server = TestServer::with(|c| c.max_memory = 8 * 1024);
    let mut raw = server.raw();
    let person = |i: usize| format!("c=-,o=Microsoft,cn=user{i}@example.org,objectClass=rtPerson");
    let register = |raw: &mut Raw, i: usize| {
        let dn = person(i);
        let cn = format!("user{i}@example.org");
        raw.code(&add(
            i as i32 + 10,
            dn.as_bytes(),
            &[(b"cn", &[cn.as_bytes()]), (b"sipaddress", &[b"16777343"])],
        ))
    };
    let mut stored = 0;
    loop {
        match register(&mut raw, stored) {
            SUCCESS => stored += 1,
            11 => break,
            code => panic!("user{stored}: result {code}"),
        }
        assert!(stored < 1000, "the limit never came");
    }
    assert!((5..40).contains(&stored), "{stored} people in 8 KiB");

    // A Modify that would grow an entry past the limit is refused too, and
    // so is the application entry of NetMeeting's smodop 0.
    let first = person(0);
    let long = vec![b'x'; 4096];
    let grow = modify(2, first.as_bytes(), &[(2, b"comment", &[&long])]);
    assert_eq!(raw.code(&grow), 11);
    let app = modify(
        3,
        first.as_bytes(),
        &[
            (2, b"smodop", &[b"0"]),
            (2, b"sappid", &[b"ms-netmeeting"]),
            (2, b"sprotid", &[b"h323"]),
            (2, b"sport", &[b"1720"]),
        ],
    );
    assert_eq!(raw.code(&app), 11);
    // A Modify that does not grow an entry still works.
    let same = modify(4, first.as_bytes(), &[(2, b"sipaddress", &[b"33554559"])]);
    assert_eq!(raw.code(&same), SUCCESS);

    // Everyone registered is still there, as registered.
    let entries = raw.found(&search(
        5,
        b"ou=Dynamic,o=Intranet",
        1,
        f::present(b"cn"),
        &[b"comment", b"sappid"],
    ));
    assert_eq!(entries.len(), stored);
    assert!(
        entries
            .iter()
            .all(|e| e.get("comment").is_none() && e.get("sappid").is_none())
    );

    // Leaving makes room for someone else.
    assert_eq!(raw.code(&delete(6, first.as_bytes())), SUCCESS);
    assert_eq!(register(&mut raw, stored), SUCCESS);
    assert_eq!(register(&mut raw, stored + 1), 11);

    // Room for two people: smodop 0 that grows the person by nearly all of
    // it and adds an application entry does not fit, though either part
    // alone would.
    for i in [1, 2] {
        assert_eq!(raw.code(&delete(7, person(i).as_bytes())), SUCCESS);
    }
    let third = person(3);
    let room = 8 * 1024 - entry_memory(&mut raw);
    assert!(room > 600, "{room}");
    let long = vec![b'L'; room - 16];
    let both = modify(
        8,
        third.as_bytes(),
        &[
            (2, b"smodop", &[b"0"]),
            (2, b"sappid", &[b"ms-netmeeting"]),
            (2, b"location", &[&long]),
        ],
    );
    assert_eq!(raw.code(&both), 11);
    let grow = modify(9, third.as_bytes(), &[(2, b"location", &[&long])]);
    assert_eq!(raw.code(&grow), SUCCESS, "the person's part alone fits");

    // With the limit lowered below what is stored, what does not grow
    // still works.
    server.server.reload(&Config {
        max_memory: 1024,
        ..Config::default()
    });
    let same = modify(10, third.as_bytes(), &[(2, b"sipaddress", &[b"50331775"])]);
    assert_eq!(raw.code(&same), SUCCESS);
    // Names cost their index slots: fewer bytes but many names grow.
    let names: Vec<Vec<u8>> = (0..50).map(|i| format!("n{i}").into_bytes()).collect();
    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let renamed = modify(
        11,
        third.as_bytes(),
        &[(1, b"location", &[]), (0, b"cn", &names)],
    );
    assert_eq!(raw.code(&renamed), 11);
    let shrink = modify(12, third.as_bytes(), &[(1, b"location", &[])]);
    assert_eq!(raw.code(&shrink), SUCCESS);
    assert_eq!(raw.code(&grow), 11);
}

#[test]
fn a_costly_search_keeps_to_its_time_limit_and_lets_others_in() {
    // Its filter is 24,000 elements: past the default max-request-elements.
    let server = TestServer::with(|c| c.max_request_elements = 100_000);
    let mut raw = server.raw();
    // A thousand entries of 200 values, and a filter of 8,000 terms that
    // each value is held against: more than a billion comparisons, many
    // seconds even on a machine several times faster than a time limit of
    // one.
    let values: Vec<Vec<u8>> = (0..200).map(|i| format!("note {i}").into_bytes()).collect();
    let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    for i in 0..1000 {
        let dn = format!("cn=many{i},ou=Dynamic,o=Intranet");
        let attrs: &[(&[u8], &[&[u8]])] = &[(b"objectClass", &[b"rtPerson"]), (b"x-note", &values)];
        assert_eq!(raw.code(&add(1, dn.as_bytes(), attrs)), SUCCESS);
    }
    let terms: Vec<Vec<u8>> = (0..8000)
        .map(|i| f::eq(b"x-note", format!("absent {i}").as_bytes()))
        .collect();
    let costly = search_full(
        2,
        b"ou=Dynamic,o=Intranet",
        1,
        0,
        1,
        false,
        f::or(&terms),
        &[b"cn"],
    );
    raw.send(&costly);
    let waiting = std::thread::spawn(move || raw.collect().1);
    std::thread::sleep(Duration::from_millis(200));
    let mut other = server.raw();
    let attrs: &[(&[u8], &[&[u8]])] = &[(b"objectClass", &[b"rtPerson"])];
    assert_eq!(
        other.code(&add(3, b"cn=meanwhile,ou=Dynamic,o=Intranet", attrs)),
        SUCCESS
    );
    assert!(!waiting.is_finished(), "the Add waited for the search");
    let done = waiting.join().unwrap();
    assert!(
        matches!(done, Response::Result { code: 3, .. }),
        "timeLimitExceeded: {done:?}"
    );
}

/// The monitor entry's estimate of what the entries take.
fn entry_memory(raw: &mut Raw) -> usize {
    let entries = raw.found(&search(
        90,
        b"cn=Monitor,ou=Admin,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[b"entryMemory"],
    ));
    let value = entries[0].first("entryMemory").unwrap();
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

#[test]
fn a_time_limit_beyond_the_clock_is_no_limit() {
    let server = TestServer::with(|c| c.time_limit = u64::MAX);
    let mut raw = server.raw();
    for msgid in 1..3 {
        let (_, done) = raw.call(&search(
            msgid,
            b"o=Intranet",
            2,
            f::present(b"objectClass"),
            &[],
        ));
        assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    }
}

#[test]
fn a_client_that_stops_reading_cannot_hold_a_stop() {
    let server = TestServer::with(|c| {
        c.stop_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(60);
        c.max_request_size = 1 << 20;
    });
    let mut raw = server.raw();
    // Some 16 MB of answer: far more than the socket buffers hold.
    add_large_people(&mut raw, 80, 200_000);
    let mut stalled = server.raw();
    stalled.send(&search(
        1,
        b"ou=Dynamic,o=Intranet",
        1,
        f::present(b"cn"),
        &[],
    ));
    std::thread::sleep(Duration::from_millis(300));
    let TestServer { server, .. } = server;
    let started = Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stop took {:?}",
        started.elapsed()
    );
}

#[test]
fn answers_before_a_malformed_request_arrive_whatever_follows_it() {
    // Large answers still queued when a malformed request ends the
    // session, and more requests sent behind it: closing with that input
    // unread would reset the connection and lose the answers and the
    // notice.
    let server = TestServer::start();
    let mut raw = server.raw();
    add_large_people(&mut raw, 5, 60_000);
    let mut burst = bind_v2(10);
    for i in 0..20 {
        let everyone = f::present(b"objectClass");
        burst.extend(search(100 + i, b"objectClass=rtPerson", 0, everyone, &[]));
    }
    // A SearchRequest without its fields.
    burst.extend(message(200, cons(0x63, &[])));
    for i in 0..20_000 {
        burst.extend(bind_v2(300 + i));
    }
    let mut writer = raw.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&burst);
    });
    // Not reading yet: the answers queue up in the server.
    std::thread::sleep(Duration::from_millis(300));
    let mut done = 0;
    loop {
        match raw.recv() {
            Some(Response::Result {
                tag: 5, code: 0, ..
            }) => done += 1,
            Some(Response::Extended { msgid: 0, code, .. }) => {
                assert_eq!(code, 2, "protocolError");
                break;
            }
            Some(_) => {}
            None => panic!("closed after {done} of 20 searches, without a notice"),
        }
    }
    assert_eq!(done, 20);
    assert!(raw.closed());
    sending.join().unwrap();
}

#[test]
fn a_request_of_too_many_elements_is_refused_before_it_is_decoded() {
    // 60,000 copies of "cn" in a search's attribute list: 240 KB, within
    // max-request-size, which decoding would turn into some ten megabytes.
    let server = TestServer::start();
    let mut raw = server.raw();
    let names: Vec<&[u8]> = vec![b"cn"; 60_000];
    raw.send(&search(
        1,
        b"o=Intranet",
        2,
        f::present(b"objectClass"),
        &names,
    ));
    expect_notice(&mut raw, 2);
    // Within the limit, the names asked for are answered once each.
    let mut other = server.raw();
    let names: Vec<&[u8]> = vec![b"ou"; 2_000];
    let found = other.found(&search(
        2,
        b"ou=Dynamic,o=Intranet",
        0,
        f::present(b"objectClass"),
        &names,
    ));
    assert_eq!(found[0].attrs.len(), 1, "{:?}", found[0].names());
}
