//! Registrations belong to their owner: the address or the verified
//! identity that added them. Other clients, played from other loopback
//! addresses, can find them but not change, refresh or remove them;
//! administrators can, with standard tools. And the operator's rules:
//! denied names and addresses, reloaded while running.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::*;
use ilsd::auth::moderation::{Cidr, NamePattern};
use ilsd::server::Config;
use ilsd::session::Ownership;
use ldap3::{LdapConn, Mod, Scope, SearchEntry};

const OWNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const DN: &str = "cn=alice@example.org,ou=Dynamic,o=Intranet";
const INSUFFICIENT_ACCESS: i64 = 50;
const UNWILLING: i64 = 53;
/// `secret`, as `slappasswd -h {SSHA}` writes it.
const HASHED: &str = "{SSHA}m1/rLC3x0dABW95YeD1Q2trrl4bSufqi";

fn with_admin(c: &mut Config) {
    c.set("account", &format!("cn=admin,o=Intranet {HASHED}"), true)
        .unwrap();
    c.set("account", "cn=plain,o=Intranet s3cret", false)
        .unwrap();
    c.set("account", "cn=bob,o=Intranet bobpw", false).unwrap();
    c.set("admin", "cn=Admin,o=Intranet", true).unwrap();
}

/// Registers alice from `from`, with a TTL of 600 seconds.
fn register_from(server: &TestServer, from: Ipv4Addr) -> Raw {
    let mut raw = Raw::connect_from(server.addr, from);
    assert_eq!(raw.code(&bind_v2(1)), SUCCESS);
    let req = add(
        2,
        DN.as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"alice@example.org"]),
            (b"givenName", &[b"Alice"]),
            (b"entryTTL", &[b"600"]),
        ],
    );
    assert_eq!(raw.code(&req), SUCCESS);
    raw
}

/// The entry's TTL in seconds and its givenName, as an administrator sees
/// them; `None` when it is gone.
fn state(server: &TestServer) -> Option<(u64, String)> {
    let mut ldap = server.ldap();
    ldap.simple_bind("cn=admin,o=Intranet", "secret")
        .unwrap()
        .success()
        .unwrap();
    let (entries, _) = ldap
        .search(
            DN,
            Scope::Base,
            "(objectClass=*)",
            vec!["entryTTL", "givenName"],
        )
        .unwrap()
        .success()
        .ok()?;
    let e = SearchEntry::construct(entries.into_iter().next()?);
    Some((
        e.attrs["entryTTL"][0].parse().unwrap(),
        e.attrs["givenName"][0].clone(),
    ))
}

fn refresh_value(dn: &str, ttl: i64) -> Vec<u8> {
    cons(0x30, &[prim(0x80, dn.as_bytes()), int(0x81, ttl)])
}

fn sttl_search(msgid: i32, minutes: &[u8]) -> Vec<u8> {
    search(
        msgid,
        b"objectClass=rtPerson",
        0,
        f::and(&[
            f::eq(b"objectClass", b"rtPerson"),
            f::eq(b"cn", b"alice@example.org"),
            f::eq(b"sttl", minutes),
        ]),
        &[b"entryTTL"],
    )
}

/// Every way of changing the entry, from one client; returns the result
/// codes and what the sttl search found.
fn try_everything(raw: &mut Raw) -> (Vec<i64>, usize) {
    let codes = vec![
        raw.code(&modify(
            10,
            DN.as_bytes(),
            &[(2, b"givenName", &[b"Mallory"])],
        )),
        raw.code(&modify(11, DN.as_bytes(), &[(2, b"entryTTL", &[b"3000"])])),
        raw.code(&message(
            12,
            cons(
                0x77,
                &[
                    prim(0x80, b"1.3.6.1.4.1.1466.101.119.1"),
                    prim(0x81, &refresh_value(DN, 3000)),
                ],
            ),
        )),
    ];
    let (found, _) = raw.call(&sttl_search(13, b"50"));
    (codes, found.len())
}

