//! A Modify, translated ([`ModifyPlan`]): `smodop`, the command that
//! chooses between a person and its application entry ([MS-TAIL]
//! 2.2.3), and a change of `entryTTL` or `sttl`, which is a refresh. Runs
//! on the worker threads.

use ldap3_proto::LdapResultCode;

use super::names::{Target, target};
use super::ttl::{entry_ttl, first_number, is_sttl};
use crate::directory::schema::{Attr, attr};
use crate::protocol::{Change, LdapResult, ModKind};

/// The `smodop` codes of [MS-TAIL] 2.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smodop {
    AddApp,
    DeleteApp,
    ModifyUser,
    ModifyApp,
}

/// One change of a Modify, translated.
#[derive(Debug, Clone)]
pub struct AttrChange {
    pub kind: ModKind,
    pub attr: Attr,
    pub values: Vec<Vec<u8>>,
}

/// What a Modify does, translated.
#[derive(Debug)]
pub struct ModifyPlan {
    pub target: Target,
    pub smodop: Option<Smodop>,
    pub changes: Vec<AttrChange>,
    /// A new TTL in seconds: a change of `entryTTL` (or `sttl`, in
    /// minutes) is a refresh ([MS-TAIL] 3.5.11, 4.5.3).
    pub ttl: Option<u64>,
}

/// Translates a Modify.
pub fn modify(dn: &[u8], wire: Vec<Change>) -> Result<ModifyPlan, LdapResult> {
    let target = target(dn)?;
    let mut smodop = None;
    let mut ttl = None;
    let mut changes = Vec::with_capacity(wire.len());
    for change in wire {
        if change.attr.eq_ignore_ascii_case(b"smodop") {
            smodop = match first_number(&change.values) {
                Some(0) => Some(Smodop::AddApp),
                Some(1) => Some(Smodop::DeleteApp),
                Some(2) => Some(Smodop::ModifyUser),
                Some(3) => Some(Smodop::ModifyApp),
                _ => {
                    return Err(LdapResult::new(
                        LdapResultCode::UnwillingToPerform,
                        "smodop must be 0, 1, 2 or 3",
                    ));
                }
            };
            continue;
        }
        if is_sttl(&change.attr) {
            ttl = first_number(&change.values).map(|m| m.saturating_mul(60));
            continue;
        }
        let a = Attr::from_name(&change.attr);
        if a == attr::ENTRY_TTL {
            if change.kind == ModKind::Delete {
                return Err(LdapResult::new(
                    LdapResultCode::UnwillingToPerform,
                    "entryTTL cannot be deleted; refresh it instead",
                ));
            }
            ttl = Some(entry_ttl(&change.values)?);
            continue;
        }
        changes.push(AttrChange {
            kind: change.kind,
            attr: a,
            values: change.values,
        });
    }
    Ok(ModifyPlan {
        target,
        smodop,
        changes,
        ttl,
    })
}

/// The application name of an `smodop` Modify: `sappname`, else
/// `sappid`, else NetMeeting's.
pub fn application_name(changes: &[AttrChange]) -> Vec<u8> {
    [attr::APP_NAME, attr::APPLICATION_ID]
        .iter()
        .find_map(|a| {
            changes
                .iter()
                .find(|c| c.attr == *a && c.kind != ModKind::Delete)
                .and_then(|c| c.values.first().cloned())
        })
        .unwrap_or_else(|| b"ms-netmeeting".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modify_reads_smodop_and_entry_ttl() {
        let change = |a: &str, v: &str| Change {
            kind: ModKind::Replace,
            attr: a.as_bytes().to_vec(),
            values: vec![v.as_bytes().to_vec()],
        };
        let plan = modify(
            b"cn=x,ou=dynamic,o=Intranet",
            vec![
                change("smodop", "0"),
                change("sappid", "ms-netmeeting"),
                change("EntryTTL", "1800"),
            ],
        )
        .unwrap();
        assert_eq!(plan.smodop, Some(Smodop::AddApp));
        assert_eq!(plan.ttl, Some(1800));
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(application_name(&plan.changes), b"ms-netmeeting");
        assert!(modify(b"cn=x,ou=dynamic,o=Intranet", vec![change("smodop", "9")]).is_err());
        let mut two = change("entryTTL", "700");
        two.values.push(b"800".to_vec());
        let refused = modify(b"cn=x,ou=dynamic,o=Intranet", vec![two]).unwrap_err();
        assert_eq!(refused.code, LdapResultCode::ConstraintViolation);
    }
}
