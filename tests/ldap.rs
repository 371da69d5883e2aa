//! The core LDAP server, driven by a client nobody here wrote: the `ldap3`
//! crate's synchronous `LdapConn`. Every operation and result code.

mod common;

use std::collections::HashSet;

use common::*;
use ldap3::controls::RawControl;
use ldap3::exop::{Exop, WhoAmI};
use ldap3::{LdapConn, Mod, Scope, SearchEntry, SearchOptions};

fn set(values: &[&str]) -> HashSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn add_person(ldap: &mut LdapConn, cn: &str, extra: &[(&str, &[&str])]) -> u32 {
    let mut attrs = vec![
        (
            "objectClass".to_string(),
            set(&["rtPerson", "dynamicObject"]),
        ),
        ("cn".to_string(), set(&[cn])),
    ];
    attrs.extend(extra.iter().map(|(n, v)| (n.to_string(), set(v))));
    ldap.add(&format!("cn={cn},ou=Dynamic,o=Intranet"), attrs)
        .unwrap()
        .rc
}

fn entries(
    ldap: &mut LdapConn,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> (Vec<SearchEntry>, u32) {
    let result = ldap.search(base, scope, filter, attrs.to_vec()).unwrap();
    let rc = result.1.rc;
    (
        result.0.into_iter().map(SearchEntry::construct).collect(),
        rc,
    )
}

/// The entries of a search that must succeed.
fn search_ok(
    ldap: &mut LdapConn,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> Vec<SearchEntry> {
    let (entries, rc) = entries(ldap, base, scope, filter, attrs);
    assert_eq!(rc, 0, "search of {base} for {filter}");
    entries
}

fn cns(found: &[SearchEntry]) -> Vec<String> {
    let mut v: Vec<String> = found.iter().map(|e| e.attrs["cn"][0].clone()).collect();
    v.sort();
    v
}

#[test]
fn binds_anonymous_and_with_configured_accounts() {
    let server = TestServer::with(|c| {
        c.set("account", "cn=admin,o=Intranet s3cret", true)
            .unwrap();
    });
    let mut ldap = server.ldap();
    assert_eq!(ldap.simple_bind("", "").unwrap().rc, 0);
    assert_eq!(
        ldap.simple_bind("cn=anyone", "").unwrap().rc,
        0,
        "empty password is anonymous"
    );
    assert_eq!(
        ldap.simple_bind("CN=Admin, o=intranet", "s3cret")
            .unwrap()
            .rc,
        0
    );
    let (who, _) = ldap.extended(WhoAmI).unwrap().success().unwrap();
    assert_eq!(who.val.as_deref(), Some(&b"dn:CN=Admin, o=intranet"[..]));
    assert_eq!(
        ldap.simple_bind("cn=admin,o=Intranet", "wrong").unwrap().rc,
        49
    );
    assert_eq!(
        ldap.simple_bind("cn=nobody,o=Intranet", "s3cret")
            .unwrap()
            .rc,
        49
    );
    let (who, _) = ldap.extended(WhoAmI).unwrap().success().unwrap();
    assert_eq!(
        who.val.as_deref().unwrap_or_default(),
        b"",
        "a failed bind is anonymous"
    );
    assert_eq!(
        ldap.simple_bind("cn=ADMIN,o=Intranet", "").unwrap().rc,
        53,
        "an account's name with an empty password is unwillingToPerform"
    );
    assert_eq!(
        ldap.sasl_external_bind().unwrap().rc,
        7,
        "authMethodNotSupported"
    );
    // LDAPv2 works (raw, since ldap3 only speaks v3); other versions do not.
    let mut raw = server.raw();
    assert_eq!(raw.code(&bind_v2(1)), 0);
    assert_eq!(
        raw.code(&bind_simple(2, 5, b"", b"")),
        2,
        "protocolError for version 5"
    );
}

#[test]
fn root_dse_describes_the_server() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    let (found, rc) = entries(&mut ldap, "", Scope::Base, "(objectClass=*)", &["+"]);
    assert_eq!(rc, 0);
    let dse = &found[0].attrs;
    assert_eq!(dse["namingContexts"], ["o=Intranet"]);
    assert_eq!(dse["supportedLDAPVersion"], ["2", "3"]);
    assert_eq!(dse["supportedSASLMechanisms"], ["NTLM"]);
    assert!(dse["supportedExtension"].contains(&"1.3.6.1.4.1.1466.101.119.1".to_string()));
    assert!(dse["supportedExtension"].contains(&"1.3.6.1.4.1.4203.1.11.3".to_string()));
    assert!(dse["dynamicSubtrees"].contains(&"ou=Dynamic,o=Intranet".to_string()));
    assert_eq!(dse["vendorName"], ["ilsd"]);
    assert!(dse.contains_key("vendorVersion"));
    let found = search_ok(
        &mut ldap,
        "",
        Scope::Base,
        "(objectClass=*)",
        &["vendorName"],
    );
    assert_eq!(found[0].attrs.keys().collect::<Vec<_>>(), ["vendorName"]);
}

#[test]
fn static_tree_and_schema_are_searchable() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    let found = search_ok(
        &mut ldap,
        "o=Intranet",
        Scope::OneLevel,
        "(objectClass=organizationalUnit)",
        &["ou"],
    );
    let mut ous: Vec<String> = found.iter().map(|e| e.attrs["ou"][0].clone()).collect();
    ous.sort();
    assert_eq!(ous, ["Admin", "Applications", "Dynamic"]);
    let found = search_ok(
        &mut ldap,
        "cn=Schema,ou=Admin,o=Intranet",
        Scope::OneLevel,
        "(objectClass=classSchema)",
        &["cn"],
    );
    let classes = cns(&found);
    for want in [
        "dynamicObject",
        "rtApplicationUser",
        "rtConference",
        "rtPerson",
    ] {
        assert!(classes.contains(&want.to_string()), "{want} in {classes:?}");
    }
    let found = search_ok(
        &mut ldap,
        "cn=Schema,ou=Admin,o=Intranet",
        Scope::Subtree,
        "(cn=ntSecurityDescriptor)",
        &["attributeSyntax", "isSingleValued"],
    );
    assert_eq!(found[0].attrs["attributeSyntax"], ["Binary"]);
    let found = search_ok(
        &mut ldap,
        "cn=Schema,ou=Admin,o=Intranet",
        Scope::Subtree,
        "(cn=schemaIDGUID)",
        &["schemaIDGUID"],
    );
    assert_eq!(
        found[0].attrs["schemaIDGUID"],
        ["ed1af3b3-bcfa-11d0-853a-00a0c90c93e1"]
    );
}

