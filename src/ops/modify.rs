//! Modify (RFC 4511 section 4.6) with the ILS `smodop` semantics of
//! [MS-TAIL] 2.2.3: 0 creates the person's application entry, 1 removes
//! it, 2 changes the person and 3 changes the application. Without
//! `smodop` the change applies to the named entry itself (GnomeMeeting
//! writes the application attributes straight onto the person). A change
//! of `entryTTL` is a refresh ([MS-TAIL] 4.5.3).

use ldap3_proto::LdapResultCode;

use crate::directory::entry::{AttrValues, Attributes, Entry, Key, class};
use crate::directory::filter::text_eq;
use crate::directory::schema::{self, Attr, attr};
use crate::directory::store::Directory;
use crate::ils::ip_address_value;
use crate::ils::{self, AttrChange, Smodop, ensure_value};
use crate::ops::entries::{
    check_names, check_room, check_schema, live, may_change, no_such_object, not_owner, same_owner,
    too_many_values,
};
use crate::protocol::{Change, LdapResult, ModKind, Responder, tag};
use crate::session::{Limits, Ownership, Session, Shared};

pub fn modify(
    shared: &Shared,
    session: &Session,
    dn: &[u8],
    changes: Vec<Change>,
    resp: &mut Responder<'_>,
) {
    if changes.iter().any(|c| c.kind == ModKind::Increment) {
        return resp.result(tag::MODIFY, &increment_refused());
    }
    let result = match ils::modify(dn, changes) {
        Ok(plan) => run(shared, session, plan)
            .err()
            .unwrap_or_else(LdapResult::success),
        Err(e) => e,
    };
    crate::ops::entries::warn_if_full(&result);
    resp.result(tag::MODIFY, &result);
}

fn run(shared: &Shared, session: &Session, mut plan: ils::ModifyPlan) -> Result<(), LdapResult> {
    let (observed_ip, max_values, ownership) = {
        let limits = shared.limits.read();
        check_change(&limits, session, &plan)?;
        (limits.observed_ip, limits.max_values, limits.ownership)
    };
    if observed_ip
        && plan.changes.iter().any(|c| c.attr == attr::IP_ADDRESS)
        && let Some(ip) = ip_address_value(session.peer)
    {
        plan.changes.retain(|c| c.attr != attr::IP_ADDRESS);
        plan.changes.push(AttrChange {
            kind: ModKind::Replace,
            attr: attr::IP_ADDRESS,
            values: vec![ip],
        });
    }
    // No entry can hold more values than this, so no Modify needs to carry
    // more; checked before any work under the lock.
    if plan.changes.iter().map(|c| c.values.len()).sum::<usize>() > max_values {
        return Err(too_many_values(max_values));
    }
    let now = shared.store.now();
    if plan.changes.is_empty()
        && matches!(plan.smodop, None | Some(Smodop::ModifyUser))
        && let Some(ttl) = plan.ttl
    {
        // The Dialer's keep-alive, a Modify of entryTTL alone, only sets a
        // deadline: like the other refreshes it needs only the read lock,
        // so that thousands of them a second never wait for one another.
        let dir = shared.store.read();
        let entry = dynamic_target(&dir, &plan.target, now)?;
        if !may_change(&dir, entry, session, ownership) {
            return Err(not_owner());
        }
        shared
            .store
            .refresh(&dir, entry, shared.store.ttl.clamp(ttl));
        return Ok(());
    }
    if matches!(plan.smodop, Some(Smodop::ModifyUser | Smodop::ModifyApp)) {
        plan.changes = add_replaces(plan.changes);
    }
    let mut dir = shared.store.write();
    let entry = dynamic_target(&dir, &plan.target, now)?;
    if !may_change(&dir, entry, session, ownership) {
        return Err(not_owner());
    }
    let key = entry.key.clone();
    match plan.smodop {
        None => change_entry(&mut dir, &key, &plan.changes, max_values)?,
        Some(Smodop::ModifyUser) => {
            let changes = new_values_only(&dir, &key, &plan.changes);
            change_entry(&mut dir, &key, &changes, max_values)?
        }
        Some(Smodop::AddApp) => {
            add_application(&mut dir, &key, &plan.changes, now, max_values, ownership)?
        }
        Some(Smodop::DeleteApp) => {
            for app in applications(&dir, &key, &plan.changes, ownership) {
                dir.remove(&app);
            }
        }
        Some(Smodop::ModifyApp) => {
            let apps = applications(&dir, &key, &plan.changes, ownership);
            if apps.is_empty() {
                return Err(LdapResult::new(
                    LdapResultCode::NoSuchObject,
                    "the user has no application entry",
                ));
            }
            let held = held_by_person(&dir, &key, &plan.changes, false);
            let person_attrs = changed(&dir, &key, &held, max_values)?;
            let mut changes = Vec::with_capacity(apps.len() + 1);
            for app in apps {
                let new = new_values_only(&dir, &app, &plan.changes);
                changes.push((changed(&dir, &app, &new, max_values)?, app));
            }
            changes.push((person_attrs, key.clone()));
            let more = changes.iter().map(|(a, k)| growth(&dir, k, a)).sum();
            check_room(&dir, more)?;
            for (attrs, app) in changes {
                if let Some(attrs) = attrs {
                    dir.set_attrs(&app, attrs);
                }
            }
        }
    }
    if let Some(ttl) = plan.ttl
        && let Some(entry) = dir.get(&key)
    {
        shared
            .store
            .refresh(&dir, entry, shared.store.ttl.clamp(ttl));
    }
    Ok(())
}

