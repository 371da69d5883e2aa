//! One test for each client behaviour listed in the project's interop
//! notes (shared/interop.md): what GnomeMeeting, Ekiga, OpenH323 and
//! NetMeeting do beyond the spec.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn person(raw: &mut Raw, msgid: i32, dn: &[u8], attrs: &[(&[u8], &[&[u8]])]) {
    assert_eq!(
        raw.code(&add(msgid, dn, attrs)),
        SUCCESS,
        "add {}",
        String::from_utf8_lossy(dn)
    );
}

fn list(raw: &mut Raw, filter: Vec<u8>, attrs: &[&[u8]]) -> Vec<RawEntry> {
    let (entries, done) = raw.call(&search(50, b"objectClass=rtPerson", 0, filter, attrs));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    entries
}

#[test]
fn clients_that_never_bind_can_add_and_search() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=nobind@x.org,objectclass=rtperson",
        &[(b"givenname", &[b"No"])],
    );
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"nobind@x.org"), &[b"cn"]).len(),
        1
    );
}

#[test]
fn an_ldapv2_client_may_number_a_request_0() {
    // RFC 1777 section 4: MessageID ::= INTEGER (0 .. maxInt). An LDAPv2
    // anonymous Bind numbered 0, then a search numbered 0.
    let server = TestServer::start();
    let mut raw = server.raw();
    let bind = [
        0x30, 0x0c, 0x02, 0x01, 0x00, 0x60, 0x07, 0x02, 0x01, 0x02, 0x04, 0x00, 0x80, 0x00,
    ];
    let (_, done) = raw.call(&bind);
    assert!(
        matches!(
            done,
            Response::Result {
                msgid: 0,
                code: 0,
                tag: 1,
                ..
            }
        ),
        "{done:?}"
    );
    let (_, done) = raw.call(&search(
        0,
        b"o=Intranet",
        0,
        f::present(b"objectClass"),
        &[],
    ));
    assert!(
        matches!(
            done,
            Response::Result {
                msgid: 0,
                code: 0,
                tag: 5,
                ..
            }
        ),
        "{done:?}"
    );
}

#[test]
fn every_dn_variant_names_the_same_entry() {
    let server = TestServer::start();
    let mut raw = server.raw();
    assert_eq!(raw.code(&bind_v2(1)), SUCCESS);
    person(
        &mut raw,
        2,
        b"c=-,o=Microsoft,cn=Ann@X.org,objectClass=rtPerson",
        &[],
    );
    for (i, dn) in [
        &b"c=DE,o=Acme,cn=ann@x.org,objectClass=rtPerson"[..],
        b"cn=ann@x.org,objectclass=rtperson",
        b"c=-, o=Microsoft, cn=ANN@x.org, objectClass=RTPerson",
        b"CN=ann@x.org, OBJECTCLASS=rtPerson",
        b"cn=ann@x.org,ou=Dynamic,o=Intranet",
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            raw.code(&add(10 + i as i32, dn, &[])),
            68,
            "entryAlreadyExists for {}",
            String::from_utf8_lossy(dn)
        );
        assert_eq!(
            raw.code(&modify(20 + i as i32, dn, &[(2, b"location", &[b"here"])])),
            SUCCESS
        );
    }
    assert_eq!(
        raw.code(&delete(30, b"cn=ANN@x.org, objectclass=rtperson")),
        SUCCESS
    );
    assert!(list(&mut raw, f::eq(b"cn", b"%"), &[b"cn"]).is_empty());
}

#[test]
fn adds_without_object_class_take_it_from_the_dn() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"c=-,o=Microsoft,cn=bare@x.org,objectClass=rtPerson",
        &[(b"sipaddress", &[b"1"])],
    );
    let e = raw.found(&search(
        2,
        b"cn=bare@x.org,ou=Dynamic,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[b"objectClass"],
    ));
    let classes: Vec<String> = e[0]
        .get("objectClass")
        .unwrap()
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(classes, ["rtPerson", "dynamicObject"]);
    // A standard DN without a class is an objectClassViolation.
    assert_eq!(
        raw.code(&add(
            3,
            b"cn=plain,ou=Dynamic,o=Intranet",
            &[(b"cn", &[b"plain"])]
        )),
        65
    );
}

