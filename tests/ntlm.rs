//! NTLM logons with clients nobody here wrote: python ldap3's SASL NTLM
//! and impacket's Sicily logon (the Windows form), right and wrong
//! passwords, verify and accept-any; and a challenge that serves one
//! AUTHENTICATE on the connection that received it, and no other.
//!
//! The Python clients run from a virtual environment that this test
//! creates with pip; when the package index cannot be reached the tests
//! say so and fail.

mod common;

use std::path::PathBuf;

use common::*;
use ilsd::server::Config;

fn run(script: &str, args: &[String]) -> String {
    run_python(script, args)
}

/// python ldap3's NTLM bind (SASL), then WhoAmI: prints the bind's result
/// code and the authorization ID.
const LDAP3: &str = r#"
import sys
from ldap3 import Server, Connection, NTLM
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Connection(Server('127.0.0.1', port=port), user=user, password=password, authentication=NTLM)
ok = c.bind()
print(c.result['result'], (c.extend.standard.who_am_i() or '') if ok else '-')
"#;

/// impacket's Sicily logon, which always dials port 389: the socket is
/// pointed at the test's port. Prints "ok" or the LDAP error.
const IMPACKET: &str = r#"
import sys, socket
port, user, password, domain = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
connect = socket.socket.connect
def to_test_port(self, address):
    if isinstance(address, tuple) and address[1] == 389:
        address = (address[0], port)
    return connect(self, address)
socket.socket.connect = to_test_port
from impacket.ldap import ldap
c = ldap.LDAPConnection('ldap://127.0.0.1', 'o=Intranet', '127.0.0.1', signing=False)
try:
    c.login(user, password, domain, authenticationChoice='sicilyNegotiate')
    print('ok')
except ldap.LDAPSessionError as e:
    # impacket puts the result code's name in the message, not its number.
    print('refused', 'invalidCredentials' in str(e))
"#;

/// Answers a CHALLENGE (hex) with python ldap3's NTLM client: prints the
/// AUTHENTICATE in hex.
const ANSWER: &str = r#"
import sys
from ldap3.utils.ntlm import NtlmClient
user, domain, password, challenge = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])
c = NtlmClient(user_name=user, domain=domain, password=password)
c.create_negotiate_message()
c.parse_challenge_message(challenge)
print(c.create_authenticate_message().hex())
"#;

fn accounts_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smbpasswd-{name}-{}", std::process::id()));
    let line = ilsd::auth::smbpasswd::line("alice", &ilsd::auth::ntlm::nt_hash("Secret1"));
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path
}

fn verifying(name: &str) -> impl FnOnce(&mut Config) {
    let path = accounts_file(name);
    move |c: &mut Config| {
        c.ntlm_accounts = Some(path);
        c.ntlm_domain = Some("EXAMPLE".into());
    }
}

#[test]
fn python_ldap3_logs_on_with_the_right_password_only() {
    let server = TestServer::with(verifying("ldap3"));
    let port = server.addr.port().to_string();
    let bind =
        |user: &str, password: &str| run(LDAP3, &[port.clone(), user.into(), password.into()]);
    assert_eq!(bind("EXAMPLE\\alice", "Secret1"), "0 u:example\\alice");
    assert_eq!(bind("EXAMPLE\\alice", "wrong"), "49 -");
    assert_eq!(bind("EXAMPLE\\mallory", "Secret1"), "49 -", "unknown user");
}

#[test]
fn accept_any_completes_the_logon_and_stays_anonymous() {
    let server = TestServer::start();
    let port = server.addr.port().to_string();
    let out = run(LDAP3, &[port, "EXAMPLE\\alice".into(), "anything".into()]);
    assert_eq!(out, "0", "success, and WhoAmI anonymous");
}

#[test]
fn impacket_sicily_logon_right_and_wrong() {
    let server = TestServer::with(verifying("impacket"));
    let port = server.addr.port().to_string();
    let login = |password: &str| {
        run(
            IMPACKET,
            &[
                port.clone(),
                "alice".into(),
                password.into(),
                "EXAMPLE".into(),
            ],
        )
    };
    assert_eq!(login("Secret1"), "ok");
    assert_eq!(login("wrong"), "refused True", "invalidCredentials");
    // accept-any: any password.
    let open = TestServer::start();
    let port = open.addr.port().to_string();
    assert_eq!(
        run(
            IMPACKET,
            &[port, "alice".into(), "wrong".into(), "EXAMPLE".into()]
        ),
        "ok"
    );
}

const SICILY_NEGOTIATE: u8 = 0x8a;
const SICILY_RESPONSE: u8 = 0x8b;

fn sicily(msgid: i32, step: u8, token: &[u8]) -> Vec<u8> {
    message(
        msgid,
        cons(0x60, &[int(0x02, 3), octets(b""), prim(step, token)]),
    )
}

/// The NEGOTIATE python ldap3 sends, as a Windows client would.
const NEGOTIATE: &[u8] = b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Sends a Sicily negotiate; returns the CHALLENGE from matchedDN.
fn negotiate(raw: &mut Raw, msgid: i32) -> Vec<u8> {
    match raw.call(&sicily(msgid, SICILY_NEGOTIATE, NEGOTIATE)).1 {
        Response::Result {
            code: 0, matched, ..
        } => matched,
        other => panic!("negotiate: {other:?}"),
    }
}

