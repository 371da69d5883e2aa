//! The merged view: a person as clients see it, carrying the attributes
//! of its application entries. Runs on the worker threads, under the
//! store's read lock.

use super::APPLICATIONS_KEY;
use crate::directory::dn::Dn;
use crate::directory::entry::{AttrRef, Entry, class};
use crate::directory::filter::ValueSource;
use crate::directory::schema::{Attr, attr};
use crate::directory::store::{Directory, Store};

/// An entry as clients see it: a person carries the attributes of its
/// application entries (those with the same cn under ou=Applications);
/// any other entry is shown as it is.
pub struct PersonView<'a> {
    pub entry: &'a Entry,
    dir: &'a Directory,
    now: u64,
    /// The applications, looked up when first needed: a listing that asks
    /// only for what a person holds itself (its name, its address) never
    /// looks them up, which was most of the cost of listing.
    apps: std::cell::OnceCell<Vec<&'a Entry>>,
    /// Seconds left to live, for `entryTTL`.
    pub ttl: Option<u64>,
    /// Whether `ilsOwner` shows: to administrators only, in answers and
    /// in filters alike, so that no one else can learn where a user
    /// registered from.
    pub owner_visible: bool,
}

impl<'a> PersonView<'a> {
    pub fn new(dir: &'a Directory, entry: &'a Entry, now: u64) -> PersonView<'a> {
        PersonView {
            entry,
            dir,
            now,
            apps: std::cell::OnceCell::new(),
            ttl: Store::ttl_left(dir, entry, now),
            owner_visible: false,
        }
    }

    /// The person's live application entries.
    pub fn apps(&self) -> &[&'a Entry] {
        self.apps.get_or_init(|| {
            let (dir, entry) = (self.dir, self.entry);
            let mut apps = Vec::new();
            if entry.is(class::PERSON)
                && let Some(cn) = entry.attrs.first(&attr::CN)
            {
                // Only applications of the person's own owner: anyone can
                // add an entry under ou=Applications with someone's cn,
                // and must not add to what that person is shown with.
                let owner = dir.owner_of(entry);
                for app in dir.by_cn(cn).other_than(&entry.key) {
                    if app.is(class::APPLICATION)
                        && app.parent_key().ends_with(APPLICATIONS_KEY)
                        && dir.alive_beside(app, entry, self.now)
                        && dir.owner_of(app).is_none_or(|o| Some(o) == owner)
                    {
                        apps.push(app);
                    }
                }
            }
            apps
        })
    }

    /// Calls `f` with each value of `a` in the view: the person's when it
    /// has the attribute, else its applications'.
    pub fn for_each_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8])) {
        if *a == attr::ENTRY_TTL {
            if let Some(ttl) = self.ttl {
                f(ttl.to_string().as_bytes());
            }
            return;
        }
        if *a == attr::ILS_OWNER {
            if let Some(owner) = self.owner() {
                f(owner.as_bytes());
            }
            return;
        }
        let own = self.entry.attrs.get(a);
        if !own.is_empty() {
            own.for_each(f);
            return;
        }
        match self.apps() {
            [app] => app.attrs.get(a).for_each(f),
            apps => {
                // Applications often share a value (a port, a MIME type):
                // it is shown once. A set, since a client may give one
                // person hundreds of applications of hundreds of values.
                let mut shown = std::collections::HashSet::new();
                for v in apps.iter().flat_map(|app| app.attrs.get(a)) {
                    if shown.insert(v) {
                        f(v);
                    }
                }
            }
        }
    }

    /// Every stored attribute of the view, the person's first.
    pub fn attributes(&self) -> Vec<AttrRef<'a>> {
        let mut out: Vec<AttrRef<'a>> = self.entry.attrs.iter().map(|(a, _)| a).collect();
        for app in self.apps() {
            for (a, _) in app.attrs.iter() {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The owner, as `ilsOwner` shows it, to those who may see it.
    fn owner(&self) -> Option<String> {
        self.owner_visible
            .then(|| self.dir.owner_of(self.entry))
            .flatten()
            .map(|o| o.to_string())
    }

    /// Whether the entry is hidden: `sFlags` 0 ([MS-TAIL] 2.2.2).
    pub fn hidden(&self) -> bool {
        let mut hidden = false;
        let mut seen = false;
        self.for_each_value(&attr::SFLAGS, &mut |v| {
            if !seen {
                hidden = crate::directory::filter::trim_spaces(v) == b"0";
                seen = true;
            }
        });
        hidden
    }
}

impl ValueSource for PersonView<'_> {
    fn any_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        if *a == attr::ENTRY_TTL {
            return self.ttl.is_some_and(|ttl| f(ttl.to_string().as_bytes()));
        }
        if *a == attr::ILS_OWNER {
            return self.owner().is_some_and(|o| f(o.as_bytes()));
        }
        // The values the view shows (see `for_each_value`), so that what
        // a filter matches is what the answer says.
        if self.entry.attrs.has(a) {
            return self.entry.attrs.get(a).any(f);
        }
        self.apps().iter().any(|e| e.attrs.get(a).any(&mut *f))
    }

    fn any_attr_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        self.attributes().into_iter().any(|a| {
            let a = a.to_owned();
            self.any_value(&a, &mut |v| f(&a, v))
        })
    }

    fn any_dn_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        Dn::parse(&self.entry.dn())
            .is_ok_and(|dn| dn.rdns.iter().any(|rdn| f(&rdn.attr, &rdn.value)))
    }
}