#[test]
fn the_people_base_works_with_base_and_subtree_scope() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=a@x.org,objectClass=rtPerson", &[]);
    person(&mut raw, 2, b"cn=b@x.org,objectClass=rtPerson", &[]);
    for (scope, base) in [
        (0, &b"objectClass=rtPerson"[..]),
        (2, b"OBJECTCLASS=RTPERSON"),
        (1, b"objectclass=rtPerson"),
    ] {
        let entries = raw.found(&search(
            3,
            base,
            scope,
            f::present(b"objectClass"),
            &[b"cn"],
        ));
        assert_eq!(entries.len(), 2, "scope {scope}");
    }
}

#[test]
fn percent_and_star_are_wildcards_inside_equality_values() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=jo@x.org,objectClass=rtPerson",
        &[(b"givenname", &[b"Joanne"])],
    );
    person(
        &mut raw,
        2,
        b"cn=bo@x.org,objectClass=rtPerson",
        &[(b"givenname", &[b"Bob"])],
    );
    assert_eq!(list(&mut raw, f::eq(b"cn", b"%"), &[b"cn"]).len(), 2);
    let found = list(&mut raw, f::eq(b"givenname", b"%ANN%"), &[b"cn"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].first("cn"), Some(&b"jo@x.org"[..]));
    assert_eq!(
        list(&mut raw, f::eq(b"givenname", b"B*b"), &[b"cn"]).len(),
        1
    );
    assert_eq!(list(&mut raw, f::eq(b"cn", b"%@x.%"), &[b"cn"]).len(), 2);
    assert_eq!(
        list(&mut raw, f::sub(b"cn", Some(b"j"), &[], None), &[b"cn"]).len(),
        1
    );
}

#[test]
fn sttl_refreshes_what_the_rest_of_the_filter_matches() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=r1@x.org,objectClass=rtPerson",
        &[(b"location", &[b"Oslo"])],
    );
    person(
        &mut raw,
        2,
        b"cn=r2@x.org,objectClass=rtPerson",
        &[(b"location", &[b"Rome"])],
    );
    let entries = list(
        &mut raw,
        f::and(&[f::eq(b"location", b"oslo"), f::eq(b"sttl", b"2")]),
        &[b"cn", b"entryTTL"],
    );
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].first("entryTTL"), Some(&b"120"[..]));
    let other = list(&mut raw, f::eq(b"cn", b"r2@x.org"), &[b"entryTTL", b"sttl"]);
    assert_eq!(
        other[0].first("entryTTL"),
        Some(&b"1800"[..]),
        "the other entry keeps its TTL"
    );
    assert_eq!(
        other[0].first("sttl"),
        Some(&b"30"[..]),
        "sttl reads the TTL in minutes"
    );
    // (sttl=N) alone refreshes everything and is never a condition.
    assert_eq!(list(&mut raw, f::eq(b"sttl", b"5"), &[b"cn"]).len(), 2);
}

#[test]
fn netmeeting_lists_only_its_application_and_filters_by_category() {
    let server = TestServer::start();
    let mut raw = server.raw();
    for (i, (cn, app, category)) in [
        (&b"nm1@x"[..], &b"ms-netmeeting"[..], &b"2"[..]),
        (b"nm2@x", b"ms-netmeeting", b"4"),
        (b"gm@x", b"gnomemeeting", b"2"),
    ]
    .into_iter()
    .enumerate()
    {
        let dn = [&b"cn="[..], cn, b",objectClass=rtPerson"].concat();
        person(
            &mut raw,
            1 + i as i32,
            &dn,
            &[(b"ilsA39321630", &[category])],
        );
        assert_eq!(
            raw.code(&modify(
                10 + i as i32,
                &dn,
                &[
                    (2, b"smodop", &[b"0"]),
                    (2, b"sappid", &[app]),
                    (2, b"sprotid", &[b"h323"])
                ]
            )),
            SUCCESS
        );
    }
    let nm = |extra: Option<Vec<u8>>| {
        let mut parts = vec![
            f::eq(b"objectClass", b"rtPerson"),
            f::eq(b"cn", b"%"),
            f::eq(b"sappid", b"ms-netmeeting"),
            f::eq(b"sprotid", b"h323"),
        ];
        parts.extend(extra);
        f::and(&parts)
    };
    assert_eq!(list(&mut raw, nm(None), &[b"cn"]).len(), 2);
    let business = list(
        &mut raw,
        nm(Some(f::eq(b"ILSA39321630", b"2"))),
        &[b"cn", b"ilsa39321630"],
    );
    assert_eq!(business.len(), 1);
    assert_eq!(business[0].first("cn"), Some(&b"nm1@x"[..]));
    assert_eq!(business[0].names(), ["cn", "ilsa39321630"]);
}

