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

use common::*;
use ilsd::server::Config;

/// The DC's smb.conf, once the DC runs; `None` without root.
fn domain() -> Option<&'static PathBuf> {
    static CONF: OnceLock<Option<PathBuf>> = OnceLock::new();
    CONF.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
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
        let facts = String::from_utf8_lossy(&out.stdout).into_owned();
        let conf = facts
            .lines()
            .find_map(|l| l.strip_prefix("AD_SMBCONF="))
            .unwrap_or_else(|| panic!("no AD_SMBCONF in what start.sh printed: {facts}"));
        Some(PathBuf::from(conf))
    })
    .as_ref()
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
    let command = helper(conf);
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