#[test]
fn only_the_owner_changes_refreshes_or_removes_an_entry() {
    let server = TestServer::with(with_admin);
    let mut owner = register_from(&server, OWNER);
    let (ttl_before, _) = state(&server).unwrap();

    let mut other = Raw::connect_from(server.addr, OTHER);
    let (codes, found) = try_everything(&mut other);
    assert_eq!(codes, [INSUFFICIENT_ACCESS; 3], "modify, entryTTL, refresh");
    assert_eq!(found, 1, "an sttl search by another still finds the entry");
    assert_eq!(other.code(&delete(14, DN.as_bytes())), INSUFFICIENT_ACCESS);
    let (ttl, given) = state(&server).expect("the entry is still there");
    assert_eq!(given, "Alice");
    assert!(ttl <= ttl_before, "no refresh: {ttl} after {ttl_before}");

    // The owner, on a new connection from its address, as NetMeeting
    // opens one for every operation.
    drop(owner);
    owner = Raw::connect_from(server.addr, OWNER);
    let (codes, found) = try_everything(&mut owner);
    assert_eq!(codes, [SUCCESS; 3]);
    assert_eq!(found, 1);
    let (ttl, given) = state(&server).unwrap();
    assert_eq!(given, "Mallory");
    assert!(ttl > 2900, "refreshed to 3000 s: {ttl}");
    // The owner's changes leave it the owner of its only entry.
    let mut other = Raw::connect_from(server.addr, OTHER);
    let (codes, _) = try_everything(&mut other);
    assert_eq!(
        codes, [INSUFFICIENT_ACCESS; 3],
        "still the owner's after its changes"
    );
    assert_eq!(owner.code(&delete(20, DN.as_bytes())), SUCCESS);
    assert_eq!(state(&server), None);
}

#[test]
fn an_sttl_search_that_refreshes_nothing_of_its_own_is_not_no_such_object() {
    let server = TestServer::with(with_admin);
    register_from(&server, OWNER);
    let mut other = Raw::connect_from(server.addr, OTHER);
    let (found, done) = other.call(&sttl_search(2, b"50"));
    assert_eq!(found.len(), 1);
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    // Nothing found at all is still noSuchObject: register again.
    let mut nobody = Raw::connect_from(server.addr, OTHER);
    let (_, done) = nobody.call(&search(
        3,
        b"objectClass=rtPerson",
        0,
        f::and(&[f::eq(b"cn", b"nobody"), f::eq(b"sttl", b"5")]),
        &[],
    ));
    assert!(
        matches!(done, Response::Result { code: 32, .. }),
        "{done:?}"
    );
}

#[test]
fn an_administrator_moderates_and_alone_reads_the_owner() {
    let server = TestServer::with(with_admin);
    register_from(&server, OWNER);
    let mut anonymous = server.ldap();
    let owner_of = |ldap: &mut LdapConn, attrs: Vec<&str>, filter: &str| {
        let (entries, _) = ldap
            .search(DN, Scope::Base, filter, attrs)
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| e.attrs.get("ilsOwner").cloned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        owner_of(&mut anonymous, vec!["ilsOwner", "+"], "(objectClass=*)"),
        [None]
    );
    assert!(
        owner_of(&mut anonymous, vec!["cn"], "(ilsOwner=*)").is_empty(),
        "no one else can even match on it"
    );
    let mut bob = server.ldap();
    bob.simple_bind("cn=bob,o=Intranet", "bobpw")
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(owner_of(&mut bob, vec!["+"], "(objectClass=*)"), [None]);

    let mut admin = server.ldap();
    assert_eq!(
        admin
            .simple_bind("cn=admin,o=Intranet", "wrong")
            .unwrap()
            .rc,
        49,
        "a wrong password for a hashed account"
    );
    admin
        .simple_bind("cn=admin,o=Intranet", "secret")
        .unwrap()
        .success()
        .unwrap();
    let expected = Some(vec!["ip:127.0.0.2".to_string()]);
    assert_eq!(
        owner_of(&mut admin, vec!["+"], "(objectClass=*)"),
        std::slice::from_ref(&expected)
    );
    assert_eq!(
        owner_of(&mut admin, vec!["ilsOwner"], "(ilsOwner=ip:127.0.0.2)"),
        [expected]
    );
    assert_eq!(
        admin
            .modify(DN, vec![Mod::Replace("givenName", ["Moderated"].into())])
            .unwrap()
            .rc,
        0
    );
    assert_eq!(state(&server).unwrap().1, "Moderated");
    assert_eq!(admin.delete(DN).unwrap().rc, 0);
    assert_eq!(state(&server), None);

    // A plain password works too (and is warned about at start).
    let mut plain = server.ldap();
    assert_eq!(
        plain
            .simple_bind("cn=plain,o=Intranet", "s3cret")
            .unwrap()
            .rc,
        0
    );
    assert_eq!(
        plain
            .simple_bind("cn=plain,o=Intranet", "S3cret")
            .unwrap()
            .rc,
        49
    );
}

