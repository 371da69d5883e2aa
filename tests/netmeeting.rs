//! NetMeeting's flows of [MS-TAIL] 4.1 to 4.4, sent byte for byte as
//! NetMeeting 3.01 sends them: LDAPv2 anonymous binds, Windows' four-byte
//! BER lengths, the short-form DNs and the `sttl` refresh search.

mod common;

use common::*;

const NM_DN: &[u8] = b"c=-,o=Microsoft, cn=egruber@contoso.com, objectClass=rtPerson";

fn register(raw: &mut Raw, dn: &[u8], cn: &[u8]) {
    assert_eq!(raw.code(&bind_v2(1)), SUCCESS);
    let add_req = add(
        2,
        dn,
        &[
            (b"cn", &[cn]),
            (b"givenname", &[b"Eric"]),
            (b"surname", &[b"Gruber"]),
            (b"rfc822mailbox", &[cn]),
            (b"location", &[b"Seattle"]),
            (b"comment", &[b"Participant"]),
            (b"c", &[b"-"]),
            (b"sipaddress", &[b"3758139584"]),
            (b"sflags", &[b"1"]),
            (b"ssecurity", &[b"21912384"]),
            (b"ilsA26214430", &[b"0"]),
            (b"ilsA26279966", &[b"84020942"]),
            (b"ilsA32833566", &[b"1"]),
            (b"ilsA32964638", &[b"1"]),
            (b"ilsA39321630", &[b"2"]),
        ],
    );
    assert_eq!(raw.code(&add_req), SUCCESS, "add");
    let modify_req = modify(
        3,
        dn,
        &[
            (2, b"smodop", &[b"0"]),
            (2, b"sappid", &[b"ms-netmeeting"]),
            (2, b"smimetype", &[b"text/iuls"]),
            (2, b"sappguid", &[b"008aff194794cf118796444553540000"]),
            (2, b"sprotid", &[b"t120", b"h323"]),
            (2, b"sprotmimetype", &[b"text/t120", b"text/h323"]),
            (2, b"sport", &[b"1503", b"1720"]),
        ],
    );
    assert_eq!(raw.code(&modify_req), SUCCESS, "modify");
}

fn find_netmeeting_users(raw: &mut Raw, attrs: &[&[u8]]) -> Vec<RawEntry> {
    let filter = f::and(&[
        f::eq(b"objectClass", b"rtPerson"),
        f::eq(b"cn", b"%"),
        f::eq(b"sappid", b"ms-netmeeting"),
        f::eq(b"sprotid", b"h323"),
    ]);
    let (entries, done) = raw.call(&search(10, b"objectClass=rtPerson", 0, filter, attrs));
    assert!(
        matches!(
            done,
            Response::Result {
                code: 0,
                tag: 5,
                ..
            }
        ),
        "{done:?}"
    );
    entries
}

#[test]
fn registration_makes_a_dynamic_person_with_its_application() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    raw.send(&unbind(4));
    assert!(raw.closed(), "unbind closes the session");

    let mut raw = server.raw();
    let attrs: &[&[u8]] = &[
        b"cn",
        b"sipaddress",
        b"sappid",
        b"sport",
        b"givenname",
        b"sttl",
    ];
    let entries = find_netmeeting_users(&mut raw, attrs);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.dn, b"cn=egruber@contoso.com,ou=Dynamic,o=Intranet");
    assert_eq!(
        e.names(),
        ["cn", "sipaddress", "sappid", "sport", "givenname", "sttl"]
    );
    assert_eq!(e.first("sipaddress"), Some(&b"3758139584"[..]));
    assert_eq!(
        e.get("sport").unwrap(),
        &vec![b"1503".to_vec(), b"1720".to_vec()]
    );
    assert_eq!(
        e.first("sttl"),
        Some(&b"30"[..]),
        "default TTL 1800 s is 30 minutes"
    );

    // The application entry exists on its own under ou=Applications.
    let apps = raw.found(&search(
        11,
        b"ou=Applications,o=Intranet",
        2,
        f::eq(b"objectClass", b"rtApplicationUser"),
        &[b"cn", b"applicationID"],
    ));
    assert_eq!(apps.len(), 1);
    assert_eq!(
        apps[0].dn,
        b"cn=egruber@contoso.com,appName=ms-netmeeting,ou=Applications,o=Intranet"
    );
}

