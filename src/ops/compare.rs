//! Compare (RFC 4511 section 4.10), on the merged view of an entry.

use ldap3_proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::filter::{Filter, ValueSource};
use crate::directory::schema::Attr;
use crate::ils::{self, PersonView};
use crate::ops::computed::{self, VirtualValues};
use crate::ops::entries::{live, no_such_object};
use crate::protocol::{LdapResult, Responder, tag};
use crate::session::{Session, Shared};

pub fn compare(
    shared: &Shared,
    session: &Session,
    dn: &[u8],
    name: &[u8],
    value: &[u8],
    resp: &mut Responder<'_>,
) {
    let computed = match Dn::parse(dn) {
        Ok(d) if d.is_root() => Some(computed::root_dse_values(shared)),
        Ok(d) if d.key() == computed::MONITOR_KEY => Some(computed::monitor_values(shared)),
        _ => None,
    };
    let result = match computed {
        // The root DSE and the monitor entry, which a search reads.
        Some(values) => compare_on(&VirtualValues(dn, &values), name, value),
        None => match ils::target(dn) {
            Ok(target) => run(shared, session, &target, name, value),
            Err(e) => e,
        },
    };
    resp.result(tag::COMPARE, &result);
}

fn run(
    shared: &Shared,
    session: &Session,
    target: &ils::Target,
    name: &[u8],
    value: &[u8],
) -> LdapResult {
    let now = shared.store.now();
    let dir = shared.store.read();
    let Some(entry) = live(&dir, &target.key, now) else {
        return no_such_object(&dir, &target.dn, now);
    };
    let mut view = PersonView::new(&dir, entry, now);
    view.owner_visible = session.admin;
    compare_on(&view, name, value)
}

/// Compares as an equality filter matches, on the values a search shows.
fn compare_on(source: &dyn ValueSource, name: &[u8], value: &[u8]) -> LdapResult {
    let a = Attr::from_name(name);
    if !source.any_value(&a, &mut |_| true) {
        return LdapResult::new(LdapResultCode::NoSuchAttribute, "no such attribute");
    }
    let code = match Filter::Equal(a, value.to_vec()).matches(source) {
        true => LdapResultCode::CompareTrue,
        false => LdapResultCode::CompareFalse,
    };
    LdapResult::new(code, "")
}
