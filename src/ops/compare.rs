//! Compare (RFC 4511 section 4.10), on the merged view of an entry.

use ldap3_proto::LdapResultCode;

use crate::dn::Dn;
use crate::filter::{ValueSource, implied_top, text_eq};
use crate::handler::Shared;
use crate::ils::{self, PersonView};
use crate::ops::{live, no_such_object, search};
use crate::schema::Attr;
use crate::wire::{LdapResult, Responder, tag};

pub fn compare(shared: &Shared, dn: &[u8], name: &[u8], value: &[u8], resp: &mut Responder<'_>) {
    let computed = match Dn::parse(dn) {
        Ok(d) if d.is_root() => Some(search::root_dse_values()),
        Ok(d) if d.key() == search::MONITOR_KEY => Some(search::monitor_values(&shared.store)),
        _ => None,
    };
    let result = match computed {
        Some(values) => compare_computed(&values, name, value),
        None => match ils::target(dn) {
            Ok(target) => run(shared, &target, name, value),
            Err(e) => e,
        },
    };
    resp.result(tag::COMPARE, &result);
}

/// Compares on an entry the server computes: the root DSE or the
/// monitor entry, which a search reads (RFC 4511 section 4.10).
fn compare_computed(values: &[(&str, Vec<Vec<u8>>)], name: &[u8], value: &[u8]) -> LdapResult {
    let a = Attr::from_name(name);
    let mut held = values
        .iter()
        .filter(|(n, _)| Attr::from_name(n.as_bytes()) == a)
        .flat_map(|(_, vals)| vals)
        .peekable();
    if held.peek().is_none() {
        return LdapResult::new(LdapResultCode::NoSuchAttribute, "no such attribute");
    }
    let equal = implied_top(&a, value) || held.any(|v| text_eq(v, value));
    answer(equal)
}

fn answer(equal: bool) -> LdapResult {
    let code = match equal {
        true => LdapResultCode::CompareTrue,
        false => LdapResultCode::CompareFalse,
    };
    LdapResult::new(code, "")
}

fn run(shared: &Shared, target: &ils::Target, name: &[u8], value: &[u8]) -> LdapResult {
    let now = shared.store.now();
    let dir = shared.store.read();
    let Some(entry) = live(&dir, &target.key, now) else {
        return no_such_object(&dir, &target.dn, now);
    };
    let view = PersonView::new(&dir, entry, now);
    let a = Attr::from_name(name);
    if !view.any_value(&a, &mut |_| true) {
        return LdapResult::new(LdapResultCode::NoSuchAttribute, "no such attribute");
    }
    let binary = a.is_binary();
    let equal = implied_top(&a, value)
        || view.any_value(&a, &mut |v| {
            if binary {
                v == value
            } else {
                text_eq(v, value)
            }
        });
    answer(equal)
}