#[test]
fn refresh_search_resets_the_ttl_and_is_no_such_object_once_gone() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let refresh = |msgid, sttl: &[u8]| {
        search(
            msgid,
            b"objectClass=rtPerson",
            0,
            f::and(&[
                f::eq(b"objectClass", b"rtPerson"),
                f::eq(b"cn", b"egruber@contoso.com"),
                f::eq(b"sttl", sttl),
            ]),
            &[b"entryTTL"],
        )
    };
    let (entries, done) = raw.call(&refresh(20, b"3"));
    assert!(matches!(done, Response::Result { code: 0, .. }));
    assert_eq!(entries.len(), 1);
    let ttl: u64 = std::str::from_utf8(entries[0].first("entryTTL").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (170..=180).contains(&ttl),
        "sttl=3 is 180 seconds, got {ttl}"
    );
    assert!(entries[0].get("sttl").is_none(), "sttl is never stored");

    assert_eq!(
        raw.code(&delete(
            21,
            b"c=-, o=Microsoft, mailto:cn=egruber@contoso.com%20, objectClass=rtPerson"
        )),
        SUCCESS
    );
    let (entries, done) = raw.call(&refresh(22, b"10"));
    assert!(entries.is_empty());
    // NetMeeting registers again on noSuchObject alone; on success it
    // looks for the new TTL in an entry.
    assert!(
        matches!(done, Response::Result { code: 32, .. }),
        "{done:?}"
    );
}

#[test]
fn a_name_with_percent_or_star_that_a_user_holds_names_that_user() {
    let server = TestServer::start();
    let mut raw = server.raw();
    // Hidden (sflags 0), with a % in the address; beside them a user the
    // same name taken as a pattern would match.
    let hidden = b"c=-,o=Microsoft,cn=ops%gw@relay.example,objectClass=rtPerson";
    register(&mut raw, hidden, b"ops%gw@relay.example");
    let sflags_0 = modify(4, hidden, &[(2, b"sflags", &[b"0"])]);
    assert_eq!(raw.code(&sflags_0), SUCCESS);
    let other = b"c=-,o=Microsoft,cn=opsXgw@relay.example,objectClass=rtPerson";
    register(&mut raw, other, b"opsXgw@relay.example");
    let star = b"c=-,o=Microsoft,cn=star*name@x.com,objectClass=rtPerson";
    register(&mut raw, star, b"star*name@x.com");
    let refresh = |msgid, cn: &[u8], minutes: &[u8]| {
        search(
            msgid,
            b"objectClass=rtPerson",
            0,
            f::and(&[
                f::eq(b"objectClass", b"rtPerson"),
                f::eq(b"cn", cn),
                f::eq(b"sttl", minutes),
            ]),
            &[b"cn", b"entryTTL"],
        )
    };
    let ttl_of = |e: &RawEntry| -> u64 {
        std::str::from_utf8(e.first("entryTTL").unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };
    // NetMeeting's keep-alive of the hidden user finds that user, and only
    // that user: it registers again when it finds nothing.
    let found = raw.found(&refresh(10, b"ops%gw@relay.example", b"2"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].first("cn"), Some(&b"ops%gw@relay.example"[..]));
    assert!(ttl_of(&found[0]) <= 120);
    let others = raw.found(&search(
        11,
        b"o=Intranet",
        2,
        f::eq(b"cn", b"opsXgw@relay.example"),
        &[b"entryTTL"],
    ));
    assert!(ttl_of(&others[0]) > 120, "the other user was refreshed too");
    let found = raw.found(&refresh(12, b"star*name@x.com", b"2"));
    assert_eq!(found.len(), 1, "{found:?}");
    // A pattern no user holds is still a pattern, and still leaves the
    // hidden user out.
    let listed = |raw: &mut Raw, msgid: i32, pattern: &[u8]| -> Vec<Vec<u8>> {
        let found = raw.found(&search(
            msgid,
            b"objectClass=rtPerson",
            0,
            f::eq(b"cn", pattern),
            &[b"cn"],
        ));
        found
            .iter()
            .filter_map(|e| e.first("cn"))
            .map(<[u8]>::to_vec)
            .collect()
    };
    let names = listed(&mut raw, 13, b"ops%@relay.example");
    assert_eq!(names, [b"opsXgw@relay.example"]);
    // Outside a refresh a name is a pattern, even one a user holds; and
    // a user named only by wildcards is no name: (cn=%) lists everyone.
    let names = listed(&mut raw, 14, b"ops%gw@relay.example");
    assert_eq!(names, [b"opsXgw@relay.example"]);
    let wild = b"c=-,o=Microsoft,cn=%,objectClass=rtPerson";
    register(&mut raw, wild, b"%");
    let everyone = find_netmeeting_users(&mut raw, &[b"cn"]);
    assert_eq!(everyone.len(), 3, "{everyone:?}");
    let found = raw.found(&refresh(15, b"%", b"2"));
    assert_eq!(found.len(), 3, "a refresh of everyone");
}

#[test]
fn unregistration_removes_person_and_application() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    assert_eq!(
        raw.code(&delete(
            5,
            b"c=-, o=Microsoft, mailto:cn=egruber@contoso.com%20, objectClass=rtPerson"
        )),
        SUCCESS
    );
    let all = raw.found(&search(
        6,
        b"o=Intranet",
        2,
        f::eq(b"cn", b"egruber@contoso.com"),
        &[],
    ));
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(
        raw.code(&delete(7, NM_DN)),
        32,
        "noSuchObject the second time"
    );
}

