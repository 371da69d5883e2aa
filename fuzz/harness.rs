//! The fuzz harnesses: what each target does with the fuzzer's bytes.
//! Shared by the libFuzzer targets (`fuzz/fuzz_targets/`) and by
//! `tests/fuzz_corpus.rs`, which replays every corpus file through the
//! same functions, so that CI checks the corpus without a fuzzer.
//!
//! Each harness panics when an invariant breaks; bad input itself must
//! never panic, hang or grow memory without bound.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use crossbeam_channel::Receiver;
use ldap3_proto::proto::{LdapMsg, LdapOp};
use tokio_util::codec::{Decoder, Encoder};

use ilsd::directory::dn::Dn;
use ilsd::directory::entry::NEVER;
use ilsd::directory::store::{self, Deadline, ExpiryMsg, Store, TtlPolicy};
use ilsd::ops;
use ilsd::protocol::{self, RequestCodec};
use ilsd::server::Config;
use ilsd::session::{Limits, Session, Shared};

/// *frame*: arbitrary bytes into the framing and decoding a worker runs,
/// in chunks whose sizes come from the input itself.
pub fn frame(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let mut codec = RequestCodec {
        max_request_size: 4096,
        max_elements: 512,
    };
    let mut buf = BytesMut::new();
    let chunk = usize::from(split).max(1);
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_request)) => {}
                Ok(None) => break,
                // The session would end here, with a notice.
                Err(_) => return,
            }
        }
    }
}

/// *quick-vs-proto*: every frame the fast decoder takes decodes to the
/// same request through ldap3_proto, and every frame ldap3_proto refuses
/// the fast decoder refuses too.
pub fn quick_vs_proto(data: &[u8]) {
    let quick = protocol::quick::search(data);
    let general = protocol::decode_general(data);
    match (quick, general) {
        (Some(q), Ok(g)) => assert_eq!(format!("{q:?}"), format!("{g:?}"), "the decoders differ"),
        (Some(q), Err(e)) => {
            panic!("the fast decoder took what ldap3_proto refuses ({e:?}): {q:?}")
        }
        (None, _) => {}
    }
}

/// *dn-filter*: a DN normalises to the same key twice over; a filter,
/// wrapped in a search, decodes, plans and evaluates against a person
/// without harm.
pub fn dn_filter(data: &[u8]) {
    let (dn, filter) = data.split_at(data.len() / 2);
    if let Ok(parsed) = Dn::parse(dn) {
        let key = parsed.key();
        let again = Dn::parse(&parsed.to_bytes()).expect("a DN written back parses");
        assert_eq!(again.key(), key, "normalising twice gives the same key");
        // A key is not itself a DN (quotes in values stay as they are):
        // nothing parses one, so nothing is asked of it here.
    }
    let mut frame = Vec::new();
    // SEQUENCE { 1, SearchRequest { "", base, never, 0, 0, FALSE, filter, {} } }
    let mut body = vec![0x04, 0x00, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00];
    body.extend_from_slice(&[0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00]);
    body.extend_from_slice(filter);
    body.extend_from_slice(&[0x30, 0x00]);
    let mut op = vec![0x63];
    push_len(&mut op, body.len());
    op.extend(body);
    let mut msg = vec![0x02, 0x01, 0x01];
    msg.extend(op);
    frame.push(0x30);
    push_len(&mut frame, msg.len());
    frame.extend(msg);
    let shared = shared();
    let mut session = Session::new("127.0.0.1:1".parse().unwrap());
    add_person(&shared, &mut session);
    if let Ok(request) = protocol::decode(&frame) {
        serve(&shared, &mut session, request);
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.push(0x84);
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// *config*: the configuration parser takes any text without harm, and
/// what it accepts it can check.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut config = Config::default();
    if config.apply_file(Path::new("fuzz.conf"), &text).is_ok() {
        let _ = config.validate();
    }
}

/// *state*: the state-file loader reads any bytes as far as they are
/// sound, and leaves a directory whose indexes and counts agree.
pub fn state(data: &[u8]) {
    let (store, inbox) = store();
    let loaded = ilsd::state::load_from(&store, data);
    assert!(loaded.entries <= data.len(), "more entries than bytes");
    check(&store, &inbox, &mut Vec::new());
}

/// One operation of a *session*, chosen by the fuzzer from a small world
/// of names, so that operations meet the same entries.
#[derive(Arbitrary, Debug)]
pub enum Step {
    Bind {
        account: bool,
        password: u8,
    },
    Register {
        who: u8,
        ttl: u16,
        short_form: bool,
    },
    AddApp {
        who: u8,
        port: u16,
    },
    Modify {
        who: u8,
        smodop: Option<u8>,
        value: Vec<u8>,
    },
    Refresh {
        who: u8,
        minutes: u16,
        literal: bool,
    },
    Search {
        who: Option<u8>,
        scope: u8,
        attrs: u8,
    },
    Compare {
        who: u8,
        value: Vec<u8>,
    },
    Delete {
        who: u8,
    },
    Extended {
        who: u8,
        ttl: u32,
    },
    Raw(Vec<u8>),
    Expire,
}

/// *session*: a sequence of requests against a real store through the
/// dispatcher the workers run, without sockets. After each: every
/// response decodes with ldap3_proto, the indexes and counts agree with
/// the entries, and every dynamic entry is scheduled for expiry.
pub fn session(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(steps) = Vec::<Step>::arbitrary(&mut input) else {
        return;
    };
    let (shared, inbox) = shared_with_inbox();
    let mut session = Session::new("127.0.0.2:1".parse().unwrap());
    let mut deadlines = Vec::new();
    for (i, step) in steps.into_iter().take(64).enumerate() {
        let msgid = i as i32 + 1;
        let frame = match step {
            Step::Expire => {
                expire_all(&shared.store);
                continue;
            }
            step => request(msgid, step),
        };
        let Ok(request) = protocol::decode(&frame) else {
            continue;
        };
        let out = serve(&shared, &mut session, request);
        for msg in responses(&out) {
            assert_eq!(msg.msgid, msgid, "every response carries the request's ID");
        }
        check(&shared.store, &inbox, &mut deadlines);
    }
}

/// A store with the static tree and an expiry channel nobody serves: the
/// harness reads what would be scheduled.
fn store() -> (Arc<Store>, Receiver<ExpiryMsg>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let store = Arc::new(Store::new(TtlPolicy::new(600, 1, 3600), tx));
    store::load_static_tree(&mut store.write());
    (store, rx)
}

fn shared_with_inbox() -> (Shared, Receiver<ExpiryMsg>) {
    let (store, rx) = store();
    let mut limits = Limits::default();
    limits.accounts.push(ilsd::auth::Account {
        key: b"cn=admin,o=intranet".to_vec(),
        password: ilsd::auth::Password::parse("secret").unwrap(),
    });
    limits.admins.push("dn:cn=admin,o=intranet".into());
    limits.max_values = 64;
    limits.bind_failures = 0;
    (Shared::new(store, limits), rx)
}

fn shared() -> Shared {
    shared_with_inbox().0
}

/// Serves one request, returning every byte it wrote.
fn serve(shared: &Shared, session: &mut Session, request: protocol::Request) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut written = Vec::new();
    let mut flush = |buf: &mut BytesMut| -> std::io::Result<()> {
        written.extend_from_slice(buf);
        buf.clear();
        Ok(())
    };
    ops::handle(shared, session, request, &mut out, &mut flush);
    written.extend_from_slice(&out);
    written
}

