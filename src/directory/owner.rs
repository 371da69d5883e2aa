//! Who registered an entry: the verified identity of the session that
//! added it, or else the address it came from. Only the owner (and an
//! administrator) may change or remove the entry.
//!
//! Two million entries at a million users cannot each carry an owner of
//! their own: an entry holds a four-byte [`OwnerId`], and the directory
//! keeps each distinct owner once in [`Owners`], counted by the entries
//! that refer to it and dropped with the last of them. Read and written
//! under the store's lock, on the worker and expiry threads.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// An owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The address the entry was registered from (IPv4-mapped IPv6
    /// addresses as IPv4).
    Address(IpAddr),
    /// A verified identity, as an authorization ID (RFC 4513 section
    /// 5.2.1.8): `dn:` and a normalised DN, or `u:` and a user name.
    Identity(Box<str>),
}

impl Owner {
    /// The owner of what a client at `ip` registers without a logon.
    pub fn address(ip: IpAddr) -> Owner {
        Owner::Address(ip.to_canonical())
    }

    /// Reads the form [`fmt::Display`] writes: `ip:ADDRESS`, `dn:DN` or
    /// `u:NAME`.
    pub fn parse(text: &str) -> Option<Owner> {
        if let Some(ip) = text.strip_prefix("ip:") {
            return ip.parse().ok().map(Owner::address);
        }
        if text.starts_with("dn:") || text.starts_with("u:") {
            return Some(Owner::Identity(text.into()));
        }
        None
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Address(ip) => write!(f, "ip:{ip}"),
            Owner::Identity(id) => f.write_str(id),
        }
    }
}

/// An entry's reference to its owner in [`Owners`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OwnerId(u32);

impl OwnerId {
    /// No owner: the static tree, and what was registered while
    /// ownership was off.
    pub const NONE: OwnerId = OwnerId(0);
}

/// The distinct owners of the entries, each counted by the entries that
/// refer to it.
#[derive(Default)]
pub struct Owners {
    /// Slot `i` holds the owner of `OwnerId(i + 1)` and its count; a slot
    /// whose count fell to zero is free.
    slots: Vec<(Option<Owner>, u32)>,
    ids: HashMap<Owner, OwnerId>,
    free: Vec<u32>,
}

impl Owners {
    /// The id of an owner, taking a slot for a new one. The slot stays
    /// free until an entry is counted on it ([`Owners::count`]).
    pub fn id(&mut self, owner: &Owner) -> OwnerId {
        if let Some(&id) = self.ids.get(owner) {
            return id;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push((None, 0));
                self.slots.len() as u32 - 1
            }
        };
        self.slots[slot as usize] = (Some(owner.clone()), 0);
        let id = OwnerId(slot + 1);
        self.ids.insert(owner.clone(), id);
        id
    }

    /// The owner an id refers to.
    pub fn get(&self, id: OwnerId) -> Option<&Owner> {
        let slot = id.0.checked_sub(1)?;
        self.slots.get(slot as usize)?.0.as_ref()
    }

    /// Counts an entry in (`stored`) or out; an owner counted by no entry
    /// is forgotten.
    pub fn count(&mut self, id: OwnerId, stored: bool) {
        let Some(slot) = id.0.checked_sub(1) else {
            return;
        };
        let Some((owner, refs)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if stored {
            *refs += 1;
            return;
        }
        *refs = refs.saturating_sub(1);
        if *refs == 0
            && let Some(owner) = owner.take()
        {
            self.ids.remove(&owner);
            self.free.push(slot);
        }
    }

    /// Checks the counts against those of the entries (see
    /// [`Directory::check`](crate::directory::store::Directory::check)).
    pub fn check(&self, counted: &HashMap<OwnerId, u32>) -> Result<(), String> {
        for (slot, (owner, refs)) in self.slots.iter().enumerate() {
            let id = OwnerId(slot as u32 + 1);
            let entries = counted.get(&id).copied().unwrap_or(0);
            if *refs != entries || owner.is_some() != (entries > 0) {
                return Err(format!(
                    "owner {id:?} is counted {refs} times, held by {entries}"
                ));
            }
        }
        if counted.keys().any(|id| self.get(*id).is_none()) {
            return Err("an entry refers to an owner that is gone".into());
        }
        Ok(())
    }

    /// How many distinct owners are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_shared_and_forgotten_with_their_last_entry() {
        let mut owners = Owners::default();
        let a = Owner::address("127.0.0.2".parse().unwrap());
        let mapped = Owner::address("::ffff:127.0.0.2".parse().unwrap());
        assert_eq!(a, mapped, "an IPv4-mapped address is the IPv4 address");
        let id = owners.id(&a);
        assert_eq!(owners.id(&mapped), id);
        owners.count(id, true);
        owners.count(id, true);
        owners.count(id, false);
        assert_eq!(owners.get(id), Some(&a));
        owners.count(id, false);
        assert_eq!(owners.get(id), None);
        assert!(owners.is_empty());
        let b = Owner::Identity("dn:cn=b,o=intranet".into());
        assert_eq!(owners.id(&b), id, "the slot is used again");
        assert_eq!(owners.get(OwnerId::NONE), None);
    }

    #[test]
    fn owners_read_back_as_written() {
        for text in [
            "ip:10.0.0.1",
            "ip:2001:db8::1",
            "dn:cn=a,o=intranet",
            "u:DOM\\alice",
        ] {
            assert_eq!(Owner::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Owner::parse("10.0.0.1"), None);
        assert_eq!(Owner::parse("ip:nonsense"), None);
    }
}
