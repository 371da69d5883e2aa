//! What a search asks of the directory, in the directory's own words: the
//! part of the tree it takes in ([`Region`]) and where its candidates come
//! from ([`Source`]): one entry by its key, the `cn` or `uid` index, or a
//! walk over every entry.
//!
//! The dialect ([`crate::ils`]) turns a request into these; the directory
//! answers them. Runs on the worker threads, under the store's read lock.

use super::entry::Entry;
use super::store::{Directory, Named};

/// How far below its base a search reaches: the scopes of RFC 4511
/// section 4.5.1.2 and of the subordinate-subtree draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The base alone.
    Base,
    /// The entries right below the base.
    One,
    /// The base and everything below it.
    Subtree,
    /// Everything below the base, without it.
    Children,
}

/// The part of the tree a search takes in.
#[derive(Clone, Copy, Debug)]
pub enum Region<'a> {
    /// Every entry of a class (an [`Entry::is`] bit), wherever it is.
    Class(u8),
    /// The entries at a depth below a normalised key (the root is empty).
    Under { base: &'a [u8], depth: Depth },
}

impl Region<'_> {
    /// Whether an entry is inside the region.
    pub fn takes(&self, entry: &Entry) -> bool {
        match self {
            Region::Class(bit) => entry.is(*bit),
            Region::Under { .. } => self.takes_key(&entry.key, entry.parent_key()),
        }
    }

    /// Whether the entry of a key, below `parent_key`, is inside a region
    /// under a base; entries that are not stored (computed ones) are
    /// placed this way.
    pub fn takes_key(&self, key: &[u8], parent_key: &[u8]) -> bool {
        let Region::Under { base, depth } = *self else {
            return false;
        };
        match depth {
            Depth::Base => key == base,
            Depth::One => parent_key == base,
            Depth::Subtree | Depth::Children => {
                let below = (base.is_empty() && !key.is_empty())
                    || (key.len() > base.len()
                        && key.ends_with(base)
                        && key[key.len() - base.len() - 1] == b',');
                below || (key == base && depth == Depth::Subtree)
            }
        }
    }
}

/// Where a search's candidates come from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// The entry of a normalised key.
    Entry(&'a [u8]),
    /// The entries whose `cn` is this value.
    Cn(&'a [u8]),
    /// The entries whose `uid` is this value.
    Uid(&'a [u8]),
    /// Every entry, a table slot at a time ([`Directory::slots_from`]).
    Walk,
}

/// The candidates of a lookup by key or by name.
pub enum Candidates<'a> {
    One(Option<&'a Entry>),
    Named(Named<'a>),
}

impl<'a> Iterator for Candidates<'a> {
    type Item = &'a Entry;

    fn next(&mut self) -> Option<&'a Entry> {
        match self {
            Candidates::One(entry) => entry.take(),
            Candidates::Named(named) => named.next(),
        }
    }
}

impl Directory {
    /// The candidates of a lookup; `None` when the source is a walk over
    /// every entry, which goes by [`Directory::slots_from`] instead.
    pub fn candidates<'a>(&'a self, source: Source<'a>) -> Option<Candidates<'a>> {
        Some(match source {
            Source::Entry(key) => Candidates::One(self.get(key)),
            Source::Cn(name) => Candidates::Named(self.by_cn(name)),
            Source::Uid(name) => Candidates::Named(self.by_uid(name)),
            Source::Walk => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_take_what_their_scope_reaches() {
        let people = b"ou=dynamic,o=intranet";
        let key = b"cn=a,ou=dynamic,o=intranet";
        let at = |depth| Region::Under {
            base: people,
            depth,
        };
        assert!(at(Depth::One).takes_key(key, people));
        assert!(!at(Depth::Base).takes_key(key, people));
        assert!(at(Depth::Base).takes_key(people, b"o=intranet"));
        assert!(at(Depth::Subtree).takes_key(people, b"o=intranet"));
        assert!(!at(Depth::Children).takes_key(people, b"o=intranet"));
        assert!(at(Depth::Children).takes_key(key, people));
        // A key that merely ends with the base's text is not below it.
        assert!(!at(Depth::Subtree).takes_key(b"cn=a,xou=dynamic,o=intranet", b"x"));
        let root = Region::Under {
            base: b"",
            depth: Depth::Subtree,
        };
        assert!(root.takes_key(key, people));
        assert!(!Region::Class(1).takes_key(key, people));
    }
}