/// Every response in a stream, each decoded by ldap3_proto.
fn responses(mut bytes: &[u8]) -> Vec<LdapMsg> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (rest, tag) = ldap3_lber::parse::Parser::new(64)
            .parse(bytes)
            .expect("a response is BER");
        out.push(LdapMsg::try_from(tag).expect("a response is LDAP"));
        bytes = rest;
    }
    out
}

/// The directory agrees with itself, and every dynamic entry that can
/// expire is scheduled by its deadline: one of the deadlines sent to the
/// expiry thread (gathered in `deadlines`) is for its scheduled time and
/// finds it.
fn check(store: &Store, inbox: &Receiver<ExpiryMsg>, deadlines: &mut Vec<Deadline>) {
    for msg in inbox.try_iter() {
        if let ExpiryMsg::Schedule(deadline) = msg {
            deadlines.push(deadline);
        }
    }
    let dir = store.read();
    if let Err(e) = dir.check() {
        panic!("the directory disagrees with itself: {e}");
    }
    for (_, e) in dir.slots_from(0) {
        let expires = e.expires.load(std::sync::atomic::Ordering::Relaxed);
        let scheduled = e.scheduled.load(std::sync::atomic::Ordering::Relaxed);
        if expires != NEVER {
            assert!(
                scheduled <= store::sweep_time(expires),
                "an entry no one will expire"
            );
            assert!(
                deadlines.iter().any(|d| d.at == scheduled
                    && dir.named_by(d).is_some_and(|found| std::ptr::eq(found, e))),
                "an entry whose deadline does not find it"
            );
        }
    }
}

/// Lets every deadline pass: the entries then read as gone, as they are
/// between their deadline and the sweep.
fn expire_all(store: &Store) {
    let dir = store.read();
    for (_, e) in dir.slots_from(0) {
        if e.expires.load(std::sync::atomic::Ordering::Relaxed) != NEVER {
            store.set_expiry_in(e, 0);
        }
    }
}

fn add_person(shared: &Shared, session: &mut Session) {
    let frame = request(
        1,
        Step::Register {
            who: 0,
            ttl: 600,
            short_form: false,
        },
    );
    if let Ok(request) = protocol::decode(&frame) {
        serve(shared, session, request);
    }
}

fn who(n: u8) -> String {
    format!("user{}@example.org", n % 4)
}

fn person_dn(n: u8, short_form: bool) -> String {
    match short_form {
        true => format!("c=-,o=Microsoft,cn={},objectClass=rtPerson", who(n)),
        false => format!("cn={},ou=Dynamic,o=Intranet", who(n)),
    }
}