#[test]
fn mapped_names_and_aliases_resolve_to_one_attribute() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=al@x.org,objectClass=rtPerson",
        &[
            (b"sn", &[b"Smith"]),
            (b"mail", &[b"al@x.org"]),
            (b"sipaddress", &[b"16777343"]),
        ],
    );
    let e = &list(
        &mut raw,
        f::and(&[
            f::eq(b"surname", b"smith"),
            f::eq(b"rfc822mailbox", b"al@x.org"),
        ]),
        &[
            b"surName",
            b"sn",
            b"rfc822mailbox",
            b"ipAddress",
            b"sIPAddress",
        ],
    )[0];
    assert_eq!(
        e.names(),
        ["surName", "sn", "rfc822mailbox", "ipAddress", "sIPAddress"]
    );
    assert_eq!(e.first("ipAddress"), Some(&b"16777343"[..]));
}

#[test]
fn results_come_in_the_order_asked_for() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=o@x.org,objectClass=rtPerson",
        &[
            (b"givenname", &[b"O"]),
            (b"surname", &[b"P"]),
            (b"location", &[b"Q"]),
            (b"sipaddress", &[b"1"]),
        ],
    );
    let order: &[&[u8]] = &[b"sipaddress", b"location", b"cn", b"givenname", b"surname"];
    let e = &list(&mut raw, f::eq(b"cn", b"o@x.org"), order)[0];
    assert_eq!(
        e.names(),
        ["sipaddress", "location", "cn", "givenname", "surname"]
    );
    let reversed: Vec<&[u8]> = order.iter().rev().copied().collect();
    let e = &list(&mut raw, f::eq(b"cn", b"o@x.org"), &reversed)[0];
    assert_eq!(
        e.names(),
        ["surname", "givenname", "cn", "location", "sipaddress"]
    );
}

#[test]
fn application_attributes_show_on_the_person_however_they_were_stored() {
    let server = TestServer::start();
    let mut raw = server.raw();
    // NetMeeting: smodop 0 creates the application entry.
    person(&mut raw, 1, b"cn=nm@x,objectClass=rtPerson", &[]);
    assert_eq!(
        raw.code(&modify(
            2,
            b"cn=nm@x,objectClass=rtPerson",
            &[
                (2, b"smodop", &[b"0"]),
                (2, b"sappid", &[b"ms-netmeeting"]),
                (2, b"sport", &[b"1720"])
            ]
        )),
        SUCCESS
    );
    // GnomeMeeting: the attributes straight on the person.
    person(
        &mut raw,
        3,
        b"cn=gm@x,objectClass=rtPerson",
        &[(b"sappid", &[b"ms-netmeeting"]), (b"sport", &[b"1720"])],
    );
    let entries = list(
        &mut raw,
        f::eq(b"sappid", b"ms-netmeeting"),
        &[b"cn", b"sappid", b"sport"],
    );
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e.names(), ["cn", "sappid", "sport"], "{:?}", e.dn);
    }
    // smodop 3 changes the application, smodop 1 removes it.
    assert_eq!(
        raw.code(&modify(
            4,
            b"cn=nm@x,objectClass=rtPerson",
            &[(2, b"smodop", &[b"3"]), (2, b"sport", &[b"1503"])]
        )),
        SUCCESS
    );
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"nm@x"), &[b"sport"])[0].first("sport"),
        Some(&b"1503"[..])
    );
    // smodop 2 changes the user.
    assert_eq!(
        raw.code(&modify(
            5,
            b"cn=nm@x,objectClass=rtPerson",
            &[(2, b"smodop", &[b"2"]), (2, b"location", &[b"Lyon"])]
        )),
        SUCCESS
    );
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"nm@x"), &[b"location"])[0].first("location"),
        Some(&b"Lyon"[..])
    );
    assert_eq!(
        raw.code(&modify(
            6,
            b"cn=nm@x,objectClass=rtPerson",
            &[(2, b"smodop", &[b"1"])]
        )),
        SUCCESS
    );
    assert!(
        list(&mut raw, f::eq(b"cn", b"nm@x"), &[b"sappid"])[0]
            .get("sappid")
            .is_none()
    );
}