#[test]
fn every_filter_kind_and_scope() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(
        &mut ldap,
        "alice",
        &[
            ("givenName", &["Alice"]),
            ("port", &["1503", "1720"]),
            ("location", &["Oslo"]),
        ],
    );
    add_person(
        &mut ldap,
        "bob",
        &[("givenName", &["Bob"]), ("port", &["80"])],
    );
    add_person(&mut ldap, "carol", &[("givenName", &["Carol Ann"])]);
    let base = "ou=Dynamic,o=Intranet";
    let q = |ldap: &mut LdapConn, filter: &str| {
        cns(&search_ok(ldap, base, Scope::OneLevel, filter, &["cn"]))
    };
    assert_eq!(q(&mut ldap, "(cn=ALICE)"), ["alice"]);
    assert_eq!(q(&mut ldap, "(givenName=*ann)"), ["carol"]);
    assert_eq!(q(&mut ldap, "(givenName=c*l*n)"), ["carol"]);
    assert_eq!(q(&mut ldap, "(location=*)"), ["alice"]);
    assert_eq!(q(&mut ldap, "(port>=1000)"), ["alice"]);
    assert_eq!(q(&mut ldap, "(port<=100)"), ["bob"]);
    assert_eq!(q(&mut ldap, "(givenName~=carolann)"), ["carol"]);
    assert_eq!(q(&mut ldap, "(&(port=*)(!(cn=bob)))"), ["alice"]);
    assert_eq!(q(&mut ldap, "(|(cn=bob)(cn=carol))"), ["bob", "carol"]);
    assert_eq!(
        q(&mut ldap, "(!(objectClass=rtPerson))"),
        Vec::<String>::new()
    );
    assert_eq!(
        q(&mut ldap, "(cn:=alice)"),
        ["alice"],
        "extensible match without a rule"
    );
    assert_eq!(
        q(&mut ldap, "(cn:1.2.3.4:=alice)"),
        Vec::<String>::new(),
        "unknown rule is Undefined"
    );
    // The rules of RFC 4517 for strings, by name or OID, and the DN's
    // values with dnAttributes.
    assert_eq!(
        q(&mut ldap, "(givenName:caseIgnoreMatch:=ALICE)"),
        ["alice"]
    );
    assert_eq!(
        q(&mut ldap, "(givenName:caseExactMatch:=alice)"),
        Vec::<String>::new()
    );
    assert_eq!(q(&mut ldap, "(givenName:2.5.13.5:=Alice)"), ["alice"]);
    assert_eq!(q(&mut ldap, "(:caseIgnoreMatch:=oslo)"), ["alice"]);
    assert_eq!(q(&mut ldap, "(ou:dn:=dynamic)"), ["alice", "bob", "carol"]);
    assert_eq!(
        q(&mut ldap, "(&(o:dn:caseIgnoreMatch:=intranet)(cn=bob))"),
        ["bob"]
    );
    assert_eq!(q(&mut ldap, "(ou:=dynamic)"), Vec::<String>::new());
    // An OID names a type as its name does (RFC 4512 section 2.5), in
    // filters, attribute lists and DNs.
    assert_eq!(q(&mut ldap, "(2.5.4.3=BOB)"), ["bob"]);
    let found = search_ok(
        &mut ldap,
        "2.5.4.3=alice,ou=Dynamic,o=Intranet",
        Scope::Base,
        "(objectClass=*)",
        &["2.5.4.42"],
    );
    assert_eq!(found[0].attrs["2.5.4.42"], ["Alice"]);
    // Scopes.
    let found = search_ok(
        &mut ldap,
        "cn=alice,ou=Dynamic,o=Intranet",
        Scope::Base,
        "(objectClass=*)",
        &["cn"],
    );
    assert_eq!(cns(&found), ["alice"]);
    let found = search_ok(
        &mut ldap,
        "o=Intranet",
        Scope::OneLevel,
        "(cn=alice)",
        &["cn"],
    );
    assert!(
        found.is_empty(),
        "one level below o=Intranet holds no people"
    );
    let found = search_ok(
        &mut ldap,
        "o=Intranet",
        Scope::Subtree,
        "(objectClass=rtPerson)",
        &["cn"],
    );
    assert_eq!(found.len(), 3);
    let (_, rc) = entries(
        &mut ldap,
        "ou=Nowhere,o=Intranet",
        Scope::Subtree,
        "(cn=*)",
        &["cn"],
    );
    assert_eq!(rc, 32);
}