/// What a Modify may not do whoever owns the entry: set ilsOwner, which
/// the server sets, or store a value that a `deny-name` rule bars
/// (administrators excepted).
fn check_change(
    limits: &Limits,
    session: &Session,
    plan: &ils::ModifyPlan,
) -> Result<(), LdapResult> {
    if plan.changes.iter().any(|c| c.attr == attr::ILS_OWNER) {
        return Err(LdapResult::new(
            LdapResultCode::UnwillingToPerform,
            "ilsOwner is set by the server when the entry is added",
        ));
    }
    if session.admin {
        return Ok(());
    }
    let added: Vec<AttrValues> = plan
        .changes
        .iter()
        .filter(|c| c.kind != ModKind::Delete)
        .map(|c| (c.attr.clone(), c.values.clone()))
        .collect();
    check_names(&limits.moderation, &added)
}

fn increment_refused() -> LdapResult {
    LdapResult::new(
        LdapResultCode::UnwillingToPerform,
        "increment (RFC 4525) is not supported",
    )
}

/// The live, dynamic entry a Modify names.
fn dynamic_target<'a>(
    dir: &'a Directory,
    target: &ils::Target,
    now: u64,
) -> Result<&'a Entry, LdapResult> {
    let Some(entry) = live(dir, &target.key, now) else {
        return Err(no_such_object(dir, &target.dn, now));
    };
    if !entry.is(class::DYNAMIC) {
        return Err(LdapResult::new(
            LdapResultCode::UnwillingToPerform,
            "the static tree cannot be changed",
        ));
    }
    Ok(entry)
}

/// Applies changes to one entry, all or nothing.
fn change_entry(
    dir: &mut Directory,
    key: &Key,
    changes: &[AttrChange],
    max_values: usize,
) -> Result<(), LdapResult> {
    let attrs = changed(dir, key, changes, max_values)?;
    check_room(dir, growth(dir, key, &attrs))?;
    if let Some(attrs) = attrs {
        dir.set_attrs(key, attrs);
    }
    Ok(())
}

/// How many bytes new attributes would add to an entry's footprint.
fn growth(dir: &Directory, key: &Key, attrs: &Option<Attributes>) -> usize {
    match (dir.get(key), attrs) {
        (Some(entry), Some(attrs)) => entry
            .footprint_with(attrs)
            .saturating_sub(entry.footprint()),
        _ => 0,
    }
}