#[test]
fn windows_1252_names_are_returned_as_sent_and_matched_in_any_case_or_encoding() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn: &[u8] = b"c=-,o=Microsoft,cn=Jos\xe9,objectClass=rtPerson";
    assert_eq!(raw.code(&bind_v2(1)), SUCCESS);
    person(
        &mut raw,
        2,
        dn,
        &[
            (b"cn", &[b"Jos\xe9"]),
            (b"givenname", &[b"Jos\xe9"]),
            (b"surname", &[b"Mu\xf1oz"]),
        ],
    );
    // Exact, wildcard and case-folded searches, in Windows-1252 as
    // NetMeeting sends them and in UTF-8 as Linux clients do.
    for filter in [
        f::eq(b"cn", b"Jos\xe9"),
        f::eq(b"givenname", b"%s\xe9"),
        f::eq(b"cn", b"JOS\xe9"),
        f::eq(b"cn", b"JOS\xc9"),
        f::eq(b"surname", b"MU\xd1OZ"),
        f::eq(b"cn", "jos\u{e9}".as_bytes()),
        f::eq(b"givenname", "%S\u{c9}".as_bytes()),
    ] {
        let e = list(&mut raw, filter, &[b"cn", b"surname"]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].dn, b"cn=Jos\xe9,ou=Dynamic,o=Intranet");
        assert_eq!(e[0].first("cn"), Some(&b"Jos\xe9"[..]));
        assert_eq!(e[0].first("surname"), Some(&b"Mu\xf1oz"[..]));
    }
    assert!(
        list(&mut raw, f::eq(b"cn", b"Jos\xe8"), &[b"cn"]).is_empty(),
        "0xE8 is another letter"
    );
    // The same name in UTF-8 is the same entry; another letter is not.
    assert_eq!(
        raw.code(&add(3, "cn=JOS\u{c9},objectClass=rtPerson".as_bytes(), &[])),
        68
    );
    person(
        &mut raw,
        4,
        "cn=Jos\u{e8},objectClass=rtPerson".as_bytes(),
        &[],
    );
    assert_eq!(list(&mut raw, f::eq(b"cn", b"Jos%"), &[b"cn"]).len(), 2);
    assert_eq!(
        raw.code(&delete(5, "cn=jos\u{e9},objectClass=rtPerson".as_bytes())),
        SUCCESS
    );
    let left = list(&mut raw, f::eq(b"cn", b"Jos%"), &[b"cn"]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].first("cn"), Some("Jos\u{e8}".as_bytes()));
}

#[test]
fn ip_address_is_stored_as_sent_unless_observed_ip_is_on() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=ip@x,objectClass=rtPerson",
        &[(b"sipaddress", &[b"1613317642"])],
    );
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"ip@x"), &[b"sipaddress"])[0].first("sipaddress"),
        Some(&b"1613317642"[..])
    );

    let server = TestServer::with(|c| c.observed_ip = true);
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=ip@x,objectClass=rtPerson",
        &[(b"sipaddress", &[b"1613317642"])],
    );
    // 127.0.0.1 little-endian is 1 + 127 * 2^24.
    let loopback = (1u32 << 24 | 127).to_string();
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"ip@x"), &[b"sipaddress"])[0].first("sipaddress"),
        Some(loopback.as_bytes())
    );
    assert_eq!(
        raw.code(&modify(
            2,
            b"cn=ip@x,objectClass=rtPerson",
            &[(2, b"sipaddress", &[b"5"])]
        )),
        SUCCESS
    );
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"ip@x"), &[b"sipaddress"])[0].first("sipaddress"),
        Some(loopback.as_bytes())
    );
    // An entry added without an address, such as the Dialer's conference,
    // is given none.
    let conference = add(
        3,
        b"uid=Demo,ou=Dynamic,o=Intranet",
        &[(b"objectClass", &[b"rtConference"]), (b"uid", &[b"Demo"])],
    );
    assert_eq!(raw.code(&conference), SUCCESS);
    let found = raw.found(&search(
        4,
        b"uid=Demo,ou=Dynamic,o=Intranet",
        0,
        f::present(b"objectClass"),
        &[b"sipaddress", b"uid"],
    ));
    assert_eq!(found[0].first("uid"), Some(&b"Demo"[..]));
    assert_eq!(found[0].get("sipaddress"), None);
    // A person added without one, as TAPI clients may, is given it: the
    // Dialer's Find People reads the address ([MS-TAIL] 2.2.3, 4.9.2).
    let dialer = add(
        5,
        b"cn=tapi@x,ou=Dynamic,o=Intranet",
        &[(b"objectClass", &[b"rtPerson"]), (b"givenName", &[b"T"])],
    );
    assert_eq!(raw.code(&dialer), SUCCESS);
    assert_eq!(
        list(&mut raw, f::eq(b"cn", b"tapi@x"), &[b"ipAddress"])[0].first("ipAddress"),
        Some(loopback.as_bytes())
    );
}