#[test]
fn ldapdelete_as_an_administrator_removes_anyones_entry() {
    let server = TestServer::with(with_admin);
    register_from(&server, OWNER);
    let out = Command::new("ldapdelete")
        .args([
            "-x",
            "-H",
            &server.url(),
            "-D",
            "cn=admin,o=Intranet",
            "-w",
            "secret",
            DN,
        ])
        .output()
        .expect("OpenLDAP's ldapdelete is needed (Debian's ldap-utils; .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&server), None);
    // Without the administrator's name, it is refused.
    register_from(&server, OWNER);
    let out = Command::new("ldapdelete")
        .args(["-x", "-H", &server.url(), DN])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(50),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_verified_identity_owns_its_entries_from_any_address() {
    let server = TestServer::with(with_admin);
    let mut first = Raw::connect_from(server.addr, OWNER);
    assert_eq!(
        first.code(&bind_simple(1, 3, b"cn=bob,o=Intranet", b"bobpw")),
        SUCCESS
    );
    let req = add(
        2,
        DN.as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"alice@example.org"]),
        ],
    );
    assert_eq!(first.code(&req), SUCCESS);
    // Same address, no logon: not the owner.
    let mut anonymous = Raw::connect_from(server.addr, OWNER);
    let change = modify(3, DN.as_bytes(), &[(2, b"givenName", &[b"X"])]);
    assert_eq!(anonymous.code(&change), INSUFFICIENT_ACCESS);
    // Another address, logged on as bob: the owner.
    let mut elsewhere = Raw::connect_from(server.addr, OTHER);
    assert_eq!(
        elsewhere.code(&bind_simple(1, 3, b"cn=bob,o=Intranet", b"bobpw")),
        SUCCESS
    );
    assert_eq!(elsewhere.code(&change), SUCCESS);
}

#[test]
fn ownership_identity_needs_a_logon_and_none_lets_anyone() {
    let server = TestServer::with(|c| {
        with_admin(c);
        c.ownership = Ownership::Identity;
    });
    let mut anonymous = Raw::connect_from(server.addr, OWNER);
    let req = add(
        2,
        DN.as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"alice@example.org"]),
        ],
    );
    assert_eq!(anonymous.code(&req), INSUFFICIENT_ACCESS);
    assert_eq!(
        anonymous.code(&bind_simple(3, 3, b"cn=bob,o=Intranet", b"bobpw")),
        SUCCESS
    );
    assert_eq!(anonymous.code(&req), SUCCESS);

    let server = TestServer::with(|c| c.ownership = Ownership::None);
    register_from(&server, OWNER);
    let mut other = Raw::connect_from(server.addr, OTHER);
    let (codes, _) = try_everything(&mut other);
    assert_eq!(
        codes, [SUCCESS; 3],
        "today's behaviour, for sites that want it"
    );
    assert_eq!(other.code(&delete(9, DN.as_bytes())), SUCCESS);
}

#[test]
fn no_one_but_an_administrator_sets_the_owner() {
    let server = TestServer::with(with_admin);
    let mut raw = Raw::connect_from(server.addr, OWNER);
    let forged = add(
        2,
        DN.as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"alice@example.org"]),
            (b"ilsOwner", &[b"ip:127.0.0.3"]),
        ],
    );
    assert_eq!(raw.code(&forged), INSUFFICIENT_ACCESS);
    // An administrator restoring an entry for its owner.
    let mut admin = Raw::connect_from(server.addr, OTHER);
    assert_eq!(
        admin.code(&bind_simple(1, 3, b"cn=admin,o=Intranet", b"secret")),
        SUCCESS
    );
    assert_eq!(admin.code(&forged), SUCCESS);
    let mut owner = Raw::connect_from(server.addr, OTHER);
    assert_eq!(
        owner.code(&delete(3, DN.as_bytes())),
        SUCCESS,
        "127.0.0.3 owns it"
    );
}