#[test]
fn smodop_2_and_3_changes_sent_as_adds_replace_the_old_values() {
    // NetMeeting leaves the operation of the changed attributes at 0,
    // add (FillModArrAttr in its ULS code sets none): the new value is
    // meant.
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let changes: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"2"]),
        (0, b"givenname", &[b"Erich"]),
        (0, b"sipaddress", &[b"16777343"]),
        (0, b"sflags", &[b"0"]),
        (0, b"ilsA26214430", &[b"1"]),
    ];
    assert_eq!(raw.code(&modify(20, NM_DN, changes)), SUCCESS);
    let app: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"3"]),
        (2, b"sappid", &[b"ms-netmeeting"]),
        (0, b"smimetype", &[b"text/x-other"]),
        (0, b"sport", &[b"1731"]),
    ];
    assert_eq!(raw.code(&modify(21, NM_DN, app)), SUCCESS);
    let entries = raw.found(&search(
        22,
        b"objectClass=rtPerson",
        0,
        f::eq(b"cn", b"egruber@contoso.com"),
        &[
            b"givenname",
            b"sipaddress",
            b"sflags",
            b"ilsA26214430",
            b"smimetype",
            b"sport",
        ],
    ));
    let e = &entries[0];
    assert_eq!(e.get("givenname"), Some(&vec![b"Erich".to_vec()]));
    assert_eq!(e.get("sipaddress"), Some(&vec![b"16777343".to_vec()]));
    assert_eq!(e.get("sflags"), Some(&vec![b"0".to_vec()]));
    assert_eq!(e.get("ilsA26214430"), Some(&vec![b"1".to_vec()]));
    assert_eq!(e.get("smimetype"), Some(&vec![b"text/x-other".to_vec()]));
    assert_eq!(
        e.get("sport").map(Vec::len),
        Some(3),
        "a port is added to the list"
    );
    // Hidden now: not in the directory list.
    let all = raw.found(&search(
        23,
        b"objectClass=rtPerson",
        0,
        f::eq(b"cn", b"%"),
        &[b"cn"],
    ));
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn an_application_change_of_what_the_person_holds_is_seen() {
    // The 4.1.2 Add gives the person ILSA26214430 (in a call) and sflags;
    // both are application attributes too (2.3.1), and a client may
    // change them with smodop 3.
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let in_call: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"3"]),
        (2, b"sappid", &[b"ms-netmeeting"]),
        (0, b"ilsA26214430", &[b"1"]),
    ];
    assert_eq!(raw.code(&modify(20, NM_DN, in_call)), SUCCESS);
    let me = f::eq(b"cn", b"egruber@contoso.com");
    let entries = raw.found(&search(
        21,
        b"objectClass=rtPerson",
        0,
        me,
        &[b"ilsA26214430"],
    ));
    assert_eq!(entries[0].get("ilsA26214430"), Some(&vec![b"1".to_vec()]));
    let was = f::and(&[
        f::eq(b"cn", b"egruber@contoso.com"),
        f::eq(b"ilsA26214430", b"0"),
    ]);
    let entries = raw.found(&search(22, b"objectClass=rtPerson", 0, was, &[b"cn"]));
    assert!(entries.is_empty(), "the old value no longer matches");
    // smodop 0 again, as on a restart: sflags 0 hides the user.
    let hide: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"0"]),
        (2, b"sappid", &[b"ms-netmeeting"]),
        (2, b"sflags", &[b"0"]),
    ];
    assert_eq!(raw.code(&modify(23, NM_DN, hide)), SUCCESS);
    let all = raw.found(&search(
        24,
        b"objectClass=rtPerson",
        0,
        f::eq(b"cn", b"%"),
        &[b"cn"],
    ));
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn smodop_3_may_list_a_port_again() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let again: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"3"]),
        (2, b"sappid", &[b"ms-netmeeting"]),
        (0, b"sport", &[b"1720", b"1731"]),
        (0, b"smimetype", &[b"text/x-other"]),
    ];
    assert_eq!(raw.code(&modify(20, NM_DN, again)), SUCCESS);
    let me = f::eq(b"cn", b"egruber@contoso.com");
    let entries = raw.found(&search(
        21,
        b"objectClass=rtPerson",
        0,
        me,
        &[b"sport", b"smimetype"],
    ));
    let ports = entries[0].get("sport").cloned().unwrap_or_default();
    assert_eq!(
        ports,
        [b"1503".to_vec(), b"1720".to_vec(), b"1731".to_vec()]
    );
    assert_eq!(entries[0].first("smimetype"), Some(&b"text/x-other"[..]));
    // A plain LDAP add of a value that is there is still an error.
    let plain = modify(22, NM_DN, &[(0, b"sflags", &[b"1"])]);
    assert_eq!(raw.code(&plain), 20, "attributeOrValueExists");
}