#[test]
fn harmless_unknown_attributes_are_accepted() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=ts@x,objectClass=rtPerson",
        &[(b"timestamp", &[b"1164447360"]), (b"sttl", &[b"3"])],
    );
    let e = &list(
        &mut raw,
        f::eq(b"cn", b"ts@x"),
        &[b"timestamp", b"entryTTL"],
    )[0];
    assert_eq!(e.first("timestamp"), Some(&b"1164447360"[..]));
    assert_eq!(
        e.first("entryTTL"),
        Some(&b"180"[..]),
        "sttl in an Add is the TTL in minutes"
    );
}

#[test]
fn gnomemeeting_delete_and_re_add_cycle() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn: &[u8] = b"cn=gm@x.org,objectclass=rtperson";
    assert_eq!(
        raw.code(&delete(1, dn)),
        32,
        "noSuchObject the first time; the client ignores it"
    );
    for i in 0..3 {
        person(&mut raw, 10 + i, dn, &[(b"sappid", &[b"GnomeMeeting"])]);
        assert_eq!(raw.code(&delete(20 + i, dn)), SUCCESS);
    }
}

#[test]
fn hidden_users_are_found_only_by_exact_name() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"cn=shy@x,objectClass=rtPerson",
        &[(b"sflags", &[b"0"])],
    );
    person(
        &mut raw,
        2,
        b"cn=open@x,objectClass=rtPerson",
        &[(b"sflags", &[b"1"])],
    );
    let all = list(&mut raw, f::eq(b"cn", b"%"), &[b"cn"]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].first("cn"), Some(&b"open@x"[..]));
    assert_eq!(list(&mut raw, f::eq(b"cn", b"shy@x"), &[b"cn"]).len(), 1);
    // A DN names the entry as exactly: a base search of it finds it.
    for (i, dn) in [
        &b"cn=shy@x,ou=Dynamic,o=Intranet"[..],
        b"c=-,o=Microsoft,cn=SHY@x,objectClass=rtPerson",
    ]
    .into_iter()
    .enumerate()
    {
        let entries = raw.found(&search(
            10 + i as i32,
            dn,
            0,
            f::present(b"objectClass"),
            &[b"cn"],
        ));
        assert_eq!(entries.len(), 1, "{}", String::from_utf8_lossy(dn));
    }
    // A listing of the container does not.
    let entries = raw.found(&search(
        20,
        b"ou=Dynamic,o=Intranet",
        1,
        f::present(b"objectClass"),
        &[b"cn"],
    ));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].first("cn"), Some(&b"open@x"[..]));
}

#[test]
fn an_empty_or_matches_nothing_and_the_root_holds_everyone() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=root@x,objectClass=rtPerson", &[]);
    assert!(list(&mut raw, f::or(&[]), &[b"cn"]).is_empty());
    let refresh_none = f::and(&[f::or(&[]), f::eq(b"sttl", b"3")]);
    let (entries, done) = raw.call(&search(4, b"objectClass=rtPerson", 0, refresh_none, &[]));
    assert!(entries.is_empty());
    assert!(
        matches!(done, Response::Result { code: 32, .. }),
        "{done:?}"
    );
    assert_eq!(
        list(&mut raw, f::or(&[f::eq(b"sttl", b"3")]), &[b"cn"]).len(),
        1
    );
    let (entries, done) = raw.call(&search(5, b"", 2, f::eq(b"cn", b"root@x"), &[b"cn"]));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    assert_eq!(entries.len(), 1);
    let (entries, done) = raw.call(&search(6, b"", 1, f::present(b"objectClass"), &[b"o"]));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    assert_eq!(entries.len(), 1, "o=Intranet alone");
}

#[test]
fn an_unrefreshed_user_disappears_and_a_refreshed_one_stays() {
    let server = TestServer::with(|c| c.default_ttl = 2);
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=stay@x,objectClass=rtPerson", &[]);
    person(&mut raw, 2, b"cn=go@x,objectClass=rtPerson", &[]);
    let refresh = f::and(&[
        f::eq(b"objectClass", b"rtPerson"),
        f::eq(b"cn", b"stay@x"),
        f::eq(b"sttl", b"1"),
    ]);
    // sttl is in minutes: refresh to one minute, then let "go@x" lapse.
    assert_eq!(list(&mut raw, refresh, &[b"cn"]).len(), 1);
    let started = Instant::now();
    while !list(&mut raw, f::eq(b"cn", b"go@x"), &[b"cn"]).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "go@x outlived its TTL"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(list(&mut raw, f::eq(b"cn", b"stay@x"), &[b"cn"]).len(), 1);
    // The lapsed name is free again.
    person(&mut raw, 3, b"cn=go@x,objectClass=rtPerson", &[]);
}