fn encode(msgid: i32, op: LdapOp) -> Vec<u8> {
    let mut buf = BytesMut::new();
    ldap3_proto::LdapCodec::default()
        .encode(
            LdapMsg {
                msgid,
                op,
                ctrl: vec![],
            },
            &mut buf,
        )
        .expect("ldap3_proto encodes");
    buf.to_vec()
}

/// The frame of one step, encoded by ldap3_proto.
fn request(msgid: i32, step: Step) -> Vec<u8> {
    use ldap3_proto::proto::*;
    let attr = |name: &str, values: Vec<Vec<u8>>| LdapPartialAttribute {
        atype: name.into(),
        vals: values,
    };
    let modify = |dn: String, changes: Vec<LdapModify>| {
        LdapOp::ModifyRequest(LdapModifyRequest { dn, changes })
    };
    let op = match step {
        Step::Bind { account, password } => LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: if account {
                "cn=admin,o=Intranet".into()
            } else {
                String::new()
            },
            cred: LdapBindCred::Simple(if password % 2 == 0 {
                "secret".into()
            } else {
                "nope".into()
            }),
        }),
        Step::Register {
            who: n,
            ttl,
            short_form,
        } => LdapOp::AddRequest(LdapAddRequest {
            dn: person_dn(n, short_form),
            attributes: vec![
                attr("objectClass", vec![b"rtPerson".to_vec()]),
                attr("cn", vec![who(n).into_bytes()]),
                attr("givenName", vec![b"Eric".to_vec()]),
                attr(
                    "sflags",
                    vec![if n % 2 == 0 {
                        b"1".to_vec()
                    } else {
                        b"0".to_vec()
                    }],
                ),
                attr("entryTTL", vec![ttl.to_string().into_bytes()]),
            ],
        }),
        Step::AddApp { who: n, port } => modify(
            person_dn(n, true),
            vec![
                LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: attr("smodop", vec![b"0".to_vec()]),
                },
                LdapModify {
                    operation: LdapModifyType::Add,
                    modification: attr("sport", vec![port.to_string().into_bytes()]),
                },
            ],
        ),
        Step::Modify {
            who: n,
            smodop,
            value,
        } => {
            let mut changes = Vec::new();
            if let Some(op) = smodop {
                changes.push(LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: attr("smodop", vec![(op % 5).to_string().into_bytes()]),
                });
            }
            changes.push(LdapModify {
                operation: LdapModifyType::Replace,
                modification: attr("comment", vec![value]),
            });
            modify(person_dn(n, false), changes)
        }
        Step::Refresh {
            who: n,
            minutes,
            literal,
        } => {
            let name = if literal {
                format!("{}%", who(n))
            } else {
                who(n)
            };
            LdapOp::SearchRequest(LdapSearchRequest {
                base: "objectClass=rtPerson".into(),
                scope: LdapSearchScope::Base,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::And(vec![
                    LdapFilter::Equality("cn".into(), name),
                    LdapFilter::Equality("sttl".into(), minutes.to_string()),
                ]),
                attrs: vec!["sttl".into()],
            })
        }
        Step::Search {
            who: n,
            scope,
            attrs,
        } => LdapOp::SearchRequest(LdapSearchRequest {
            base: [
                "",
                "o=Intranet",
                "ou=Dynamic,o=Intranet",
                "ou=Applications,o=Intranet",
            ][usize::from(scope) % 4]
                .into(),
            scope: [
                LdapSearchScope::Base,
                LdapSearchScope::OneLevel,
                LdapSearchScope::Subtree,
            ][usize::from(scope / 4) % 3]
                .clone(),
            aliases: LdapDerefAliases::Never,
            sizelimit: i32::from(attrs % 3),
            timelimit: 0,
            typesonly: attrs % 7 == 0,
            filter: match n {
                Some(n) => LdapFilter::Substring(
                    "cn".into(),
                    LdapSubstringFilter {
                        initial: Some(who(n)[..4].into()),
                        any: vec![],
                        final_: None,
                    },
                ),
                None => LdapFilter::Present("objectClass".into()),
            },
            attrs: [
                vec![],
                vec!["*".into(), "+".into()],
                vec!["cn".into(), "sttl".into(), "ilsOwner".into()],
            ][usize::from(attrs) % 3]
                .clone(),
        }),
        Step::Compare { who: n, value } => LdapOp::CompareRequest(LdapCompareRequest {
            dn: person_dn(n, false),
            atype: "givenName".into(),
            val: value,
        }),
        Step::Delete { who: n } => LdapOp::DelRequest(person_dn(n, n % 2 == 1)),
        Step::Extended { who: n, ttl } => {
            let dn = person_dn(n, false);
            let mut value = vec![0x30, 0x00, 0x80, dn.len() as u8];
            value.extend_from_slice(dn.as_bytes());
            value.extend_from_slice(&[0x81, 0x04]);
            value.extend_from_slice(&(ttl & 0x7fff_ffff).to_be_bytes());
            value[1] = (value.len() - 2) as u8;
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.1466.101.119.1".into(),
                value: Some(value),
            })
        }
        Step::Raw(bytes) => return bytes,
        Step::Expire => unreachable!("not a request"),
    };
    encode(msgid, op)
}