#[test]
fn attribute_selection_types_only_and_limits() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    for cn in ["a", "b", "c", "d"] {
        add_person(&mut ldap, cn, &[("givenName", &["G"])]);
    }
    let dn = "cn=a,ou=Dynamic,o=Intranet";
    let e = search_ok(&mut ldap, dn, Scope::Base, "(objectClass=*)", &["*"]);
    assert!(e[0].attrs.contains_key("givenName") && !e[0].attrs.contains_key("entryTTL"));
    let e = search_ok(&mut ldap, dn, Scope::Base, "(objectClass=*)", &["+"]);
    assert_eq!(e[0].attrs.keys().collect::<Vec<_>>(), ["entryTTL"]);
    let e = search_ok(&mut ldap, dn, Scope::Base, "(objectClass=*)", &["*", "+"]);
    assert!(e[0].attrs.contains_key("givenName") && e[0].attrs.contains_key("entryTTL"));
    let e = search_ok(&mut ldap, dn, Scope::Base, "(objectClass=*)", &["1.1"]);
    assert!(e[0].attrs.is_empty());
    let e = search_ok(&mut ldap, dn, Scope::Base, "(objectClass=*)", &[]);
    assert!(
        e[0].attrs.contains_key("cn"),
        "no list means all user attributes"
    );

    ldap.with_search_options(SearchOptions::new().typesonly(true));
    let e = search_ok(
        &mut ldap,
        dn,
        Scope::Base,
        "(objectClass=*)",
        &["givenName"],
    );
    assert_eq!(
        e[0].attrs.get("givenName").map(Vec::len),
        Some(0),
        "{:?}",
        e[0]
    );

    ldap.with_search_options(SearchOptions::new().sizelimit(2));
    let (e, rc) = entries(
        &mut ldap,
        "ou=Dynamic,o=Intranet",
        Scope::OneLevel,
        "(cn=*)",
        &["cn"],
    );
    assert_eq!((e.len(), rc), (2, 4), "sizeLimitExceeded after two entries");

    let server = TestServer::with(|c| c.size_limit = 1);
    let mut ldap = server.ldap();
    add_person(&mut ldap, "x", &[]);
    add_person(&mut ldap, "y", &[]);
    let (e, rc) = entries(
        &mut ldap,
        "ou=Dynamic,o=Intranet",
        Scope::OneLevel,
        "(cn=*)",
        &["cn"],
    );
    assert_eq!((e.len(), rc), (1, 4), "the server's size-limit applies too");
}