#[test]
fn denied_names_and_addresses_are_refused_and_a_reload_removes_them() {
    let config = |c: &mut Config| {
        with_admin(c);
        c.moderation
            .names
            .push(NamePattern::parse("*spam*").unwrap());
        c.moderation
            .addresses
            .push(Cidr::parse("127.0.0.64/26").unwrap());
    };
    let server = TestServer::with(config);
    let mut raw = Raw::connect_from(server.addr, OWNER);
    let named = |msgid, cn: &[u8], comment: &[u8]| {
        add(
            msgid,
            &[b"cn=", cn, b",ou=Dynamic,o=Intranet"].concat(),
            &[
                (b"objectClass", &[b"rtPerson"]),
                (b"cn", &[cn]),
                (b"comment", &[comment]),
            ],
        )
    };
    assert_eq!(raw.code(&named(2, b"Buy-SPAM-now", b"hi")), UNWILLING);
    assert_eq!(raw.code(&named(3, b"carol", b"cheap SPAM here")), UNWILLING);
    assert_eq!(raw.code(&named(4, b"carol", b"hello")), SUCCESS);
    let rename = modify(
        5,
        b"cn=carol,ou=Dynamic,o=Intranet",
        &[(2, b"location", &[b"Spamville"])],
    );
    assert_eq!(raw.code(&rename), UNWILLING);
    // From a denied address: no write, but searches.
    let mut denied = Raw::connect_from(server.addr, Ipv4Addr::new(127, 0, 0, 100));
    assert_eq!(denied.code(&named(6, b"dave", b"hello")), UNWILLING);
    assert_eq!(
        denied.code(&delete(7, b"cn=carol,ou=Dynamic,o=Intranet")),
        UNWILLING
    );
    let list = search(8, b"ou=Dynamic,o=Intranet", 1, f::present(b"cn"), &[b"cn"]);
    assert_eq!(denied.found(&list).len(), 1);

    // A reload with a rule that matches carol removes her at once, and
    // one that denies searches to those addresses bars them.
    let mut next = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        min_ttl: 1,
        ..Config::default()
    };
    config(&mut next);
    next.moderation
        .names
        .push(NamePattern::parse("car*").unwrap());
    next.moderation.address_search = true;
    server.server.reload(&next);
    assert!(
        raw.found(&search(
            9,
            b"ou=Dynamic,o=Intranet",
            1,
            f::present(b"cn"),
            &[b"cn"]
        ))
        .is_empty()
    );
    assert_eq!(denied.code(&list), UNWILLING);
}

#[test]
fn an_ipv6_rule_bars_an_ipv6_client() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this test needs IPv6 on loopback (::1)");
    };
    let config = Config {
        moderation: ilsd::auth::moderation::Moderation {
            addresses: vec![Cidr::parse("::1/128").unwrap()],
            ..Default::default()
        },
        ..Config::default()
    };
    let server = ilsd::server::Server::from_listeners(&config, vec![listener]).unwrap();
    let mut raw = Raw::connect(server.local_addr());
    let req = add(
        2,
        DN.as_bytes(),
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"alice@example.org"]),
        ],
    );
    assert_eq!(raw.code(&req), UNWILLING);
    server.shutdown();
}

#[test]
fn another_clients_application_entry_stays_its_own() {
    let server = TestServer::with(with_admin);
    let mut owner = register_from(&server, OWNER);
    let app = |msgid, port: &[u8]| {
        modify(
            msgid,
            DN.as_bytes(),
            &[
                (2, b"smodop", &[b"0"]),
                (2, b"sappid", &[b"ms-netmeeting"]),
                (2, b"sport", &[port]),
            ],
        )
    };
    assert_eq!(owner.code(&app(3, b"1503")), SUCCESS);
    // Someone else adds an application entry of another name with the
    // same cn, as anyone may under ou=Applications.
    let mut other = Raw::connect_from(server.addr, OTHER);
    let planted = add(
        4,
        b"cn=alice@example.org,appName=evil,ou=Applications,o=Intranet",
        &[
            (b"objectClass", &[b"rtApplicationUser"]),
            (b"cn", &[b"alice@example.org"]),
            (b"sprotid", &[b"h323"]),
        ],
    );
    assert_eq!(other.code(&planted), SUCCESS);
    // It adds nothing to what alice is shown with.
    let shown = owner.found(&search(
        5,
        DN.as_bytes(),
        0,
        f::present(b"cn"),
        &[b"sprotid", b"sport"],
    ));
    assert_eq!(
        shown[0].get("sprotid"),
        None,
        "nothing of the planted entry"
    );
    assert_eq!(shown[0].first("sport"), Some(&b"1503"[..]));
    // And alice's delete takes her own application, not the other's.
    assert_eq!(owner.code(&delete(6, DN.as_bytes())), SUCCESS);
    let left = other.found(&search(
        7,
        b"ou=Applications,o=Intranet",
        2,
        f::eq(b"cn", b"alice@example.org"),
        &[b"cn"],
    ));
    let names: Vec<_> = left
        .iter()
        .map(|e| String::from_utf8_lossy(&e.dn).into_owned())
        .collect();
    assert_eq!(
        names,
        ["cn=alice@example.org,appName=evil,ou=Applications,o=Intranet"]
    );
    // smodop 0 on someone else's application entry is refused.
    register_from(&server, OWNER);
    let mut owner = Raw::connect_from(server.addr, OWNER);
    let theirs = modify(
        8,
        DN.as_bytes(),
        &[
            (2, b"smodop", &[b"0"]),
            (2, b"sappid", &[b"evil"]),
            (2, b"sport", &[b"1"]),
        ],
    );
    assert_eq!(owner.code(&theirs), INSUFFICIENT_ACCESS);
}