#[test]
fn an_entry_added_without_a_ttl_outlives_gnomemeetings_cycle() {
    // GnomeMeeting deletes and adds its entry again every 20 minutes,
    // with no TTL and no refresh between.
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"c=-,o=Gnome,cn=gm@gnome.org,objectclass=rtperson";
    assert_eq!(raw.code(&delete(1, dn)), 32, "ignored by GnomeMeeting");
    person(&mut raw, 2, dn, &[(b"sappid", &[b"GnomeMeeting"])]);
    let found = list(&mut raw, f::eq(b"cn", b"gm@gnome.org"), &[b"entryTTL"]);
    let ttl: u64 = std::str::from_utf8(found[0].first("entryTTL").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > 20 * 60, "{ttl} s");
}

#[test]
fn a_percent_in_an_address_is_part_of_the_name() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"c=-,o=Microsoft,cn=ops%bcast@x.org,objectClass=rtPerson";
    person(&mut raw, 1, dn, &[(b"cn", &[b"ops%bcast@x.org"])]);
    let found = list(&mut raw, f::eq(b"cn", b"ops%bcast@x.org"), &[b"cn"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get("cn"), Some(&vec![b"ops%bcast@x.org".to_vec()]));
    assert_eq!(raw.code(&delete(2, dn)), SUCCESS);
    // A quote inside the address and a backslash that escapes nothing
    // are the name, as NetMeeting sends what the user typed.
    for name in [&br#"q"z@x.org"#[..], br"back\slash@x.org"] {
        let dn = [&b"c=-,o=Microsoft,cn="[..], name, b",objectClass=rtPerson"].concat();
        person(&mut raw, 3, &dn, &[(b"cn", &[name])]);
        let found = list(&mut raw, f::eq(b"cn", name), &[b"cn"]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].get("cn"), Some(&vec![name.to_vec()]), "one name");
        assert_eq!(raw.code(&delete(4, &dn)), SUCCESS);
    }
}

#[test]
fn an_sttl_search_that_meets_a_static_entry_gives_it_no_ttl() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=dyn@x.org,objectClass=rtPerson", &[]);
    let refresh = f::and(&[f::present(b"objectClass"), f::eq(b"sttl", b"10")]);
    let entries = raw.found(&search(
        2,
        b"ou=Dynamic,o=Intranet",
        2,
        refresh,
        &[b"entryTTL"],
    ));
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let ttl = e.first("entryTTL");
        if e.dn.eq_ignore_ascii_case(b"ou=Dynamic,o=Intranet") {
            assert_eq!(ttl, None, "the container does not expire");
        } else {
            assert_eq!(ttl, Some(&b"600"[..]));
        }
    }
}

#[test]
fn an_sttl_refresh_answers_exactly_the_ttl_it_granted() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=exact@x.org,objectClass=rtPerson", &[]);
    let refresh = f::and(&[f::eq(b"cn", b"exact@x.org"), f::eq(b"sttl", b"7")]);
    // Many times over, so that the clock ticks between the start of some
    // search and its refresh: the answer must not round that up.
    for msgid in 0..500 {
        let entries = raw.found(&search(
            10 + msgid,
            b"objectClass=rtPerson",
            0,
            refresh.clone(),
            &[b"sttl", b"entryTTL"],
        ));
        assert_eq!(entries[0].first("sttl"), Some(&b"7"[..]));
        assert_eq!(entries[0].first("entryTTL"), Some(&b"420"[..]));
    }
}

#[test]
fn an_sttl_refresh_found_through_the_application_keeps_the_person() {
    let server = TestServer::with(|c| c.default_ttl = 1);
    let mut raw = server.raw();
    let dn = b"c=-,o=Microsoft,cn=app@x.org,objectClass=rtPerson";
    person(&mut raw, 1, dn, &[]);
    let app = modify(
        2,
        dn,
        &[(2, b"smodop", &[b"0"]), (2, b"sappid", &[b"ms-netmeeting"])],
    );
    assert_eq!(raw.code(&app), SUCCESS);
    // Found under ou=Applications: the application entry, which lives and
    // dies with its person.
    let refresh = f::and(&[f::eq(b"cn", b"app@x.org"), f::eq(b"sttl", b"1")]);
    let entries = raw.found(&search(
        3,
        b"ou=Applications,o=Intranet",
        2,
        refresh,
        &[b"cn"],
    ));
    assert_eq!(entries.len(), 1);
    std::thread::sleep(Duration::from_millis(1500));
    let found = list(&mut raw, f::eq(b"cn", b"app@x.org"), &[b"sappid"]);
    assert_eq!(
        found.len(),
        1,
        "the person was refreshed with its application"
    );
    assert_eq!(found[0].first("sappid"), Some(&b"ms-netmeeting"[..]));
}