fn answer(challenge: &[u8], password: &str) -> Vec<u8> {
    let hex: String = challenge.iter().map(|b| format!("{b:02x}")).collect();
    let out = run(
        ANSWER,
        &["alice".into(), "EXAMPLE".into(), password.into(), hex],
    );
    (0..out.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&out[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_challenge_serves_one_authenticate_on_its_own_connection() {
    let server = TestServer::with(verifying("replay"));
    let mut raw = server.raw();
    let challenge = negotiate(&mut raw, 1);
    let authenticate = answer(&challenge, "Secret1");
    assert_eq!(
        raw.code(&sicily(2, SICILY_RESPONSE, &authenticate)),
        SUCCESS
    );
    // The same AUTHENTICATE again: the challenge is used up.
    assert_eq!(
        raw.code(&sicily(3, SICILY_RESPONSE, &authenticate)),
        49,
        "replayed"
    );
    // Against a new challenge on the same connection: it answers another.
    negotiate(&mut raw, 4);
    assert_eq!(
        raw.code(&sicily(5, SICILY_RESPONSE, &authenticate)),
        49,
        "another challenge"
    );
    // A negotiate on one connection and the response on another.
    let mut first = server.raw();
    let mut second = server.raw();
    let challenge = negotiate(&mut first, 1);
    let authenticate = answer(&challenge, "Secret1");
    assert_eq!(
        second.code(&sicily(1, SICILY_RESPONSE, &authenticate)),
        49,
        "another connection"
    );
    // An AUTHENTICATE with no negotiate at all.
    let mut fresh = server.raw();
    assert_eq!(
        fresh.code(&sicily(1, SICILY_RESPONSE, &authenticate)),
        49,
        "no challenge"
    );
}

#[test]
fn ntlm_off_is_refused_and_not_announced() {
    let server = TestServer::with(|c| c.ntlm = Some(ilsd::auth::NtlmMode::Off));
    let mut raw = server.raw();
    assert_eq!(raw.code(&sicily(1, 0x89, b"")), 7, "authMethodNotSupported");
    let root = raw.found(&search(
        2,
        b"",
        0,
        f::present(b"objectClass"),
        &[b"supportedSASLMechanisms"],
    ));
    assert_eq!(root[0].get("supportedSASLMechanisms"), None);
    let on = TestServer::start();
    let root = on.raw().found(&search(
        2,
        b"",
        0,
        f::present(b"objectClass"),
        &[b"supportedSASLMechanisms"],
    ));
    assert_eq!(root[0].first("supportedSASLMechanisms"), Some(&b"NTLM"[..]));
}

#[test]
fn a_simple_bind_as_a_windows_name_checks_the_same_accounts() {
    let server = TestServer::with(verifying("simple"));
    let mut raw = server.raw();
    assert_eq!(
        raw.code(&bind_simple(1, 3, b"EXAMPLE\\alice", b"Secret1")),
        SUCCESS
    );
    assert_eq!(
        raw.code(&bind_simple(2, 3, b"alice@example.org", b"Secret1")),
        SUCCESS
    );
    assert_eq!(
        raw.code(&bind_simple(3, 3, b"EXAMPLE\\alice", b"secret1")),
        49
    );
    // A local account is a user of this server's domain, whatever domain
    // the client names: it cannot take on another domain's identity.
    let mut elsewhere = server.ldap();
    elsewhere
        .simple_bind("CORP\\alice", "Secret1")
        .unwrap()
        .success()
        .unwrap();
    let who = elsewhere.extended(ldap3::exop::WhoAmI).unwrap().0;
    assert_eq!(
        who.parse::<ldap3::exop::WhoAmIResp>().authzid,
        "u:example\\alice"
    );
    // The identity owns what it registers.
    let mut ldap = server.ldap();
    ldap.simple_bind("EXAMPLE\\alice", "Secret1")
        .unwrap()
        .success()
        .unwrap();
    let who = ldap.extended(ldap3::exop::WhoAmI).unwrap().0;
    let who = who.parse::<ldap3::exop::WhoAmIResp>();
    assert_eq!(who.authzid, "u:example\\alice");
}

/// An NTLMv1 answer (a 24-byte NT response) to the live challenge; its
/// bytes do not matter to a helper that says yes to everything.
fn v1_authenticate() -> Vec<u8> {
    let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
    let payload_at = 64u32;
    let field = |len: u16, at: u32| {
        [len.to_le_bytes(), len.to_le_bytes()]
            .concat()
            .into_iter()
            .chain(at.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    m.extend(field(24, payload_at)); // LM
    m.extend(field(24, payload_at + 24)); // NT
    m.extend(field(0, payload_at + 48)); // domain
    m.extend(field(10, payload_at + 48)); // user "alice" in UTF-16
    m.extend(field(0, payload_at + 58)); // workstation
    m.extend(field(0, payload_at + 58)); // session key
    m.extend((0x0000_0201u32).to_le_bytes()); // UNICODE | NTLM
    m.extend([0x11; 48]);
    m.extend("alice".encode_utf16().flat_map(u16::to_le_bytes));
    m
}

#[test]
fn ntlm_v1_is_refused_before_the_domain_is_asked_unless_allowed() {
    // A helper that says yes to everything: only ntlm-v1 stands between.
    let yes = "while read -r l; do [ \"$l\" = . ] && { echo 'Authenticated: Yes'; echo .; }; done";
    let helper = vec!["sh".to_string(), "-c".to_string(), yes.to_string()];
    for (allow, expected) in [(false, 49), (true, SUCCESS)] {
        let helper = helper.clone();
        let server = TestServer::with(move |c| {
            c.ntlm_helper = Some(helper);
            c.ntlm_v1 = allow;
        });
        let mut raw = server.raw();
        negotiate(&mut raw, 1);
        assert_eq!(
            raw.code(&sicily(2, SICILY_RESPONSE, &v1_authenticate())),
            expected,
            "ntlm-v1 {allow}"
        );
    }
}
