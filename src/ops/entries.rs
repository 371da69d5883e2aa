//! What the operations share: finding the entries a request names and
//! checking what a write would store against the schema and the limits.
//! Runs on the worker threads.

use ldap3_proto::LdapResultCode;

use crate::auth::moderation::Moderation;
use crate::directory::dn::Dn;
use crate::directory::entry::{AttrValues, Entry};
use crate::directory::schema::{self, attr};
use crate::directory::store::Directory;
use crate::ils::implicit_container;
use crate::protocol::LdapResult;
use crate::session::{Ownership, Session};
use crate::throttle::Throttle;

/// Looks up an entry that is there for clients at `now`.
pub fn live<'a>(dir: &'a Directory, key: &[u8], now: u64) -> Option<&'a Entry> {
    dir.get(key).filter(|e| dir.alive(e, now))
}

/// The noSuchObject answer for `dn`, naming the nearest ancestor that
/// exists (RFC 4511 section 4.1.9).
pub fn no_such_object(dir: &Directory, dn: &Dn, now: u64) -> LdapResult {
    let mut ancestor = dn.parent();
    while !ancestor.is_root() {
        let key = ancestor.key();
        if let Some(e) = live(dir, &key, now) {
            return LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
                .with_matched(e.dn().into_owned());
        }
        if implicit_container(&key) {
            return LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
                .with_matched(ancestor.to_bytes());
        }
        ancestor = ancestor.parent();
    }
    LdapResult::new(LdapResultCode::NoSuchObject, "no such object")
}

/// The answer to a request that would leave an entry with more than
/// `max-values` values.
pub fn too_many_values(max_values: usize) -> LdapResult {
    LdapResult::new(
        LdapResultCode::AdminLimitExceeded,
        format!("an entry holds at most {max_values} attribute values (max-values)"),
    )
}

/// Refuses a change that would grow the entries' footprint by `more`
/// bytes past `max-memory`: a directory that is full turns new
/// registrations away instead of growing until the system runs out of
/// memory.
/// [`warn_if_full`] logs it, once the lock is let go.
pub fn check_room(dir: &Directory, more: usize) -> Result<(), LdapResult> {
    if dir.has_room(more) {
        return Ok(());
    }
    Err(LdapResult::new(
        LdapResultCode::AdminLimitExceeded,
        format!(
            "{FULL}: its entries may take {} bytes (max-memory)",
            dir.max_footprint()
        ),
    ))
}

const FULL: &str = "the directory is full";

/// Warns, at most every ten seconds, that a change was refused by
/// [`check_room`]. Called without the lock: a log that blocks must not
/// stall the directory.
pub fn warn_if_full(result: &LdapResult) {
    static REFUSED: Throttle = Throttle::new();
    if result.code == LdapResultCode::AdminLimitExceeded && result.message.starts_with(FULL) {
        REFUSED.warn(|n| {
            format!(
                "{} ({n} registration(s) or change(s) refused since the last warning)",
                result.message
            )
        });
    }
}

/// Checks attributes against the schema: every objectClass value is
/// known, and every class's required attributes are present; and that the
/// entry holds at most `max_values` values, so that no client can make
/// one entry cost every search that meets it.
pub fn check_schema(attrs: &[AttrValues], max_values: usize) -> Result<(), LdapResult> {
    let values: usize = attrs.iter().map(|(_, v)| v.len()).sum();
    if values > max_values {
        return Err(too_many_values(max_values));
    }
    let violation = |m: String| Err(LdapResult::new(LdapResultCode::ObjectClassViolation, m));
    let Some((_, classes)) = attrs.iter().find(|(a, _)| *a == attr::OBJECT_CLASS) else {
        return violation("objectClass is required".into());
    };
    if !classes.iter().any(|c| schema::is_ils_class(c)) {
        return violation("an entry must be an rtPerson, rtApplicationUser or rtConference".into());
    }
    for name in classes {
        let Some(class) = schema::object_class(name) else {
            return violation(format!(
                "unknown object class {}",
                String::from_utf8_lossy(name)
            ));
        };
        for required in class.must {
            if !attrs.iter().any(|(a, v)| a == required && !v.is_empty()) {
                return violation(format!(
                    "{} requires {}",
                    class.name,
                    String::from_utf8_lossy(required.name())
                ));
            }
        }
    }
    Ok(())
}

/// Whether a session may change, refresh or remove an entry: its owner
/// and administrators may, and anyone when ownership is off or the entry
/// was registered while it was (it has no owner).
pub fn may_change(dir: &Directory, entry: &Entry, session: &Session, ownership: Ownership) -> bool {
    if session.admin || ownership == Ownership::None {
        return true;
    }
    dir.owner_of(entry).is_none_or(|owner| session.is(owner))
}

/// The answer to a change of an entry the session does not own.
pub fn not_owner() -> LdapResult {
    LdapResult::new(
        LdapResultCode::InsufficentAccessRights,
        "the entry belongs to another client: only its owner or an administrator may change it",
    )
}

/// Refuses values that a `deny-name` rule bars.
pub fn check_names(moderation: &Moderation, attrs: &[AttrValues]) -> Result<(), LdapResult> {
    for (a, values) in attrs {
        if let Some(rule) = values.iter().find_map(|v| moderation.denied_value(a, v)) {
            let name = String::from_utf8_lossy(a.name()).into_owned();
            refused(|| format!("a registration was refused: its {name} matches deny-name {rule}"));
            return Err(LdapResult::new(
                LdapResultCode::UnwillingToPerform,
                format!("this {name} is refused by the administrator"),
            ));
        }
    }
    Ok(())
}

/// Logs a request that the moderation rules refused, at most every ten
/// seconds.
pub fn refused(line: impl FnOnce() -> String) {
    static REFUSED: Throttle = Throttle::new();
    REFUSED.warn(|n| format!("{} ({n} refused since the last warning)", line()));
}

/// Whether an application entry goes with a person: what is done to the
/// person (a delete, a refresh, smodop) reaches the applications of the
/// same owner, and no one else's that happen to share its cn.
pub fn same_owner(dir: &Directory, app: &Entry, person: &Entry, ownership: Ownership) -> bool {
    ownership == Ownership::None
        || dir.owner_of(app).is_none()
        || dir.owner_of(app) == dir.owner_of(person)
}