#[test]
fn a_refresh_of_anyone_not_registered_is_no_such_object_in_any_form() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(&mut raw, 1, b"cn=here@x.org,objectClass=rtPerson", &[]);
    for (i, (base, scope, filter)) in [
        (
            &b"objectClass=RTPerson"[..],
            0,
            f::and(&[
                f::eq(b"objectClass", b"RTPerson"),
                f::eq(b"cn", b"gone@x.org"),
                f::eq(b"sttl", b"10"),
            ]),
        ),
        (
            b"ou=Dynamic,o=Intranet",
            1,
            f::and(&[f::eq(b"sttl", b"5"), f::eq(b"cn", b"gone@x.org")]),
        ),
        (
            b"c=-,o=Microsoft,objectClass=rtPerson",
            2,
            f::and(&[f::eq(b"cn", b"GONE@x.org"), f::eq(b"sttl", b"5")]),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (entries, done) = raw.call(&search(10 + i as i32, base, scope, filter, &[b"sttl"]));
        assert!(entries.is_empty());
        assert!(
            matches!(done, Response::Result { code: 32, .. }),
            "{i}: {done:?}"
        );
    }
    // The one who is there is refreshed, and gets the TTL in minutes.
    let (entries, done) = raw.call(&search(
        20,
        b"objectClass=rtPerson",
        0,
        f::and(&[f::eq(b"cn", b"here@x.org"), f::eq(b"sttl", b"7")]),
        &[b"sttl"],
    ));
    assert!(matches!(done, Response::Result { code: 0, .. }), "{done:?}");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].first("sttl"), Some(&b"7"[..]));
}

#[test]
fn the_people_base_may_carry_country_and_organisation() {
    let server = TestServer::start();
    let mut raw = server.raw();
    person(
        &mut raw,
        1,
        b"c=-,o=Microsoft,cn=deco@x.org,objectClass=rtPerson",
        &[],
    );
    for (i, base) in [
        &b"c=-, o=Microsoft, objectClass=RTPerson"[..],
        b"o=Microsoft,objectclass=rtperson",
        b"c=US,objectClass=rtPerson",
    ]
    .into_iter()
    .enumerate()
    {
        let (entries, done) = raw.call(&search(
            10 + i as i32,
            base,
            0,
            f::eq(b"cn", b"deco@x.org"),
            &[b"cn"],
        ));
        assert!(
            matches!(done, Response::Result { code: 0, .. }),
            "{i}: {done:?}"
        );
        assert_eq!(entries.len(), 1, "{}", String::from_utf8_lossy(base));
    }
}

#[test]
fn a_whole_record_sent_with_smodop_0_updates_the_person() {
    // PTLib's ILS client registers, then sends its whole record with
    // smodop 0: the person's own fields, the application's, and the
    // person's objectClass.
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"c=AU, o=Equivalence, cn=ptlib@x.org, objectClass=RTPerson";
    person(
        &mut raw,
        1,
        dn,
        &[
            (b"surname", &[b"Old"]),
            (b"sipaddress", &[b"16777343"]),
            (b"location", &[b"Here"]),
        ],
    );
    assert_eq!(
        raw.code(&modify(
            2,
            dn,
            &[
                (2, b"smodop", &[b"0"]),
                (2, b"surname", &[b"New"]),
                (2, b"sipaddress", &[b"33554559"]),
                (2, b"location", &[b"There"]),
                (2, b"sappid", &[b"ohphone"]),
                (2, b"sprotid", &[b"h323"]),
                (2, b"sport", &[b"1720"]),
                (2, b"objectClass", &[b"RTPerson"]),
            ],
        )),
        SUCCESS
    );
    let everyone = list(
        &mut raw,
        f::eq(b"cn", b"%"),
        &[
            b"cn",
            b"surname",
            b"sipaddress",
            b"location",
            b"sappid",
            b"sport",
        ],
    );
    assert_eq!(everyone.len(), 1, "one person, not two: {everyone:?}");
    let e = &everyone[0];
    assert_eq!(e.first("surname"), Some(&b"New"[..]));
    assert_eq!(e.first("sipaddress"), Some(&b"33554559"[..]));
    assert_eq!(e.first("location"), Some(&b"There"[..]));
    assert_eq!(e.first("sappid"), Some(&b"ohphone"[..]));
    assert_eq!(e.first("sport"), Some(&b"1720"[..]));
    // The application entry holds the application's fields alone.
    let apps = raw.found(&search(
        3,
        b"ou=Applications,o=Intranet",
        2,
        f::eq(b"cn", b"ptlib@x.org"),
        &[b"objectClass", b"surname", b"sappid"],
    ));
    assert_eq!(apps.len(), 1);
    let classes = apps[0].get("objectClass").unwrap();
    assert!(
        !classes.iter().any(|c| c.eq_ignore_ascii_case(b"rtPerson")),
        "{classes:?}"
    );
    assert!(apps[0].get("surname").is_none());
    assert_eq!(apps[0].first("sappid"), Some(&b"ohphone"[..]));
}