#[test]
fn an_application_port_added_with_smodop_3_leaves_the_persons_list() {
    // GnomeMeeting writes its ports onto the person; an application of
    // the same user lists its own.
    let server = TestServer::start();
    let mut raw = server.raw();
    let dn = b"c=-,o=Microsoft,cn=gm@x.org,objectClass=rtPerson";
    let person = add(1, dn, &[(b"sport", &[b"1503", b"1720"])]);
    assert_eq!(raw.code(&person), SUCCESS);
    let app: &[RawChange<'_>] = &[(2, b"smodop", &[b"0"]), (2, b"sappid", &[b"ms-netmeeting"])];
    assert_eq!(raw.code(&modify(2, dn, app)), SUCCESS);
    let more: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"3"]),
        (2, b"sappid", &[b"ms-netmeeting"]),
        (0, b"sport", &[b"5000"]),
    ];
    assert_eq!(raw.code(&modify(3, dn, more)), SUCCESS);
    let me = f::eq(b"cn", b"gm@x.org");
    let entries = raw.found(&search(4, b"objectClass=rtPerson", 0, me, &[b"sport"]));
    let ports = entries[0].get("sport").cloned().unwrap_or_default();
    assert_eq!(ports, [b"1503".to_vec(), b"1720".to_vec()]);
}

#[test]
fn two_applications_show_what_they_share_once() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let second: &[RawChange<'_>] = &[
        (2, b"smodop", &[b"0"]),
        (2, b"sappid", &[b"gnomemeeting"]),
        (2, b"smimetype", &[b"text/iuls"]),
        (2, b"sprotid", &[b"h323", b"h323"]),
        (2, b"sport", &[b"1720"]),
    ];
    assert_eq!(raw.code(&modify(20, NM_DN, second)), SUCCESS);
    let me = f::eq(b"cn", b"egruber@contoso.com");
    let asked: &[&[u8]] = &[b"sappid", b"smimetype", b"sprotid", b"sport"];
    let entries = raw.found(&search(21, b"objectClass=rtPerson", 0, me, asked));
    let e = &entries[0];
    let values = |name: &str| e.get(name).cloned().unwrap_or_default();
    assert_eq!(values("sappid").len(), 2);
    assert_eq!(values("smimetype"), [b"text/iuls".to_vec()]);
    assert_eq!(values("sprotid"), [b"t120".to_vec(), b"h323".to_vec()]);
    assert_eq!(values("sport"), [b"1503".to_vec(), b"1720".to_vec()]);
}

#[test]
fn a_filter_matches_the_values_the_answer_shows() {
    // The Dialer adds application entries of its own (4.5.2); a person of
    // the same name shows its own value of an attribute both hold.
    let server = TestServer::start();
    let mut raw = server.raw();
    let person = add(
        1,
        b"cn=both@x.org,ou=Dynamic,o=Intranet",
        &[
            (b"objectClass", &[b"rtPerson"]),
            (b"cn", &[b"both@x.org"]),
            (b"ilsA26214430", &[b"0"]),
        ],
    );
    assert_eq!(raw.code(&person), SUCCESS);
    let app = add(
        2,
        b"cn=both@x.org,appName=x,ou=Applications,o=Intranet",
        &[
            (b"objectClass", &[b"rtApplicationUser"]),
            (b"cn", &[b"both@x.org"]),
            (b"ilsA26214430", &[b"1"]),
            (b"sappid", &[b"x"]),
        ],
    );
    assert_eq!(raw.code(&app), SUCCESS);
    let shown = |raw: &mut Raw, value: &[u8]| {
        let filter = f::and(&[f::eq(b"cn", b"both@x.org"), f::eq(b"ilsA26214430", value)]);
        raw.found(&search(
            3,
            b"objectClass=rtPerson",
            0,
            filter,
            &[b"ilsA26214430", b"sappid"],
        ))
    };
    assert!(shown(&mut raw, b"1").is_empty(), "1 is not what it shows");
    let entries = shown(&mut raw, b"0");
    assert_eq!(entries[0].get("ilsA26214430"), Some(&vec![b"0".to_vec()]));
    assert_eq!(
        entries[0].get("sappid"),
        Some(&vec![b"x".to_vec()]),
        "the application's own"
    );
}

