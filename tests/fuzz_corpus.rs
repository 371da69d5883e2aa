//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`)
//! through the harness its target runs, so that CI checks what the
//! fuzzers found without running one.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let replayed = std::panic::catch_unwind(|| harness(&data));
        assert!(replayed.is_ok(), "{} fails its harness", file.display());
    }
}

#[test]
fn frame() {
    replay("frame", harness::frame);
}

#[test]
fn quick_vs_proto() {
    replay("quick_vs_proto", harness::quick_vs_proto);
}

#[test]
fn session() {
    replay("session", harness::session);
}

#[test]
fn dn_filter() {
    replay("dn_filter", harness::dn_filter);
}

#[test]
fn config() {
    replay("config", harness::config);
}

#[test]
fn state() {
    replay("state", harness::state);
}