#[test]
fn a_restarted_ptlib_endpoint_replaces_the_ports_it_registered() {
    // PTLib registers with its ports and protocols on the person. Started
    // again while that entry lives, its Add is entryAlreadyExists and it
    // sends its whole record, now on another port, with smodop 0.
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"c=AU, o=Equivalence, cn=ep@voxgratia.org, objectClass=RTPerson";
    person(
        &mut raw,
        1,
        dn,
        &[
            (b"sipaddress", &[b"16777343"]),
            (b"sappid", &[b"openphone"]),
            (b"sprotid", &[b"h323"]),
            (b"sport", &[b"1720"]),
            (b"sttl", &[b"60"]),
        ],
    );
    let again = add(2, dn, &[(b"sport", &[b"1820"])]);
    assert_eq!(raw.code(&again), 68);
    let record: &[RawChange<'_>] = &[
        (2, b"objectClass", &[b"RTPerson"]),
        (2, b"cn", &[b"ep@voxgratia.org"]),
        (2, b"sipaddress", &[b"16777343"]),
        (2, b"sport", &[b"1820"]),
        (0, b"sport", &[b"1821"]),
        (2, b"smodop", &[b"0"]),
        (2, b"sttl", &[b"60"]),
        (2, b"sprotid", &[b"sip"]),
        (2, b"sappid", &[b"openphone"]),
    ];
    assert_eq!(raw.code(&modify(3, dn, record)), SUCCESS);
    let found = list(
        &mut raw,
        f::eq(b"cn", b"ep@voxgratia.org"),
        &[b"sport", b"sprotid"],
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].get("sport"),
        Some(&vec![b"1820".to_vec(), b"1821".to_vec()]),
        "a list in two parts"
    );
    assert_eq!(found[0].get("sprotid"), Some(&vec![b"sip".to_vec()]));
    assert_eq!(list(&mut raw, f::eq(b"sport", b"1820"), &[b"cn"]).len(), 1);
    assert!(list(&mut raw, f::eq(b"sport", b"1720"), &[b"cn"]).is_empty());
}

#[test]
fn an_smodop_0_that_fails_changes_nothing() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"cn=half@x.org,objectClass=rtPerson";
    person(&mut raw, 1, dn, &[(b"surname", &[b"Old"])]);
    let app: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"0"]),
        (2, b"sappid", &[b"ohphone"]),
        (2, b"sport", &[b"1720"]),
    ];
    assert_eq!(raw.code(&modify(2, dn, app)), SUCCESS);
    // The person's part is fine, the application's is not.
    let failing: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"0"]),
        (2, b"sappid", &[b"ohphone"]),
        (2, b"surname", &[b"New"]),
        (1, b"sport", &[b"9999"]),
    ];
    assert_eq!(raw.code(&modify(3, dn, failing)), 16, "noSuchAttribute");
    let found = list(
        &mut raw,
        f::eq(b"cn", b"half@x.org"),
        &[b"surname", b"sport"],
    );
    assert_eq!(found[0].first("surname"), Some(&b"Old"[..]));
    assert_eq!(found[0].first("sport"), Some(&b"1720"[..]));
    // An add without values stays an error with smodop 2.
    let empty: &[RawChange<'_>] = &[(2, b"smodop", &[b"2"]), (0, b"surname", &[])];
    assert_ne!(raw.code(&modify(4, dn, empty)), SUCCESS);
    let found = list(&mut raw, f::eq(b"cn", b"half@x.org"), &[b"surname"]);
    assert_eq!(found[0].first("surname"), Some(&b"Old"[..]));
}