#[test]
fn add_answers_the_standard_codes() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    assert_eq!(add_person(&mut ldap, "dup", &[]), 0);
    assert_eq!(add_person(&mut ldap, "DUP", &[]), 68, "entryAlreadyExists");
    let r = ldap
        .add(
            "cn=x,ou=Missing,o=Intranet",
            vec![
                ("objectClass".to_string(), set(&["rtPerson"])),
                ("cn".to_string(), set(&["x"])),
            ],
        )
        .unwrap();
    assert_eq!(
        (r.rc, r.matched.as_str()),
        (32, "o=Intranet"),
        "noSuchObject names the nearest entry"
    );
    let r = ldap
        .add(
            "cn=x,ou=Dynamic,o=Intranet",
            vec![
                ("objectClass".to_string(), set(&["inetOrgPerson"])),
                ("cn".to_string(), set(&["x"])),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 65, "objectClassViolation for an unknown class");
    let r = ldap
        .add(
            "uid=c1,ou=Dynamic,o=Intranet",
            vec![
                ("objectClass".to_string(), set(&["rtApplicationUser"])),
                ("uid".to_string(), set(&["c1"])),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 65, "objectClassViolation for a missing cn");
    let r = ldap
        .add(
            "cn=x=y=,ou=Dynamic,o=Intranet",
            vec![("objectClass".to_string(), set(&["rtPerson"]))],
        )
        .unwrap();
    assert!(r.rc == 0 || r.rc == 34, "{r:?}");
    let r = ldap
        .add(
            "this is not a DN",
            vec![("objectClass".to_string(), set(&["rtPerson"]))],
        )
        .unwrap();
    assert_eq!(r.rc, 34, "invalidDNSyntax");
    for dn in ["cn=,ou=Dynamic,o=Intranet", "cn= ,objectClass=rtPerson"] {
        let r = ldap
            .add(dn, vec![("objectClass".to_string(), set(&["rtPerson"]))])
            .unwrap();
        assert_eq!(r.rc, 34, "{dn}: an empty name");
    }
    let r = ldap
        .add(
            "cn=x,ou=Admin,o=Intranet",
            vec![
                ("objectClass".to_string(), set(&["rtPerson"])),
                ("cn".to_string(), set(&["x"])),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 53, "the static tree is not writable");
    // entryTTL is checked as a Modify checks it.
    assert_eq!(
        add_person(&mut ldap, "t1", &[("entryTTL", &["soon"])]),
        21,
        "invalidAttributeSyntax"
    );
    assert_eq!(
        add_person(&mut ldap, "t2", &[("entryTTL", &["60", "70"])]),
        19,
        "constraintViolation: entryTTL is single-valued"
    );
    assert_eq!(add_person(&mut ldap, "t3", &[("entryTTL", &["60"])]), 0);
    // An empty set asks for nothing (sent raw: ldap3 refuses to).
    let mut raw = server.raw();
    let no_ttl: &[&[u8]] = &[];
    assert_eq!(
        raw.code(&add(
            1,
            b"cn=t4,ou=Dynamic,o=Intranet",
            &[(b"objectClass", &[b"rtPerson"]), (b"entryTTL", no_ttl)]
        )),
        0
    );
}

#[test]
fn modify_add_delete_replace_and_errors() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(&mut ldap, "m", &[("port", &["1"])]);
    let dn = "cn=m,ou=Dynamic,o=Intranet";
    let m = |ldap: &mut LdapConn, mods: Vec<Mod<&str>>| ldap.modify(dn, mods).unwrap().rc;
    assert_eq!(m(&mut ldap, vec![Mod::Add("port", ["2"].into())]), 0);
    assert_eq!(
        m(&mut ldap, vec![Mod::Add("port", ["2"].into())]),
        20,
        "attributeOrValueExists"
    );
    assert_eq!(m(&mut ldap, vec![Mod::Delete("port", ["1"].into())]), 0);
    assert_eq!(
        m(&mut ldap, vec![Mod::Delete("port", ["9"].into())]),
        16,
        "noSuchAttribute for a missing value"
    );
    assert_eq!(
        m(&mut ldap, vec![Mod::Replace("location", ["Paris"].into())]),
        0
    );
    assert_eq!(
        m(&mut ldap, vec![Mod::Delete("location", HashSet::new())]),
        0
    );
    assert_eq!(
        m(&mut ldap, vec![Mod::Delete("location", HashSet::new())]),
        16
    );
    assert_eq!(
        m(&mut ldap, vec![Mod::Delete("cn", HashSet::new())]),
        67,
        "notAllowedOnRDN"
    );
    assert_eq!(
        m(
            &mut ldap,
            vec![Mod::Replace("objectClass", ["dynamicObject"].into())]
        ),
        65
    );
    // All or nothing: a failing change leaves the entry as it was.
    assert_eq!(
        m(
            &mut ldap,
            vec![
                Mod::Replace("location", ["Rome"].into()),
                Mod::Delete("nothing", HashSet::new())
            ]
        ),
        16
    );
    let e = search_ok(
        &mut ldap,
        dn,
        Scope::Base,
        "(objectClass=*)",
        &["port", "location"],
    );
    assert_eq!(e[0].attrs["port"], ["2"]);
    assert!(!e[0].attrs.contains_key("location"));
    assert_eq!(
        ldap.modify(
            "cn=none,ou=Dynamic,o=Intranet",
            vec![Mod::Replace("port", ["1"].into())]
        )
        .unwrap()
        .rc,
        32
    );
    assert_eq!(
        ldap.modify(
            "ou=Dynamic,o=Intranet",
            vec![Mod::Replace("description", ["x"].into())]
        )
        .unwrap()
        .rc,
        53
    );
    assert_eq!(
        ldap.modifydn(dn, "cn=n", true, None).unwrap().rc,
        53,
        "ModifyDN is unwillingToPerform"
    );
}

#[test]
fn delete_and_compare() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(&mut ldap, "d", &[("givenName", &["Dee"])]);
    let dn = "cn=d,ou=Dynamic,o=Intranet";
    assert_eq!(
        ldap.compare(dn, "givenName", "DEE").unwrap().0.rc,
        6,
        "compareTrue"
    );
    assert_eq!(
        ldap.compare(dn, "givenName", "Dan").unwrap().0.rc,
        5,
        "compareFalse"
    );
    assert_eq!(
        ldap.compare(dn, "surname", "x").unwrap().0.rc,
        16,
        "noSuchAttribute"
    );
    assert_eq!(
        ldap.compare("cn=zz,ou=Dynamic,o=Intranet", "cn", "zz")
            .unwrap()
            .0
            .rc,
        32
    );
    // Every entry is of class top, listed or not (RFC 4512 2.4.1).
    assert_eq!(
        ldap.compare(dn, "objectClass", "top").unwrap().0.rc,
        6,
        "top is implied"
    );
    assert_eq!(
        cns(&search_ok(
            &mut ldap,
            "ou=Dynamic,o=Intranet",
            Scope::OneLevel,
            "(objectClass=TOP)",
            &["cn"]
        )),
        ["d"]
    );
    assert!(
        search_ok(
            &mut ldap,
            "ou=Dynamic,o=Intranet",
            Scope::OneLevel,
            "(objectClass=to*)",
            &["cn"]
        )
        .is_empty(),
        "only equality implies top"
    );
    // The entries the server computes answer too.
    for (dn, attr, value, rc) in [
        ("", "namingContexts", "O=intranet", 6),
        ("", "supportedLDAPVersion", "4", 5),
        ("", "objectClass", "top", 6),
        ("", "cn", "x", 16),
        ("cn=monitor,ou=admin,o=intranet", "cn", "monitor", 6),
        ("cn=Monitor,ou=Admin,o=Intranet", "objectClass", "person", 5),
    ] {
        let got = ldap.compare(dn, attr, value).unwrap().0.rc;
        assert_eq!(got, rc, "compare {attr}={value} on {dn:?}");
    }
    assert_eq!(ldap.delete(dn).unwrap().rc, 0);
    assert_eq!(ldap.delete(dn).unwrap().rc, 32);
    assert_eq!(ldap.delete("ou=Dynamic,o=Intranet").unwrap().rc, 53);
}