/// An entry's attributes with the changes made, checked, without storing
/// them (`None` when there is nothing to change): so that a request that
/// changes several entries changes none of them if any change fails.
fn changed(
    dir: &Directory,
    key: &Key,
    changes: &[AttrChange],
    max_values: usize,
) -> Result<Option<Attributes>, LdapResult> {
    let Some(entry) = dir.get(key) else {
        return Err(LdapResult::new(
            LdapResultCode::NoSuchObject,
            "no such object",
        ));
    };
    if changes.is_empty() {
        return Ok(None);
    }
    let mut attrs = entry.attrs.to_list();
    for change in changes {
        apply(&mut attrs, change)?;
    }
    check_rdn(entry, &attrs)?;
    check_schema(&attrs, max_values)?;
    if !attrs.iter().any(|(a, v)| {
        *a == attr::OBJECT_CLASS
            && v.iter()
                .any(|c| text_eq(c, schema::DYNAMIC_OBJECT.as_bytes()))
    }) {
        return Err(LdapResult::new(
            LdapResultCode::ObjectClassModsProhibited,
            "dynamicObject cannot be removed",
        ));
    }
    Ok(Some(Attributes::from_list(attrs)))
}

/// One change on unpacked attributes (RFC 4511 section 4.6).
fn apply(attrs: &mut Vec<AttrValues>, change: &AttrChange) -> Result<(), LdapResult> {
    let binary = change.attr.is_binary();
    let same = |a: &[u8], b: &[u8]| if binary { a == b } else { text_eq(a, b) };
    let pos = attrs.iter().position(|(a, _)| *a == change.attr);
    match change.kind {
        ModKind::Add => {
            if change.values.is_empty() {
                return Err(LdapResult::new(
                    LdapResultCode::ProtocolError,
                    "add needs values",
                ));
            }
            let current = match pos {
                Some(i) => &mut attrs[i].1,
                None => {
                    attrs.push((change.attr.clone(), Vec::new()));
                    &mut attrs.last_mut().expect("just pushed").1
                }
            };
            for v in &change.values {
                if current.iter().any(|c| same(c, v)) {
                    return Err(LdapResult::new(
                        LdapResultCode::AttributeOrValueExists,
                        "value exists",
                    ));
                }
                current.push(v.clone());
            }
        }
        ModKind::Delete => {
            let Some(i) = pos else {
                return Err(LdapResult::new(
                    LdapResultCode::NoSuchAttribute,
                    "no such attribute",
                ));
            };
            if change.values.is_empty() {
                attrs.remove(i);
            } else {
                for v in &change.values {
                    let before = attrs[i].1.len();
                    attrs[i].1.retain(|c| !same(c, v));
                    if attrs[i].1.len() == before {
                        return Err(LdapResult::new(
                            LdapResultCode::NoSuchAttribute,
                            "no such value",
                        ));
                    }
                }
                if attrs[i].1.is_empty() {
                    attrs.remove(i);
                }
            }
        }
        ModKind::Replace => match pos {
            Some(i) if change.values.is_empty() => {
                attrs.remove(i);
            }
            Some(i) => attrs[i].1 = change.values.clone(),
            None if change.values.is_empty() => {}
            None => attrs.push((change.attr.clone(), change.values.clone())),
        },
        // Refused before any change is looked at (see `modify`).
        ModKind::Increment => return Err(increment_refused()),
    }
    Ok(())
}

/// The naming value must stay (RFC 4511 section 4.6: notAllowedOnRDN).
fn check_rdn(entry: &Entry, attrs: &[AttrValues]) -> Result<(), LdapResult> {
    let Ok(dn) = crate::directory::dn::Dn::parse(&entry.dn()) else {
        return Ok(());
    };
    let Some(rdn) = dn.rdns.first() else {
        return Ok(());
    };
    let kept = attrs
        .iter()
        .any(|(a, v)| *a == rdn.attr && v.iter().any(|x| text_eq(x, &rdn.value)));
    if kept {
        Ok(())
    } else {
        Err(LdapResult::new(
            LdapResultCode::NotALlowedOnRDN,
            "the naming value cannot be removed",
        ))
    }
}

