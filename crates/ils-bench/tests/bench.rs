//! ils-bench runs each workload against a real ilsd without errors, in
//! both the ILS dialect and standard mode. Nothing here measures speed.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::*;

fn bench(server: &TestServer, workload: &str, standard: bool) -> String {
    bench_at(server.addr, workload, standard)
}

fn bench_at(addr: std::net::SocketAddr, workload: &str, standard: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ils-bench"));
    cmd.args([
        "--workload",
        workload,
        "--connections",
        "2",
        "--duration",
        "1",
        "--entries",
        "50",
        "--json",
    ]);
    if standard {
        cmd.arg("--standard");
    }
    let out = cmd.arg(addr.to_string()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{workload} standard={standard}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn field(json: &str, name: &str) -> f64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"));
    json[at + name.len() + 3..]
        .split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_workload_runs_without_errors() {
    for standard in [false, true] {
        let server = TestServer::start();
        for workload in [
            "netmeeting",
            "refresh",
            "refresh-ext",
            "tapi",
            "find",
            "list",
            "churn",
        ] {
            let json = bench(&server, workload, standard);
            assert_eq!(field(&json, "errors"), 0.0, "{json}");
            assert!(field(&json, "operations") > 0.0, "{json}");
            let rate = field(&json, "ops_per_sec");
            let computed = field(&json, "operations") / field(&json, "seconds");
            assert!((rate - computed).abs() <= computed * 0.01 + 0.1, "{json}");
            if workload == "list" {
                // Every listing returns the 50 users (and nothing else).
                assert_eq!(
                    field(&json, "entries"),
                    50.0 * field(&json, "operations"),
                    "{json}"
                );
            }
        }
    }
}

#[test]
fn one_client_thread_drives_several_connections() {
    let server = TestServer::start();
    for workload in ["refresh", "list"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ils-bench"))
            .args(["-w", workload, "-c", "3", "-t", "1", "-d", "1", "-n", "50"])
            .arg("--json")
            .arg(server.addr.to_string())
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{json}");
        assert_eq!(field(&json, "errors"), 0.0, "{json}");
        let operations = field(&json, "operations");
        assert!(operations > 3.0, "{json}");
        // Every answer was read whole and counted once: a listing's 50
        // entries come in several reads of one connection while the
        // others are answered.
        let per_op = if workload == "list" { 50.0 } else { 1.0 };
        assert_eq!(field(&json, "entries"), per_op * operations, "{json}");
    }
}

#[test]
fn held_connections_and_a_mass_expiry_are_reported() {
    let server = TestServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_ils-bench"))
        .args(["-w", "refresh", "-c", "2", "-d", "1", "-n", "20"])
        .args(["--hold", "30", "--expire", "300"])
        .arg(server.addr.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("held: 30 of 30 idle connections"),
        "{stdout}"
    );
    // All swept by the server's expiry thread; how soon is for .ci/scale
    // to measure.
    let after: Option<u64> = stdout
        .split("all removed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok());
    assert!(after.is_some(), "{stdout}");
    assert!(stdout.contains("expiry: 300 users due"), "{stdout}");
}

#[test]
fn the_ceiling_server_answers_every_workload_of_single_requests() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || ils_bench::serve_ceiling(listener));
    for workload in [
        "refresh",
        "refresh-ext",
        "find",
        "tapi",
        "churn",
        "netmeeting",
    ] {
        let json = bench_at(addr, workload, false);
        assert_eq!(field(&json, "errors"), 0.0, "{json}");
        assert!(field(&json, "operations") > 0.0, "{json}");
        if ["refresh", "find", "churn"].contains(&workload) {
            // Each search is answered with its one fixed entry.
            assert_eq!(
                field(&json, "entries"),
                field(&json, "operations"),
                "{json}"
            );
        }
    }
}
