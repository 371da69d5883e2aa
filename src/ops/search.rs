//! Search (RFC 4511 section 4.5, [MS-TAIL] 3.5.6, 3.5.7, 3.5.11, 4.2, 4.3):
//! the root DSE, lookups by name through the index, scans, the `sttl`
//! refresh, and results under the names the client asked for.
//!
//! A search walks down the layers once: the dialect turns the request
//! into a plan ([`ils::search`]); the directory answers the plan's
//! [`Source`](crate::directory::query::Source) within its
//! [`Region`]; each candidate is matched and shaped through the merged
//! view ([`PersonView`], [`ils::shape`]) and encoded into the output; the
//! entries the server computes ([`computed`]) come last.
//!
//! Entries are examined and encoded while the read lock is held, for at
//! most [`HOLD`] and [`CHUNK_BYTES`] of output at a time, and the output
//! is written between holds. A walk over every entry goes on from the
//! table slot where its last hold ended; a lookup by name takes the names
//! of the candidates it has not reached. A client listing a million users,
//! or sending a filter of thousands of terms, neither holds writers back
//! for longer than a hold nor needs the whole answer in memory, and one
//! that stops reading holds at most one chunk.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ldap3_proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::entry::{Entry, Key, class};
use crate::directory::query::Region;
use crate::directory::store::{Directory, SlotCursor, Store};
use crate::ils::{self, APPLICATIONS_KEY, Base, PersonView, SearchPlan, implicit_container};
use crate::ops::computed::{
    self, ADMIN_KEY, MONITOR_DN, MONITOR_KEY, VirtualValues, container_values, monitor_values,
    send_virtual, takes_in_containers,
};
use crate::ops::entries::{live, may_change, no_such_object, same_owner};
use crate::protocol::{LdapResult, Responder, Scope, SearchRequest, tag};
use crate::session::{Flush, Limits, Ownership, Session, Shared};

/// Output encoded before it is written: what one search holds.
const CHUNK_BYTES: usize = 256 * 1024;
/// The longest hold of the read lock by one search: a longer search lets
/// writers in between holds, and with them the readers queued behind
/// them, so that no search, however costly its filter, stalls the server.
const HOLD: Duration = Duration::from_millis(2);

pub fn search(
    shared: &Shared,
    session: &Session,
    req: SearchRequest,
    resp: &mut Responder<'_>,
    flush: Flush<'_>,
) {
    let result = match ils::search(req) {
        Ok(plan) => answer(shared, session, plan, resp, flush),
        Err(e) => e,
    };
    resp.result(tag::SEARCH_DONE, &result);
}

/// Answers a plan: the computed entries it names, else its candidates
/// from the directory, then the computed entries its region takes in.
fn answer(
    shared: &Shared,
    session: &Session,
    mut plan: SearchPlan,
    resp: &mut Responder<'_>,
    flush: Flush<'_>,
) -> LdapResult {
    let store = &shared.store;
    match &plan.base {
        Base::RootDse => {
            computed::root_dse(shared, &plan, resp);
            return LdapResult::success();
        }
        Base::Entry(t) if t.key == MONITOR_KEY => {
            if matches!(plan.scope, Scope::Base | Scope::Subtree) {
                let values = monitor_values(shared);
                computed::virtual_entry(&plan, resp, MONITOR_DN, &values);
            }
            return LdapResult::success();
        }
        _ => {}
    }
    let now = store.now();
    plan.settle_literal(store, now);
    let Some(region) = plan.region() else {
        return LdapResult::success();
    };
    // One read of the settings for both: every lock taken is a cache
    // line the workers pass between them.
    let (progress, rights) = {
        let limits = shared.limits.read();
        (Progress::new(&limits, &plan), Rights::of(&limits, session))
    };
    let mut scan = Scan::new(&plan, region, shared, now, progress, rights);
    let done = scan
        .run(resp, flush)
        .and_then(|()| scan.send_computed(resp));
    match done {
        Ok(()) => scan.result(),
        // A limit was reached, or the base is not there: what was found
        // so far is sent.
        Err(e) => e,
    }
}

/// How the search is going: limits and counts.
struct Progress {
    sent: usize,
    size_limit: usize,
    deadline: Option<Instant>,
}