fn refresh_value(dn: &str, ttl: i64) -> Vec<u8> {
    cons(0x30, &[prim(0x80, dn.as_bytes()), int(0x81, ttl)])
}

#[test]
fn rfc2589_refresh_extended_operation() {
    let server = TestServer::with(|c| {
        c.min_ttl = 30;
        c.max_ttl = 3600;
    });
    let mut ldap = server.ldap();
    add_person(&mut ldap, "r", &[]);
    let refresh = |ldap: &mut LdapConn, dn: &str, ttl: i64| {
        ldap.extended(Exop {
            name: Some("1.3.6.1.4.1.1466.101.119.1".into()),
            val: Some(refresh_value(dn, ttl)),
        })
        .unwrap()
    };
    let result = refresh(&mut ldap, "cn=r,ou=Dynamic,o=Intranet", 100);
    assert_eq!(result.1.rc, 0);
    // responseTtl [1] 100 inside a SEQUENCE.
    let value = result.0.val.expect("a response value");
    assert_eq!(&value[value.len() - 3..], &[0x81, 0x01, 100]);
    let e = search_ok(
        &mut ldap,
        "cn=r,ou=Dynamic,o=Intranet",
        Scope::Base,
        "(objectClass=*)",
        &["entryTTL"],
    );
    assert_eq!(e[0].attrs["entryTTL"], ["100"]);
    let granted = refresh(&mut ldap, "cn=r,ou=Dynamic,o=Intranet", 999_999)
        .0
        .val
        .unwrap();
    assert_eq!(
        &granted[granted.len() - 4..],
        &[0x81, 0x02, 0x0e, 0x10],
        "lowered to 3600"
    );
    let granted = refresh(&mut ldap, "cn=r,ou=Dynamic,o=Intranet", 1)
        .0
        .val
        .unwrap();
    assert_eq!(
        &granted[granted.len() - 3..],
        &[0x81, 0x01, 30],
        "raised to 30"
    );
    assert_eq!(
        refresh(&mut ldap, "cn=gone,ou=Dynamic,o=Intranet", 100)
            .1
            .rc,
        32
    );
    assert_eq!(
        refresh(&mut ldap, "ou=Dynamic,o=Intranet", 100).1.rc,
        65,
        "not a dynamic object"
    );
    let bad = ldap
        .extended(Exop {
            name: Some("1.3.6.1.4.1.1466.101.119.1".into()),
            val: Some(b"junk".to_vec()),
        })
        .unwrap();
    assert_eq!(bad.1.rc, 2);
    let unknown = ldap
        .extended(Exop {
            name: Some("1.2.3.4".into()),
            val: None,
        })
        .unwrap();
    assert_eq!(
        unknown.1.rc, 2,
        "unknown extended operation is protocolError"
    );
}