/// The attributes of an rtPerson that an rtApplicationUser does not have
/// ([MS-TAIL] 2.3.2 and 2.3.1).
const PERSON_ONLY: [Attr; 11] = [
    attr::C,
    attr::COMMENT,
    attr::DW_FLAGS,
    attr::FRIENDLY_NAME,
    attr::GIVEN_NAME,
    attr::IP_ADDRESS,
    attr::LOCATION,
    attr::MAIL,
    attr::O,
    attr::SECURITY_TOKEN,
    attr::SURNAME,
];

/// smodop 0: creates (or updates) the person's application entry, which
/// then lives and dies with the person.
///
/// The person's own attributes in it change the person: PTLib endpoints
/// send their whole record, surname and address included, with smodop 0.
/// objectClass stays each entry's own.
fn add_application(
    dir: &mut Directory,
    person: &Key,
    changes: &[AttrChange],
    now: u64,
    max_values: usize,
    ownership: Ownership,
) -> Result<(), LdapResult> {
    let Some(p) = dir.get(person) else {
        return Err(LdapResult::new(
            LdapResultCode::NoSuchObject,
            "no such object",
        ));
    };
    if !p.is(class::PERSON) {
        return Err(LdapResult::new(
            LdapResultCode::UnwillingToPerform,
            "applications belong to an rtPerson",
        ));
    }
    let cn = p.attrs.first(&attr::CN).unwrap_or_default().to_vec();
    // The application belongs to whoever owns the person.
    let owner = dir.owner_of(p).cloned();
    let (own, changes): (Vec<AttrChange>, Vec<AttrChange>) = changes
        .iter()
        .filter(|c| c.attr != attr::OBJECT_CLASS)
        .cloned()
        .partition(|c| PERSON_ONLY.contains(&c.attr));
    let mut own = replace_all(&own);
    own.extend(held_by_person(dir, person, &changes, true));
    // Nothing is stored until both the person's and the application's
    // changes have passed their checks.
    let person_attrs = changed(dir, person, &own, max_values)?;
    let person_growth = growth(dir, person, &person_attrs);
    let store_person = |dir: &mut Directory| {
        if let Some(attrs) = person_attrs {
            dir.set_attrs(person, attrs);
        }
    };
    let app = ils::application_dn(&cn, &ils::application_name(&changes));
    if let Some(existing) = live(dir, &app.key, now) {
        // Someone else's application entry of that name is theirs.
        if !same_owner(
            dir,
            existing,
            dir.get(person).expect("looked up above"),
            ownership,
        ) {
            return Err(not_owner());
        }
        let key: Key = app.key.into();
        let app_attrs = changed(dir, &key, &replace_all(&changes), max_values)?;
        check_room(dir, person_growth + growth(dir, &key, &app_attrs))?;
        store_person(dir);
        if let Some(attrs) = app_attrs {
            dir.set_attrs(&key, attrs);
        }
        dir.attach(person, &key);
        return Ok(());
    }
    let mut attrs: Vec<AttrValues> = Vec::new();
    for change in changes.iter().filter(|c| c.kind != ModKind::Delete) {
        attrs.push((change.attr.clone(), change.values.clone()));
    }
    for class in [schema::RT_APPLICATION_USER, schema::DYNAMIC_OBJECT] {
        ensure_value(&mut attrs, attr::OBJECT_CLASS, class.as_bytes());
    }
    ensure_value(&mut attrs, attr::CN, &cn);
    ensure_value(&mut attrs, attr::APP_NAME, &app.dn.rdns[1].value);
    check_schema(&attrs, max_values)?;
    let parent_at = app.parent_at();
    let entry = Entry::new(
        app.written,
        app.key,
        parent_at,
        Attributes::from_list(attrs),
    );
    check_room(dir, person_growth + entry.footprint())?;
    // The application's name is free (checked above): the insert cannot
    // fail after the person is stored.
    store_person(dir);
    let key = dir
        .insert_owned(entry, owner.as_ref(), now)
        .map_err(|_| {
            LdapResult::new(
                LdapResultCode::EntryAlreadyExists,
                "application entry exists",
            )
        })?
        .key
        .clone();
    dir.attach(person, &key);
    Ok(())
}