impl Progress {
    /// The tighter of the client's and the server's limits, 0 being none.
    fn new(limits: &Limits, plan: &SearchPlan) -> Progress {
        let size = smallest_nonzero(plan.size_limit as u64, limits.size_limit as u64) as usize;
        let time = smallest_nonzero(plan.time_limit, limits.time_limit);
        Progress {
            sent: 0,
            size_limit: size,
            // A limit beyond what the clock can count is no limit.
            deadline: (time > 0)
                .then(|| Instant::now().checked_add(Duration::from_secs(time)))
                .flatten(),
        }
    }

    fn check_size(&self) -> Result<(), LdapResult> {
        if self.size_limit > 0 && self.sent >= self.size_limit {
            return Err(LdapResult::new(
                LdapResultCode::SizeLimitExceeded,
                "size limit exceeded",
            ));
        }
        Ok(())
    }

    fn check_time(&self, now: Instant) -> Result<(), LdapResult> {
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(LdapResult::new(
                LdapResultCode::TimeLimitExceeded,
                "time limit exceeded",
            ));
        }
        Ok(())
    }
}

fn smallest_nonzero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// What the session may do to the entries it finds.
struct Rights<'s> {
    session: &'s Session,
    ownership: Ownership,
    /// Its address is denied (deny-address): it refreshes nothing.
    denied: bool,
}

impl<'s> Rights<'s> {
    fn of(limits: &Limits, session: &'s Session) -> Rights<'s> {
        Rights {
            session,
            ownership: limits.ownership,
            denied: !session.admin
                && limits
                    .moderation
                    .denied_address(session.peer.ip())
                    .is_some(),
        }
    }

    /// Whether an `sttl` search refreshes an entry it found: only its
    /// owner's (or an administrator's) does; anyone else's returns what
    /// it finds and refreshes nothing.
    fn may_refresh(&self, dir: &Directory, entry: &Entry) -> bool {
        !self.denied && may_change(dir, entry, self.session, self.ownership)
    }
}

/// One search's walk over its candidates, which can stop at the end of a
/// hold of the read lock and go on in the next.
struct Scan<'p> {
    plan: &'p SearchPlan,
    rights: Rights<'p>,
    region: Region<'p>,
    shared: &'p Shared,
    store: &'p Store,
    /// The TTL an `sttl` refresh grants, within the server's bounds.
    sttl: Option<u32>,
    exact: bool,
    now: u64,
    progress: Progress,
    /// Entries an `sttl` search found, and those it refreshed.
    found: usize,
    refreshed: usize,
    held_since: Instant,
    /// The names of the entries a walk over every entry sent in its first
    /// hold of the lock.
    sent_keys: Option<Vec<Key>>,
    /// The names of the entries the walk has sent, once it goes on in a
    /// later hold: between holds, an entry may be removed and added again
    /// in a slot ahead of the walk, and the table may be rehashed and the
    /// walk start again. Neither sends an entry twice.
    skip: Option<HashSet<Key>>,
    /// The application containers (`appName=APP` under ou=Applications)
    /// the search's base and scope take in, by key with their DNs, as the
    /// entries below them are met: they are entries to clients, though
    /// none is stored.
    containers: Option<HashMap<Vec<u8>, Vec<u8>>>,
}

/// Whether a scan goes on within this hold of the lock.
enum Flow {
    Go,
    /// The hold has lasted [`HOLD`], or the output has reached
    /// [`CHUNK_BYTES`]: the lock is let go and the output written.
    Yield,
}

/// What is left of the candidates when a hold of the lock ends.
enum Rest {
    Done,
    /// The names of the candidates of a lookup not yet examined, and the
    /// next one to examine.
    Named(Vec<Key>, usize),
    /// Where a walk over every entry goes on.
    Walk(SlotCursor),
}