#[test]
fn critical_controls_are_refused_and_others_ignored() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(&mut ldap, "s", &[]);
    // Server-side sorting, critical: unavailableCriticalExtension.
    let sort = RawControl {
        ctype: "1.2.840.113556.1.4.473".into(),
        crit: true,
        val: Some(cons(0x30, &[cons(0x30, &[octets(b"cn")])])),
    };
    let result = ldap
        .with_controls(sort)
        .search(
            "ou=Dynamic,o=Intranet",
            Scope::OneLevel,
            "(cn=*)",
            vec!["cn"],
        )
        .unwrap();
    assert_eq!((result.0.len(), result.1.rc), (0, 12));
    let lenient = RawControl {
        ctype: "1.2.840.113556.1.4.473".into(),
        crit: false,
        val: None,
    };
    let result = ldap
        .with_controls(lenient)
        .search(
            "ou=Dynamic,o=Intranet",
            Scope::OneLevel,
            "(cn=*)",
            vec!["cn"],
        )
        .unwrap();
    assert_eq!((result.0.len(), result.1.rc), (1, 0));
    let r = ldap
        .with_controls(RawControl {
            ctype: "1.2.3".into(),
            crit: true,
            val: None,
        })
        .delete("cn=s,ou=Dynamic,o=Intranet")
        .unwrap();
    assert_eq!(r.rc, 12);
    assert_eq!(
        ldap.delete("cn=s,ou=Dynamic,o=Intranet").unwrap().rc,
        0,
        "the refused delete changed nothing"
    );
}

#[test]
fn abandon_has_no_answer_and_the_session_goes_on() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send(&message(5, int(0x50, 4)));
    // The next answer is the bind's: the abandon has none.
    raw.send(&bind_v2(6));
    assert!(
        matches!(
            raw.recv(),
            Some(Response::Result {
                msgid: 6,
                code: 0,
                ..
            })
        ),
        "the bind's answer"
    );
    let mut ldap = server.ldap();
    ldap.abandon(1).unwrap();
    assert_eq!(ldap.simple_bind("", "").unwrap().rc, 0);
}

#[test]
fn a_short_ttl_entry_is_gone_within_two_seconds_and_a_refreshed_one_stays() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    for cn in ["short", "kept"] {
        add_person(&mut ldap, cn, &[]);
        let value = refresh_value(&format!("cn={cn},ou=Dynamic,o=Intranet"), 1);
        ldap.extended(Exop {
            name: Some("1.3.6.1.4.1.1466.101.119.1".into()),
            val: Some(value),
        })
        .unwrap();
    }
    let started = std::time::Instant::now();
    let mut gone = false;
    while started.elapsed() < std::time::Duration::from_secs(2) {
        // Longer than any stall of a loaded machine, but refreshed before
        // its first second is up.
        let value = refresh_value("cn=kept,ou=Dynamic,o=Intranet", 3600);
        ldap.extended(Exop {
            name: Some("1.3.6.1.4.1.1466.101.119.1".into()),
            val: Some(value),
        })
        .unwrap();
        let e = search_ok(
            &mut ldap,
            "ou=Dynamic,o=Intranet",
            Scope::OneLevel,
            "(cn=short)",
            &["cn"],
        );
        if e.is_empty() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "the 1-second entry outlived 2 seconds");
    let e = search_ok(
        &mut ldap,
        "ou=Dynamic,o=Intranet",
        Scope::OneLevel,
        "(cn=kept)",
        &["cn"],
    );
    assert_eq!(e.len(), 1);
    // Its name is free again.
    assert_eq!(add_person(&mut ldap, "short", &[]), 0);
}

