//! Add (RFC 4511 section 4.7, [MS-TAIL] 3.5.3): registers a person, an
//! application user or a conference as a dynamic object.
//!
//! Every entry a client adds is dynamic, whether or not it names the
//! dynamicObject class: ILS holds only who is online now, and an entry
//! that never expired would outlive the client that forgot it.

use ldap3_proto::LdapResultCode;

use crate::directory::entry::{AttrValues, Attributes, Entry};
use crate::directory::filter::{text_eq, trim_spaces};
use crate::directory::owner::Owner;
use crate::directory::schema::{self, attr};
use crate::ils::{self, APPLICATIONS_KEY, DYNAMIC_KEY, ensure_value};
use crate::ils::{implicit_container, ip_address_value};
use crate::metrics::Metrics;
use crate::ops::entries::{check_names, check_room, check_schema, live, no_such_object};
use crate::protocol::{LdapResult, Responder, WireAttr, tag};
use crate::session::{Limits, Ownership, Session, Shared};

pub fn add(
    shared: &Shared,
    session: &Session,
    dn: &[u8],
    attrs: Vec<WireAttr>,
    resp: &mut Responder<'_>,
) {
    let result = match ils::add(dn, attrs) {
        Ok(plan) => run(shared, session, plan),
        Err(e) => e,
    };
    crate::ops::entries::warn_if_full(&result);
    resp.result(tag::ADD, &result);
}

fn run(shared: &Shared, session: &Session, plan: ils::AddPlan) -> LdapResult {
    let ils::AddPlan {
        target,
        mut attrs,
        ttl,
    } = plan;
    if target.dn.is_root() {
        return LdapResult::new(LdapResultCode::EntryAlreadyExists, "the root exists");
    }
    // `cn=` names nobody: every ILS entry is found by its name.
    if target
        .dn
        .rdns
        .first()
        .is_some_and(|r| trim_spaces(&r.value).is_empty())
    {
        return LdapResult::new(LdapResultCode::InvalidDNSyntax, "the entry's name is empty");
    }
    ensure_value(
        &mut attrs,
        attr::OBJECT_CLASS,
        schema::DYNAMIC_OBJECT.as_bytes(),
    );
    let (observed_ip, max_values, owner) = {
        let limits = shared.limits.read();
        let owner = match owner_of_new(&limits, session, &mut attrs) {
            Ok(owner) => owner,
            Err(e) => return e,
        };
        if !session.admin
            && let Err(e) = check_names(&limits.moderation, &attrs)
        {
            return e;
        }
        (limits.observed_ip, limits.max_values, owner)
    };
    // In place of the address the client sends, and for a person sent
    // without one: the user's address is "a calculated value" that TAPI
    // clients leave out ([MS-TAIL] 2.2.3), and the Dialer's Find People
    // reads it (4.9.2). Other entries without one (a conference, the
    // Dialer's application entry) are given none.
    let person = attrs.iter().any(|(a, values)| {
        *a == attr::OBJECT_CLASS
            && values
                .iter()
                .any(|v| text_eq(v, schema::RT_PERSON.as_bytes()))
    });
    if observed_ip
        && (person || attrs.iter().any(|(a, _)| *a == attr::IP_ADDRESS))
        && let Some(ip) = ip_address_value(session.peer)
    {
        attrs.retain(|(a, _)| *a != attr::IP_ADDRESS);
        attrs.push((attr::IP_ADDRESS, vec![ip]));
    }
    let ttl = match ttl {
        Some(requested) => shared.store.ttl.clamp(requested),
        None => shared.store.ttl.default_ttl(),
    };
    let parent_at = target.parent_at();
    let parent_key = &target.key[parent_at..];
    let now = shared.store.now();
    let mut dir = shared.store.write();
    if live(&dir, parent_key, now).is_none() && !implicit_container(parent_key) {
        return no_such_object(&dir, &target.dn, now);
    }
    if live(&dir, &target.key, now).is_some() {
        return LdapResult::new(LdapResultCode::EntryAlreadyExists, "entry already exists");
    }
    if let Err(e) = check_schema(&attrs, max_values) {
        return e;
    }
    if parent_key != DYNAMIC_KEY
        && parent_key != APPLICATIONS_KEY
        && !implicit_container(parent_key)
    {
        return LdapResult::new(
            LdapResultCode::UnwillingToPerform,
            "entries are added under ou=Dynamic or ou=Applications",
        );
    }
    let entry = Entry::new(
        target.written,
        target.key.clone(),
        parent_at,
        Attributes::from_list(attrs),
    );
    // An expired entry of the name, not yet swept, gives its room.
    let replaced = dir.get(&entry.key).map_or(0, Entry::footprint);
    if let Err(e) = check_room(&dir, entry.footprint().saturating_sub(replaced)) {
        return e;
    }
    match dir.insert_owned(entry, owner.as_ref(), now) {
        Ok(entry) => {
            shared.store.set_ttl(entry, ttl);
            Metrics::add(&shared.counters.registrations, 1);
            LdapResult::success()
        }
        Err(_) => LdapResult::new(LdapResultCode::EntryAlreadyExists, "entry already exists"),
    }
}

/// Who will own a new entry: the session that adds it, unless ownership
/// is off. Registering needs a logon under `ownership identity`. An
/// administrator may name the owner with `ilsOwner` (restoring entries
/// from a state file with ldapadd); no one else may set it.
fn owner_of_new(
    limits: &Limits,
    session: &Session,
    attrs: &mut Vec<AttrValues>,
) -> Result<Option<Owner>, LdapResult> {
    if let Some(at) = attrs.iter().position(|(a, _)| *a == attr::ILS_OWNER) {
        let (_, values) = attrs.remove(at);
        if !session.admin {
            return Err(LdapResult::new(
                LdapResultCode::InsufficentAccessRights,
                "ilsOwner is set by the server",
            ));
        }
        let owner = match values.as_slice() {
            [one] => std::str::from_utf8(one).ok().and_then(Owner::parse),
            _ => None,
        };
        return owner.map(Some).ok_or_else(|| {
            LdapResult::new(
                LdapResultCode::InvalidAttributeSyntax,
                "ilsOwner is one value: ip:ADDRESS, dn:DN or u:NAME",
            )
        });
    }
    match limits.ownership {
        Ownership::None => Ok(None),
        Ownership::Identity if session.identity.is_none() => Err(LdapResult::new(
            LdapResultCode::InsufficentAccessRights,
            "registering needs a logon here (ownership identity)",
        )),
        Ownership::Address | Ownership::Identity => Ok(Some(session.owner())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_directory_takes_back_an_expired_name_not_yet_swept() {
        let shared = Shared::for_tests();
        let session = Session::new("127.0.0.1:1".parse().unwrap());
        let dn = b"c=-,o=Microsoft,cn=back@x.org,objectClass=rtPerson";
        let register = || {
            let attrs = vec![(b"sipaddress".to_vec(), vec![b"16777343".to_vec()])];
            run(&shared, &session, ils::add(dn, attrs).unwrap()).code
        };
        assert_eq!(register(), LdapResultCode::Success);
        // Full to the byte; then the registration expires, and its name is
        // registered again before the expiry thread has swept it.
        let mut dir = shared.store.write();
        let full = dir.footprint();
        dir.set_max_footprint(full);
        let key = dir.by_cn(b"back@x.org").next().unwrap().key.clone();
        dir.get(&key)
            .unwrap()
            .expires
            .store(0, std::sync::atomic::Ordering::Relaxed);
        drop(dir);
        assert_eq!(register(), LdapResultCode::Success);
        assert_eq!(shared.store.read().footprint(), full);
    }
}