#[test]
fn all_attributes_come_under_the_names_ils_clients_read() {
    // PTLib's callto: lookup asks for every attribute and reads
    // sipaddress, sport, sprotid, sappid ([MS-TAIL] 2.2.5).
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let entries = raw.found(&search(
        20,
        b"objectClass=RTPerson",
        2,
        f::eq(b"cn", b"egruber@contoso.com"),
        &[],
    ));
    let e = &entries[0];
    let names = e.names();
    for name in [
        "sIPAddress",
        "sPort",
        "sProtId",
        "sAppID",
        "sSecurity",
        "sFlags",
        "givenName",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "ipAddress"), "{names:?}");
    assert_eq!(e.first("sipaddress"), Some(&b"3758139584"[..]));
}

#[test]
fn an_application_refreshed_on_its_own_lengthens_its_person_only() {
    let server = TestServer::start();
    let mut raw = server.raw();
    register(&mut raw, NM_DN, b"egruber@contoso.com");
    let app_dn = b"cn=egruber@contoso.com,appName=ms-netmeeting,ou=Applications,o=Intranet";
    let ttl_of = |raw: &mut Raw, msgid, base: &[u8]| -> u64 {
        let e = raw.found(&search(
            msgid,
            base,
            0,
            f::present(b"objectClass"),
            &[b"entryTTL"],
        ));
        std::str::from_utf8(e[0].first("entryTTL").unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(ttl_of(&mut raw, 20, NM_DN) > 1700, "the default of 1800 s");
    // RFC 2589 refresh of the application entry, answered with the TTL
    // it has.
    let refresh_app = |raw: &mut Raw, msgid, ttl| -> u64 {
        let value = cons(0x30, &[prim(0x80, app_dn), int(0x81, ttl)]);
        let request = cons(
            0x77,
            &[
                prim(0x80, b"1.3.6.1.4.1.1466.101.119.1"),
                prim(0x81, &value),
            ],
        );
        match raw.call(&message(msgid, request)).1 {
            // SEQUENCE { responseTtl [1] INTEGER }
            Response::Extended {
                code: 0,
                value: Some(v),
                ..
            } => {
                let at = v.iter().position(|&b| b == 0x81).unwrap() + 2;
                let ttl = &v[at..at + usize::from(v[at - 1])];
                ttl.iter().fold(0, |n, &b| n << 8 | u64::from(b))
            }
            other => panic!("{other:?}"),
        }
    };
    // A shorter refresh of the application does not cut its person's
    // time short: both keep the person's.
    let granted = refresh_app(&mut raw, 21, 30);
    assert!(granted > 1700, "{granted}");
    let change = modify(22, app_dn, &[(2, b"entryTTL", &[b"10"])]);
    assert_eq!(raw.code(&change), SUCCESS);
    assert!(ttl_of(&mut raw, 22, NM_DN) > 1700);
    assert!(ttl_of(&mut raw, 23, app_dn) > 1700);
    // A longer one lengthens both: they live and die together.
    assert_eq!(refresh_app(&mut raw, 21, 5000), 5000);
    assert!(ttl_of(&mut raw, 22, NM_DN) > 4900);
    assert!(ttl_of(&mut raw, 23, app_dn) > 4900);
    // An sttl beyond 64 bits is the longest TTL, not ignored.
    let huge = f::and(&[
        f::eq(b"cn", b"egruber@contoso.com"),
        f::eq(b"sttl", b"18446744073709551616"),
    ]);
    let found = raw.found(&search(24, b"objectClass=rtPerson", 0, huge, &[b"cn"]));
    assert_eq!(found.len(), 1);
    assert!(ttl_of(&mut raw, 25, NM_DN) > 80_000, "max-ttl, 86400 s");
    assert!(ttl_of(&mut raw, 26, app_dn) > 80_000);
}