fn monitor(ldap: &mut LdapConn, scope: Scope) -> Vec<SearchEntry> {
    search_ok(
        ldap,
        "CN=Monitor, ou=Admin,o=Intranet",
        scope,
        "(objectClass=*)",
        &[],
    )
}

fn count(entry: &SearchEntry, name: &str) -> u64 {
    entry.attrs[name][0].parse().unwrap()
}

#[test]
fn the_monitor_entry_counts_what_is_stored_until_the_sweep() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    let before = monitor(&mut ldap, Scope::Base);
    assert_eq!(before[0].dn, "cn=Monitor,ou=Admin,o=Intranet");
    assert_eq!(count(&before[0], "dynamicEntries"), 0);
    assert_eq!(count(&before[0], "entryMemory"), 0);
    for cn in ["a", "b"] {
        add_person(&mut ldap, cn, &[]);
    }
    let dn = "cn=a,ou=Dynamic,o=Intranet";
    ldap.extended(Exop {
        name: Some("1.3.6.1.4.1.1466.101.119.1".into()),
        val: Some(refresh_value(dn, 1)),
    })
    .unwrap();
    let now = monitor(&mut ldap, Scope::Subtree);
    assert_eq!(count(&now[0], "dynamicEntries"), 2);
    let two = count(&now[0], "entryMemory");
    assert!(two > 2 * 320, "{two} bytes");
    assert_eq!(count(&now[0], "entries"), count(&before[0], "entries") + 2);
    assert!(
        monitor(&mut ldap, Scope::OneLevel).is_empty(),
        "no children"
    );
    // Expired entries stay counted until the expiry thread removes them.
    let started = std::time::Instant::now();
    while count(&monitor(&mut ldap, Scope::Base)[0], "dynamicEntries") != 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "not swept"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        count(&monitor(&mut ldap, Scope::Base)[0], "entryMemory"),
        two / 2,
        "a removed entry gives its memory back"
    );
    let e = search_ok(
        &mut ldap,
        "cn=Monitor,ou=Admin,o=Intranet",
        Scope::Base,
        "(dynamicEntries=5)",
        &["cn"],
    );
    assert!(e.is_empty(), "the filter applies");
    // Searches from above find it as they find stored entries.
    let dns = |ldap: &mut LdapConn, base: &str, scope: Scope, filter: &str| {
        let found = search_ok(ldap, base, scope, filter, &["1.1"]);
        found.into_iter().map(|e| e.dn).collect::<Vec<_>>()
    };
    let admin = dns(
        &mut ldap,
        "ou=Admin,o=Intranet",
        Scope::OneLevel,
        "(objectClass=*)",
    );
    assert!(
        admin.contains(&"cn=Monitor,ou=Admin,o=Intranet".to_string()),
        "{admin:?}"
    );
    assert_eq!(
        dns(
            &mut ldap,
            "o=Intranet",
            Scope::Subtree,
            "(objectClass=monitor)"
        ),
        ["cn=Monitor,ou=Admin,o=Intranet"]
    );
    assert!(
        dns(
            &mut ldap,
            "ou=Dynamic,o=Intranet",
            Scope::Subtree,
            "(objectClass=monitor)"
        )
        .is_empty()
    );
}

#[test]
fn an_unbind_ends_the_session_whatever_its_controls() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let critical = cons(
        0xa0,
        &[cons(0x30, &[octets(b"1.2.3"), prim(0x01, &[0xff])])],
    );
    let mut both = cons(0x30, &[int(0x02, 1), prim(0x42, b""), critical]);
    both.extend(search(2, b"", 0, f::present(b"objectClass"), &[]));
    raw.send(&both);
    assert!(raw.closed(), "the search after the unbind is not answered");
}

#[test]
fn an_increment_is_refused_and_the_session_goes_on() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(&mut ldap, "inc", &[("port", &["1"])]);
    let mut raw = server.raw();
    assert_eq!(
        raw.code(&modify(
            1,
            b"cn=inc,ou=Dynamic,o=Intranet",
            &[(3, b"port", &[b"1"])]
        )),
        53,
        "unwillingToPerform"
    );
    assert_eq!(raw.code(&bind_v2(2)), SUCCESS);
}

#[test]
fn the_children_scope_leaves_the_base_out() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    add_person(&mut ldap, "kid", &[]);
    let mut raw = server.raw();
    let everything = f::present(b"objectClass");
    for (msgid, base, want) in [
        (
            1,
            &b"ou=Dynamic,o=Intranet"[..],
            vec!["cn=kid,ou=Dynamic,o=Intranet"],
        ),
        (2, b"cn=kid,ou=Dynamic,o=Intranet", vec![]),
        (3, b"cn=Monitor,ou=Admin,o=Intranet", vec![]),
    ] {
        let (entries, done) = raw.call(&search(msgid, base, 3, everything.clone(), &[b"cn"]));
        assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
        let dns: Vec<String> = entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.dn).into_owned())
            .collect();
        assert_eq!(dns, want, "{msgid}");
    }
}

