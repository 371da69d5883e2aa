//! Delete (RFC 4511 section 4.8, [MS-TAIL] 3.5.4): a person goes with its
//! application entries.

use ldap3_proto::LdapResultCode;

use crate::directory::entry::class;
use crate::ils::{self, APPLICATIONS_KEY};
use crate::metrics::Metrics;
use crate::ops::entries::{live, may_change, no_such_object, not_owner, same_owner};
use crate::protocol::{LdapResult, Responder, tag};
use crate::session::{Session, Shared};

pub fn delete(shared: &Shared, session: &Session, dn: &[u8], resp: &mut Responder<'_>) {
    let result = match ils::target(dn) {
        Ok(target) => run(shared, session, &target),
        Err(e) => e,
    };
    resp.result(tag::DELETE, &result);
}

fn run(shared: &Shared, session: &Session, target: &ils::Target) -> LdapResult {
    let ownership = shared.limits.read().ownership;
    let now = shared.store.now();
    let mut dir = shared.store.write();
    let Some(entry) = live(&dir, &target.key, now) else {
        return no_such_object(&dir, &target.dn, now);
    };
    if !entry.is(class::DYNAMIC) {
        return LdapResult::new(
            LdapResultCode::UnwillingToPerform,
            "the static tree cannot be changed",
        );
    }
    if !may_change(&dir, entry, session, ownership) {
        return not_owner();
    }
    // Application entries of the same user, including those the Dialer
    // added on their own ([MS-TAIL] 3.5.4 removes both).
    let mut doomed = vec![entry.key.clone()];
    if entry.is(class::PERSON)
        && let Some(cn) = entry.attrs.first(&crate::directory::schema::attr::CN)
    {
        doomed.extend(
            dir.by_cn(cn)
                .filter(|e| e.is(class::APPLICATION) && e.parent_key().ends_with(APPLICATIONS_KEY))
                .filter(|e| same_owner(&dir, e, entry, ownership))
                .map(|e| e.key.clone()),
        );
    }
    let removed: usize = doomed.iter().map(|k| dir.remove(k)).sum();
    Metrics::add(&shared.counters.deletes, removed as u64);
    log::debug!(
        "deleted {} ({removed} entries)",
        String::from_utf8_lossy(&target.written)
    );
    LdapResult::success()
}