/// Attributes that hold several values in a registration: the ports, the
/// protocols and their MIME types ([MS-TAIL] 2.2.2, 2.2.3).
const MULTI_VALUED: [Attr; 4] = [
    attr::OBJECT_CLASS,
    attr::PORT,
    attr::PROTOCOL_ID,
    attr::PROTOCOL_MIME_TYPE,
];

/// smodop 2 and 3: NetMeeting sends its changed attributes with the
/// operation left at 0, add (`FillModArrAttr` sets none), meaning the new
/// value. An add of a single-valued attribute therefore replaces it; an
/// add to a list (a port, a protocol) still adds.
fn add_replaces(changes: Vec<AttrChange>) -> Vec<AttrChange> {
    changes
        .into_iter()
        .map(|mut c| {
            if c.kind == ModKind::Add && !c.values.is_empty() && !MULTI_VALUED.contains(&c.attr) {
                c.kind = ModKind::Replace;
            }
            c
        })
        .collect()
}

/// The changes, in an application's change, of attributes its person
/// holds itself (other than names and classes), as the person takes them.
/// A person's own values are the ones clients are shown and match, so such
/// a change must reach the person too, or it would never be seen:
/// NetMeeting's in-call flag `ILSA26214430` or `sflags`, or the ports and
/// protocols of a client that keeps them on the person (GnomeMeeting,
/// PTLib, which registers again with smodop 0 and its whole record).
///
/// A single value replaces the person's, and so does a list in a `whole`
/// record (smodop 0) or sent as a replace. Values added to a list are left
/// to the application: they are not the person's whole list.
fn held_by_person(
    dir: &Directory,
    person: &Key,
    changes: &[AttrChange],
    whole: bool,
) -> Vec<AttrChange> {
    const NAMES: [Attr; 4] = [
        attr::OBJECT_CLASS,
        attr::CN,
        attr::APP_NAME,
        attr::APPLICATION_ID,
    ];
    let Some(p) = dir.get(person) else {
        return Vec::new();
    };
    changes
        .iter()
        .filter(|c| {
            let added = c.kind == ModKind::Add && MULTI_VALUED.contains(&c.attr) && !whole;
            c.kind != ModKind::Delete && !added && !NAMES.contains(&c.attr) && p.attrs.has(&c.attr)
        })
        .fold(Vec::new(), |mut held: Vec<AttrChange>, c| {
            // A list sent in several parts is replaced by all of them.
            match held.iter_mut().find(|h| h.attr == c.attr) {
                Some(h) => h.values.extend(c.values.iter().cloned()),
                None => held.push(AttrChange {
                    kind: ModKind::Replace,
                    ..c.clone()
                }),
            }
            held
        })
}

/// With smodop 2 or 3, the adds of values a list already holds are left
/// out: NetMeeting sends what changed as adds of the new values, and a
/// port or protocol it lists again is no error (a plain LDAP add of it
/// is attributeOrValueExists).
fn new_values_only(dir: &Directory, key: &Key, changes: &[AttrChange]) -> Vec<AttrChange> {
    let Some(entry) = dir.get(key) else {
        return changes.to_vec();
    };
    changes
        .iter()
        .filter_map(|c| {
            if c.kind != ModKind::Add || c.values.is_empty() {
                return Some(c.clone());
            }
            let held = entry.attrs.get(&c.attr);
            let binary = c.attr.is_binary();
            let same = |h: &[u8], v: &[u8]| if binary { h == v } else { text_eq(h, v) };
            let values: Vec<Vec<u8>> = c
                .values
                .iter()
                .filter(|v| !held.clone().any(|h| same(h, v)))
                .cloned()
                .collect();
            (!values.is_empty()).then(|| AttrChange {
                values,
                ..c.clone()
            })
        })
        .collect()
}