impl<'p> Scan<'p> {
    fn new(
        plan: &'p SearchPlan,
        region: Region<'p>,
        shared: &'p Shared,
        now: u64,
        progress: Progress,
        rights: Rights<'p>,
    ) -> Scan<'p> {
        let store = &*shared.store;
        Scan {
            plan,
            rights,
            region,
            shared,
            store,
            sttl: plan
                .sttl
                .map(|minutes| store.ttl.clamp(minutes.saturating_mul(60))),
            exact: plan.exact(),
            now,
            progress,
            found: 0,
            refreshed: 0,
            held_since: Instant::now(),
            sent_keys: None,
            skip: None,
            containers: takes_in_containers(plan).then(HashMap::new),
        }
    }

    /// Examines every candidate, a hold of the lock at a time, writing
    /// the output between holds.
    fn run(&mut self, resp: &mut Responder<'_>, flush: Flush<'_>) -> Result<(), LdapResult> {
        let mut rest = self.first_hold(resp)?;
        while !matches!(rest, Rest::Done) {
            flush(resp.out)
                .map_err(|_| LdapResult::new(LdapResultCode::Other, "client went away"))?;
            let store = self.store;
            let dir = store.read();
            self.held_since = Instant::now();
            rest = match rest {
                Rest::Named(keys, next) => self.named_from(&dir, keys, next, resp)?,
                Rest::Walk(at) => self.walk_on(&dir, at, resp)?,
                Rest::Done => Rest::Done,
            };
        }
        Ok(())
    }

    /// The first hold: the base must exist (the root, an empty key, is a
    /// search of everything), then the candidates are taken from their
    /// source until the hold ends.
    fn first_hold(&mut self, resp: &mut Responder<'_>) -> Result<Rest, LdapResult> {
        let store = self.store;
        let dir = store.read();
        self.held_since = Instant::now();
        if let Base::Entry(t) = &self.plan.base
            && !t.key.is_empty()
            && live(&dir, &t.key, self.now).is_none()
            && !implicit_container(&t.key)
        {
            return Err(no_such_object(&dir, &t.dn, self.now));
        }
        let Some(mut candidates) = dir.candidates(self.plan.source()) else {
            self.sent_keys = Some(Vec::new());
            return Ok(self.walk(&dir, 0, resp)?.map_or(Rest::Done, Rest::Walk));
        };
        for entry in candidates.by_ref() {
            if let Flow::Yield = self.examine(&dir, entry, resp)? {
                break;
            }
        }
        // Too long or too large for one hold: the rest of the candidates
        // are taken by name and examined a hold at a time.
        let region = self.region;
        let keys: Vec<Key> = candidates
            .filter(|e| region.takes(e))
            .map(|e| e.key.clone())
            .collect();
        Ok(match keys.is_empty() {
            true => Rest::Done,
            false => Rest::Named(keys, 0),
        })
    }

    /// Goes on with a lookup's candidates, by name.
    fn named_from(
        &mut self,
        dir: &Directory,
        keys: Vec<Key>,
        mut next: usize,
        resp: &mut Responder<'_>,
    ) -> Result<Rest, LdapResult> {
        while next < keys.len() {
            next += 1;
            let Some(entry) = dir.get(&keys[next - 1]) else {
                continue;
            };
            if let Flow::Yield = self.examine(dir, entry, resp)? {
                return Ok(Rest::Named(keys, next));
            }
        }
        Ok(Rest::Done)
    }

    /// Goes on with a walk over every entry: from where it stopped, or
    /// from the first slot if the table was rehashed since (the entries
    /// already sent are skipped).
    fn walk_on(
        &mut self,
        dir: &Directory,
        at: SlotCursor,
        resp: &mut Responder<'_>,
    ) -> Result<Rest, LdapResult> {
        if self.skip.is_none() {
            self.skip = Some(self.sent_keys.take().into_iter().flatten().collect());
        }
        let from = match dir.layout() == at.layout {
            true => at.slot,
            false => 0,
        };
        Ok(self.walk(dir, from, resp)?.map_or(Rest::Done, Rest::Walk))
    }

    /// Examines every entry from a slot of the table on, until they run
    /// out (`None`) or the hold ends (where to go on from).
    fn walk(
        &mut self,
        dir: &Directory,
        from: usize,
        resp: &mut Responder<'_>,
    ) -> Result<Option<SlotCursor>, LdapResult> {
        for (next, entry) in dir.slots_from(from) {
            if let Flow::Yield = self.examine(dir, entry, resp)? {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Examines one candidate, sending it if it matches.
    fn examine(
        &mut self,
        dir: &Directory,
        entry: &Entry,
        resp: &mut Responder<'_>,
    ) -> Result<Flow, LdapResult> {
        self.visit(dir, entry, resp)?;
        if resp.out.len() >= CHUNK_BYTES {
            return Ok(Flow::Yield);
        }
        // After every candidate: one can cost milliseconds (a filter of
        // thousands of terms against hundreds of values), and reading the
        // clock costs a hundredth of examining the cheapest.
        let now = Instant::now();
        self.progress.check_time(now)?;
        if now - self.held_since >= HOLD {
            return Ok(Flow::Yield);
        }
        Ok(Flow::Go)
    }

    fn visit(
        &mut self,
        dir: &Directory,
        entry: &Entry,
        resp: &mut Responder<'_>,
    ) -> Result<(), LdapResult> {
        self.note_container(dir, entry);
        if self.skip.as_ref().is_some_and(|s| s.contains(&entry.key))
            || !self.region.takes(entry)
            || !dir.alive(entry, self.now)
            || (entry.is(class::CONFERENCE) && !self.plan.conferences)
        {
            return Ok(());
        }
        let mut view = PersonView::new(dir, entry, self.now);
        view.owner_visible = self.rights.session.admin;
        if !self.plan.filter.matches(&view) {
            return Ok(());
        }
        if let Some(ttl) = self.sttl {
            self.found += 1;
            if self.rights.may_refresh(dir, entry) {
                // What was granted: `now` is older than the clock the
                // deadline was set by, and would round a second up.
                let ownership = self.rights.ownership;
                if let Some(granted) = refresh(self.store, dir, &view, ttl, ownership) {
                    view.ttl = Some(granted);
                }
                self.refreshed += 1;
            }
        }
        // A search that names its entries exactly (every refresh) never
        // asks: the person's sFlags is usually on its application, which
        // is a second lookup by name.
        if !self.exact && view.hidden() {
            return Ok(());
        }
        self.progress.check_size()?;
        ils::shape::send_entry(resp, self.plan, &view);
        self.progress.sent += 1;
        if let Some(sent) = &mut self.skip {
            sent.insert(entry.key.clone());
        } else if let Some(sent) = &mut self.sent_keys {
            sent.push(entry.key.clone());
        }
        Ok(())
    }

    /// Notes the application container above an entry, if the search
    /// takes containers in.
    fn note_container(&mut self, dir: &Directory, entry: &Entry) {
        if let Some(containers) = &mut self.containers
            && implicit_container(entry.parent_key())
            && !containers.contains_key(entry.parent_key())
            && dir.alive(entry, self.now)
            && let Ok(dn) = Dn::parse(&entry.dn())
        {
            containers.insert(entry.parent_key().to_vec(), dn.parent().to_bytes());
        }
    }

    /// The computed entries the search takes in, after the stored ones:
    /// the application containers met, and the monitor entry to a search
    /// from above it (from itself, it was answered before).
    fn send_computed(&mut self, resp: &mut Responder<'_>) -> Result<(), LdapResult> {
        if let Some(containers) = self.containers.take() {
            self.send_containers(containers, resp)?;
        }
        if self.region.takes_key(MONITOR_KEY, ADMIN_KEY) {
            let values = monitor_values(self.shared);
            self.send_computed_entry(resp, MONITOR_DN, &values)?;
        }
        Ok(())
    }

    fn send_containers(
        &mut self,
        mut containers: HashMap<Vec<u8>, Vec<u8>>,
        resp: &mut Responder<'_>,
    ) -> Result<(), LdapResult> {
        let now = self.now;
        {
            let dir = self.store.read();
            // An entry stored under a container's name is that entry, and
            // was examined as one.
            containers.retain(|key, _| live(&dir, key, now).is_none());
            if let Base::Entry(t) = &self.plan.base
                && implicit_container(&t.key)
                && !containers.contains_key(&t.key)
                && live(&dir, &t.key, now).is_none()
            {
                return Err(no_such_object(&dir, &t.dn, now));
            }
        }
        for (key, dn) in &containers {
            if self.region.takes_key(key, APPLICATIONS_KEY) {
                self.send_computed_entry(resp, dn, &container_values(dn))?;
            }
        }
        Ok(())
    }

    fn send_computed_entry(
        &mut self,
        resp: &mut Responder<'_>,
        dn: &[u8],
        values: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), LdapResult> {
        if self.plan.filter.matches(&VirtualValues(dn, values)) {
            self.progress.check_size()?;
            send_virtual(self.plan, resp, dn, values);
            self.progress.sent += 1;
        }
        Ok(())
    }

    /// The result of a search that ran to its end.
    fn result(&self) -> LdapResult {
        if self.sttl.is_some() && self.refreshed == 0 && self.found == 0 {
            // NetMeeting registers again only on noSuchObject; on success
            // it looks for the new TTL in an entry and, finding none,
            // would stay off the directory ([MS-TAIL] 4.2.2).
            return LdapResult::new(
                LdapResultCode::NoSuchObject,
                "nothing to refresh: register again",
            );
        }
        LdapResult::success()
    }
}

/// The `sttl` refresh of a matched entry (see [`Store::refresh`]) and of
/// the applications shown with it. Returns the seconds the entry has now,
/// if it is dynamic.
fn refresh(
    store: &Store,
    dir: &Directory,
    view: &PersonView<'_>,
    ttl: u32,
    ownership: Ownership,
) -> Option<u64> {
    for app in view.apps() {
        if app.person().is_none()
            && app.is(class::DYNAMIC)
            && same_owner(dir, app, view.entry, ownership)
        {
            store.set_ttl(app, ttl);
        }
    }
    view.entry
        .is(class::DYNAMIC)
        .then(|| store.refresh(dir, view.entry, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::filter::Filter;
    use crate::session::Session;
    use bytes::BytesMut;
    use ldap3_proto::proto::{LdapMsg, LdapOp};

    fn add_user(shared: &Shared, i: usize) {
        let session = Session::new("127.0.0.1:1".parse().unwrap());
        let mut out = BytesMut::new();
        let mut resp = Responder {
            msgid: 1,
            out: &mut out,
        };
        let dn = format!("cn=user{i},ou=Dynamic,o=Intranet");
        let attrs = vec![
            (
                b"objectClass".to_vec(),
                vec![b"rtPerson".to_vec(), b"dynamicObject".to_vec()],
            ),
            (b"cn".to_vec(), vec![format!("user{i}").into_bytes()]),
            (b"comment".to_vec(), vec![vec![b'x'; 200]]),
        ];
        crate::ops::add::add(shared, &session, dn.as_bytes(), attrs, &mut resp);
    }

    /// The DNs of the entries in a stream of responses.
    fn entry_dns(mut bytes: &[u8]) -> Vec<String> {
        let mut dns = Vec::new();
        while !bytes.is_empty() {
            let (rest, tag) = ldap3_lber::parse::Parser::new(64).parse(bytes).unwrap();
            if let LdapOp::SearchResultEntry(e) = LdapMsg::try_from(tag).unwrap().op {
                dns.push(e.dn);
            }
            bytes = rest;
        }
        dns
    }

    /// Lists every user with a filter all match, calling `between` with
    /// the number of the hold just ended and what was written so far;
    /// returns how many times each DN was sent, and how many holds it took.
    fn list_all(
        shared: &Shared,
        mut between: impl FnMut(usize, &[u8]),
    ) -> (HashMap<String, usize>, usize) {
        let mut out = BytesMut::new();
        let mut written = Vec::new();
        let mut holds = 0;
        let mut flush = |buf: &mut BytesMut| -> std::io::Result<()> {
            written.extend_from_slice(buf);
            buf.clear();
            holds += 1;
            between(holds, &written);
            Ok(())
        };
        let req = SearchRequest {
            base: b"ou=Dynamic,o=Intranet".to_vec(),
            scope: Scope::OneLevel,
            size_limit: 0,
            time_limit: 0,
            types_only: false,
            filter: Filter::Present(b"cn".to_vec()),
            attrs: vec![b"cn".to_vec(), b"comment".to_vec()],
        };
        let mut resp = Responder {
            msgid: 2,
            out: &mut out,
        };
        let session = Session::new("127.0.0.1:1".parse().unwrap());
        search(shared, &session, req, &mut resp, &mut flush);
        written.extend_from_slice(&out);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for dn in entry_dns(&written) {
            *seen.entry(dn.to_ascii_lowercase()).or_default() += 1;
        }
        (seen, holds)
    }

    #[test]
    fn a_long_attribute_list_answers_as_looking_through_it_would() {
        let shared = Shared::for_tests();
        add_user(&shared, 1);
        let mut names: Vec<Vec<u8>> = (0..30).map(|i| format!("no{i}").into_bytes()).collect();
        for n in [
            "comment",
            "CN",
            "*",
            "entryTTL",
            "sttl",
            "+",
            "1.1",
            "objectclass",
            "cn;x",
        ] {
            names.push(n.as_bytes().to_vec());
        }
        let req = SearchRequest {
            base: b"cn=user1,ou=Dynamic,o=Intranet".to_vec(),
            scope: Scope::Base,
            size_limit: 0,
            time_limit: 0,
            types_only: false,
            filter: Filter::Present(b"objectClass".to_vec()),
            attrs: names,
        };
        let mut plan = ils::search(req).unwrap();
        assert!(plan.picks.is_some());
        let send = |plan: &SearchPlan| {
            let dir = shared.store.read();
            let key = Dn::parse(b"cn=user1,ou=Dynamic,o=Intranet").unwrap().key();
            let view = PersonView::new(&dir, dir.get(&key).unwrap(), shared.store.now());
            let mut out = BytesMut::new();
            let mut resp = Responder {
                msgid: 1,
                out: &mut out,
            };
            ils::shape::send_entry(&mut resp, plan, &view);
            out
        };
        let indexed = send(&plan);
        plan.picks = None;
        assert_eq!(indexed, send(&plan));
        // Each attribute once, under the first name asked for it.
        let (_, tag) = ldap3_lber::parse::Parser::new(64).parse(&indexed).unwrap();
        let LdapOp::SearchResultEntry(entry) = LdapMsg::try_from(tag).unwrap().op else {
            panic!("not an entry");
        };
        let names: Vec<&str> = entry.attributes.iter().map(|a| a.atype.as_str()).collect();
        assert_eq!(names, ["comment", "CN", "objectClass", "entryTTL", "sttl"]);
    }

    #[test]
    fn a_walk_over_a_table_rehashed_between_holds_sends_each_entry_once() {
        let shared = Shared::for_tests();
        let users = 5000;
        (0..users).for_each(|i| add_user(&shared, i));
        let mut added = users;
        let (seen, holds) = list_all(&shared, |hold, _| {
            // Between the first two holds, enough users register to
            // rehash the table.
            if hold == 1 {
                let layout = shared.store.read().layout();
                while shared.store.read().layout() == layout {
                    add_user(&shared, added);
                    added += 1;
                }
            }
        });
        assert!(holds >= 2, "one hold: nothing was rehashed in between");
        for i in 0..users {
            let dn = format!("cn=user{i},ou=dynamic,o=intranet");
            assert_eq!(seen.get(&dn), Some(&1), "{dn}");
        }
        assert!(seen.values().all(|&n| n == 1), "an entry sent twice");
    }

    #[test]
    fn users_registering_again_between_holds_are_sent_once() {
        let shared = Shared::for_tests();
        (0..5000).for_each(|i| add_user(&shared, i));
        let layout = shared.store.read().layout();
        let (seen, holds) = list_all(&shared, |hold, written| {
            // Users not yet reached leave, which frees slots ahead of the
            // walk; then those already sent delete and add themselves
            // again, as GnomeMeeting does, and may land in those slots.
            if hold == 1 {
                let delete = |dn: &str| {
                    let mut out = BytesMut::new();
                    let mut resp = Responder {
                        msgid: 3,
                        out: &mut out,
                    };
                    let session = Session::new("127.0.0.1:1".parse().unwrap());
                    crate::ops::delete::delete(&shared, &session, dn.as_bytes(), &mut resp);
                };
                let sent = entry_dns(written);
                for i in 0..5000 {
                    let dn = format!("cn=user{i},ou=Dynamic,o=Intranet");
                    if !sent.contains(&dn) && i % 2 == 0 {
                        delete(&dn);
                    }
                }
                for dn in sent {
                    delete(&dn);
                    let i: usize = dn[7..dn.find(',').unwrap()].parse().unwrap();
                    add_user(&shared, i);
                }
            }
        });
        assert!(holds >= 2);
        assert_eq!(shared.store.read().layout(), layout, "not rehashed");
        assert!(seen.values().all(|&n| n == 1), "an entry sent twice");
    }
}
