//! An Add, translated into what is stored ([`AddPlan`]). Runs on the
//! worker threads.

use super::names::{Target, target};
use super::ttl::{entry_ttl, first_number, is_sttl};
use crate::directory::filter::text_eq;
use crate::directory::schema::{self, Attr, attr};
use crate::protocol::{LdapResult, WireAttr};

/// What an Add stores, translated.
#[derive(Debug)]
pub struct AddPlan {
    pub target: Target,
    pub attrs: Vec<(Attr, Vec<Vec<u8>>)>,
    /// The TTL the client asked for, in seconds (`entryTTL`, or `sttl` in
    /// minutes).
    pub ttl: Option<u64>,
}

/// Translates an Add: maps the names, takes the class from a short-form
/// DN when the request carries none, keeps the naming value among the
/// attributes, and reads `entryTTL`/`sttl` as the requested TTL. `smodop`
/// is a Modify command, not data, and is dropped.
pub fn add(dn: &[u8], wire: Vec<WireAttr>) -> Result<AddPlan, LdapResult> {
    let target = target(dn)?;
    let mut ttl = None;
    let mut attrs: Vec<(Attr, Vec<Vec<u8>>)> = Vec::with_capacity(wire.len() + 2);
    for (name, values) in wire {
        if is_sttl(&name) {
            ttl = first_number(&values).map(|m| m.saturating_mul(60));
            continue;
        }
        let a = Attr::from_name(&name);
        if a == attr::ENTRY_TTL {
            // An empty set (which old clients send for attributes they
            // have no value for) asks for nothing.
            if !values.is_empty() {
                ttl = Some(entry_ttl(&values)?);
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"smodop") {
            continue;
        }
        attrs.push((a, values));
    }
    if let Some(class) = target.class {
        ensure_value(&mut attrs, attr::OBJECT_CLASS, class.as_bytes());
    }
    if let Some(rdn) = target.dn.rdns.first() {
        ensure_value(&mut attrs, rdn.attr.clone(), &rdn.value);
    }
    // The Dialer names a conference by uid alone, and N-Clients find it by
    // cn ([MS-TAIL] 4.7.3, 4.11.2), which rtConference requires (2.3.3):
    // its name is both.
    let conference = attrs.iter().any(|(a, values)| {
        *a == attr::OBJECT_CLASS
            && values
                .iter()
                .any(|v| v.eq_ignore_ascii_case(schema::RT_CONFERENCE.as_bytes()))
    });
    if conference && !attrs.iter().any(|(a, _)| *a == attr::CN) {
        let uid = attrs
            .iter()
            .find(|(a, _)| *a == attr::UID)
            .and_then(|(_, values)| values.first().cloned());
        if let Some(uid) = uid {
            attrs.push((attr::CN, vec![uid]));
        }
    }
    Ok(AddPlan { target, attrs, ttl })
}

/// Adds a value to an attribute unless an equal one is there.
pub fn ensure_value(attrs: &mut Vec<(Attr, Vec<Vec<u8>>)>, a: Attr, value: &[u8]) {
    match attrs.iter_mut().find(|(x, _)| *x == a) {
        Some((_, values)) => {
            if !values.iter().any(|v| text_eq(v, value)) {
                values.push(value.to_vec());
            }
        }
        None => attrs.push((a, vec![value.to_vec()])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_takes_the_class_from_the_dn_and_the_ttl_from_sttl() {
        let plan = add(
            b"c=-,o=Microsoft,cn=a@b,objectClass=rtPerson",
            vec![
                (b"sipaddress".to_vec(), vec![b"1613317642".to_vec()]),
                (b"sttl".to_vec(), vec![b"10".to_vec()]),
                (b"smodop".to_vec(), vec![b"0".to_vec()]),
            ],
        )
        .unwrap();
        assert_eq!(plan.ttl, Some(600));
        let names: Vec<_> = plan.attrs.iter().map(|(a, _)| a.clone()).collect();
        assert_eq!(names, vec![attr::IP_ADDRESS, attr::OBJECT_CLASS, attr::CN]);
    }
}