/// On an existing application entry, the values of an smodop 0 replace
/// what was there.
fn replace_all(changes: &[AttrChange]) -> Vec<AttrChange> {
    changes
        .iter()
        .map(|c| AttrChange {
            kind: if c.kind == ModKind::Add {
                ModKind::Replace
            } else {
                c.kind
            },
            ..c.clone()
        })
        .collect()
}

/// The application entries an smodop 1 or 3 addresses: the one named by
/// `sappname`/`sappid` when the Modify names one, else all of the person's.
fn applications(
    dir: &Directory,
    person: &Key,
    changes: &[AttrChange],
    ownership: Ownership,
) -> Vec<Key> {
    let Some(p) = dir.get(person) else {
        return Vec::new();
    };
    let mine = |e: &Entry| same_owner(dir, e, p, ownership);
    let named = [attr::APP_NAME, attr::APPLICATION_ID]
        .iter()
        .any(|a: &Attr| changes.iter().any(|c| c.attr == *a && !c.values.is_empty()));
    let cn = p.attrs.first(&attr::CN).unwrap_or_default();
    if named {
        let app = ils::application_dn(cn, &ils::application_name(changes));
        return dir
            .get(&app.key)
            .filter(|e| mine(e))
            .map(|e| vec![e.key.clone()])
            .unwrap_or_default();
    }
    let mut keys = p.dependents().to_vec();
    for e in dir.by_cn(cn) {
        if !keys.contains(&e.key)
            && e.is(class::APPLICATION)
            && e.parent_key().ends_with(ils::APPLICATIONS_KEY)
            && mine(e)
        {
            keys.push(e.key.clone());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::directory::dn::Dn;
    use crate::directory::store::Store;

    #[test]
    fn a_modify_of_entry_ttl_alone_needs_only_the_read_lock() {
        let shared = Shared::for_tests();
        let dn = b"cn=a,ou=Dynamic,o=Intranet";
        let attrs = Attributes::from_list(vec![
            (
                attr::OBJECT_CLASS,
                vec![b"rtPerson".to_vec(), b"dynamicObject".to_vec()],
            ),
            (attr::CN, vec![b"a".to_vec()]),
        ]);
        let entry = Entry::new(dn.to_vec(), Dn::parse(dn).unwrap().key(), 0, attrs);
        shared.store.set_ttl(&entry, 60);
        shared.store.write().insert(entry, 0).unwrap();
        let session = Session::new("127.0.0.1:1".parse().unwrap());
        let refresh = |ttl: &str| {
            ils::modify(
                dn,
                vec![Change {
                    kind: ModKind::Replace,
                    attr: b"entryTTL".to_vec(),
                    values: vec![ttl.as_bytes().to_vec()],
                }],
            )
            .unwrap()
        };
        let (done, finished) = mpsc::channel();
        std::thread::scope(|scope| {
            // Another worker in the middle of a search holds the read lock.
            let reading = shared.store.read();
            let (shared, session) = (&shared, &session);
            scope.spawn(move || done.send(run(shared, session, refresh("1800"))));
            let outcome = finished.recv_timeout(Duration::from_secs(5));
            drop(reading);
            assert!(
                matches!(outcome, Ok(Ok(()))),
                "the refresh waited for the lock"
            );
        });
        let dir = shared.store.read();
        let ttl = Store::ttl_left(&dir, dir.by_cn(b"a").next().unwrap(), shared.store.now());
        assert_eq!(ttl, Some(1800));
    }
}
