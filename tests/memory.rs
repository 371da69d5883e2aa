//! What the server holds for clients that stop reading. Alone in its test
//! binary, so that the process's resident memory is the server's.

mod common;

use std::time::Duration;

use common::*;

fn resident_kb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_stops_reading_a_large_result_holds_one_chunk() {
    let server = TestServer::start();
    let mut raw = server.raw();
    // 30 MB of entries.
    add_large_people(&mut raw, 300, 100_000);
    let before = resident_kb();
    // Five clients ask for all of it and read nothing.
    let stalled: Vec<Raw> = (0..5)
        .map(|i| {
            let mut c = server.raw();
            c.send(&search(
                10 + i,
                b"ou=Dynamic,o=Intranet",
                1,
                f::present(b"cn"),
                &[],
            ));
            c
        })
        .collect();
    // Each search has begun answering; then time for the server to fill
    // the socket buffers and stall on its next write.
    for c in &stalled {
        let mut byte = [0u8; 1];
        assert_eq!(c.stream.peek(&mut byte).unwrap(), 1);
    }
    std::thread::sleep(Duration::from_secs(1));
    let grown = resident_kb().saturating_sub(before);
    assert!(
        grown < 40_000,
        "{grown} kB for five stalled searches of 30 MB"
    );
    // Others are served meanwhile.
    let entries = raw.found(&search(
        2,
        b"ou=Dynamic,o=Intranet",
        1,
        f::eq(b"cn", b"big7"),
        &[b"cn"],
    ));
    assert_eq!(entries.len(), 1);
    drop(stalled);
}
