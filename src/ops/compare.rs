//! Compare (RFC 4511 section 4.10), on the merged view of an entry.

use ldap3_proto::LdapResultCode;

use crate::filter::{ValueSource, implied_top, text_eq};
use crate::handler::Shared;
use crate::ils::{self, PersonView};
use crate::ops::{live, no_such_object};
use crate::schema::Attr;
use crate::wire::{LdapResult, Responder, tag};

pub fn compare(shared: &Shared, dn: &[u8], name: &[u8], value: &[u8], resp: &mut Responder<'_>) {
    let result = match ils::target(dn) {
        Ok(target) => run(shared, &target, name, value),
        Err(e) => e,
    };
    resp.result(tag::COMPARE, &result);
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
    LdapResult::new(
        if equal {
            LdapResultCode::CompareTrue
        } else {
            LdapResultCode::CompareFalse
        },
        "",
    )
}