#[test]
fn application_containers_are_entries_while_they_hold_applications() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    let app = |name: &str| {
        (
            format!("cn=u@x.org,appName={name},ou=Applications,o=Intranet"),
            vec![
                (
                    "objectClass".to_string(),
                    set(&["rtApplicationUser", "dynamicObject"]),
                ),
                ("cn".to_string(), set(&["u@x.org"])),
                ("sappid".to_string(), set(&[name])),
            ],
        )
    };
    for name in ["MS-NetMeeting", "ohphone"] {
        let (dn, attrs) = app(name);
        assert_eq!(ldap.add(&dn, attrs).unwrap().rc, 0);
    }
    // A browser goes down one level at a time.
    let level = search_ok(
        &mut ldap,
        "ou=Applications,o=Intranet",
        Scope::OneLevel,
        "(objectClass=*)",
        &["appName", "objectClass"],
    );
    let mut names: Vec<String> = level
        .iter()
        .map(|e| e.attrs["appName"][0].clone())
        .collect();
    names.sort();
    assert_eq!(names, ["MS-NetMeeting", "ohphone"]);
    assert!(level[0].attrs["objectClass"].contains(&"container".to_string()));
    let dns: HashSet<String> = level.iter().map(|e| e.dn.clone()).collect();
    assert!(
        dns.contains("appName=MS-NetMeeting,ou=Applications,o=Intranet"),
        "{dns:?}"
    );
    let one = search_ok(
        &mut ldap,
        "appname=ms-netmeeting,ou=applications,o=intranet",
        Scope::Base,
        "(objectClass=container)",
        &[],
    );
    assert_eq!(one.len(), 1);
    let below = search_ok(
        &mut ldap,
        "appName=ohphone,ou=Applications,o=Intranet",
        Scope::OneLevel,
        "(objectClass=*)",
        &["cn"],
    );
    assert_eq!(cns(&below), ["u@x.org"]);
    let everything = search_ok(
        &mut ldap,
        "o=Intranet",
        Scope::Subtree,
        "(appName=ohphone)",
        &[],
    );
    assert_eq!(everything.len(), 1, "the container alone holds appName");
    // Gone with its last application.
    assert_eq!(ldap.delete(&app("ohphone").0).unwrap().rc, 0);
    let (gone, rc) = entries(
        &mut ldap,
        "appName=ohphone,ou=Applications,o=Intranet",
        Scope::Base,
        "(objectClass=*)",
        &[],
    );
    assert_eq!((gone.len(), rc), (0, 32));
    let level = search_ok(
        &mut ldap,
        "ou=Applications,o=Intranet",
        Scope::OneLevel,
        "(objectClass=*)",
        &["appName"],
    );
    assert_eq!(level.len(), 1);
}

#[test]
fn containers_count_against_the_size_limit_only_when_they_match_and_are_shown_once() {
    let server = TestServer::start();
    let mut ldap = server.ldap();
    let class = ("objectClass".to_string(), set(&["rtApplicationUser"]));
    let app = |cn: &str| {
        (
            format!("cn={cn},appName=MS-NetMeeting,ou=Applications,o=Intranet"),
            vec![class.clone(), ("cn".to_string(), set(&[cn]))],
        )
    };
    let (dn, attrs) = app("u@x.org");
    assert_eq!(ldap.add(&dn, attrs).unwrap().rc, 0);
    // One match, a size limit of one: the container, which does not
    // match, is not counted.
    let found = ldap
        .with_search_options(SearchOptions::new().sizelimit(1))
        .search(
            "ou=Applications,o=Intranet",
            Scope::Subtree,
            "(cn=u@x.org)",
            vec!["cn"],
        )
        .unwrap();
    assert_eq!((found.0.len(), found.1.rc), (1, 0));
    // An entry stored under a container's name is shown once, as itself.
    let stored = vec![class.clone(), ("cn".to_string(), set(&["MS-NetMeeting"]))];
    let rc = ldap
        .add("appName=MS-NetMeeting,ou=Applications,o=Intranet", stored)
        .unwrap()
        .rc;
    assert_eq!(rc, 0);
    let level = search_ok(
        &mut ldap,
        "ou=Applications,o=Intranet",
        Scope::OneLevel,
        "(objectClass=*)",
        &["objectClass"],
    );
    assert_eq!(
        level.len(),
        1,
        "{:?}",
        level.iter().map(|e| &e.dn).collect::<Vec<_>>()
    );
    assert!(level[0].attrs["objectClass"].contains(&"rtApplicationUser".to_string()));
}
