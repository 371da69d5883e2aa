//! Search (RFC 4511 section 4.5, [MS-TAIL] 3.5.6, 3.5.7, 3.5.11, 4.2, 4.3):
//! the root DSE, lookups by name through the index, scans, the `sttl`
//! refresh, and results under the names the client asked for.
//!
//! Entries are examined and encoded while the read lock is held, for at
//! most [`HOLD`] and [`CHUNK_BYTES`] of output at a time, and the output
//! is written between holds. A walk over every entry goes on from the
//! table slot where its last hold ended; a lookup by name takes the names
//! of the candidates it has not reached. A client listing a million users,
//! or sending a filter of thousands of terms, neither holds writers back
//! for longer than a hold nor needs the whole answer in memory, and one
//! that stops reading holds at most one chunk.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ldap3_proto::LdapResultCode;

use crate::directory::dn::Dn;
use crate::directory::entry::{Entry, Key, class};
use crate::directory::schema::{Attr, attr};
use crate::directory::store::{Directory, SlotCursor, Store};
use crate::ils::implicit_container;
use crate::ils::{self, APPLICATIONS_KEY, Base, PersonView, Requested, SearchPlan, Want};
use crate::ops::computed::{
    ADMIN_KEY, MONITOR_DN, MONITOR_KEY, VirtualValues, container_values, monitor_values, root_dse,
    send_virtual, takes_in_containers, virtual_entry,
};
use crate::ops::entries::{live, no_such_object};
use crate::protocol::ber::Encoder;
use crate::protocol::{LdapResult, Responder, Scope, SearchRequest, tag};
use crate::session::{Flush, Shared};

/// Output encoded before it is written: what one search holds.
const CHUNK_BYTES: usize = 256 * 1024;
/// The longest hold of the read lock by one search: a longer search lets
/// writers in between holds, and with them the readers queued behind
/// them, so that no search, however costly its filter, stalls the server.
const HOLD: Duration = Duration::from_millis(2);

pub fn search(shared: &Shared, req: SearchRequest, resp: &mut Responder<'_>, flush: Flush<'_>) {
    let result = match ils::search(req) {
        Ok(plan) => run(shared, plan, resp, flush),
        Err(e) => e,
    };
    resp.result(tag::SEARCH_DONE, &result);
}

/// How the search is going: limits and counts.
struct Progress {
    sent: usize,
    size_limit: usize,
    deadline: Option<Instant>,
}

impl Progress {
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

fn run(
    shared: &Shared,
    plan: SearchPlan,
    resp: &mut Responder<'_>,
    flush: Flush<'_>,
) -> LdapResult {
    let (size_limit, time_limit) = {
        let limits = shared.limits.read();
        let size = smallest_nonzero(plan.size_limit as u64, limits.size_limit as u64) as usize;
        (size, smallest_nonzero(plan.time_limit, limits.time_limit))
    };
    let progress = Progress {
        sent: 0,
        size_limit,
        // A limit beyond what the clock can count is no limit.
        deadline: (time_limit > 0)
            .then(|| Instant::now().checked_add(Duration::from_secs(time_limit)))
            .flatten(),
    };
    if let Base::RootDse = plan.base {
        root_dse(&plan, resp);
        return LdapResult::success();
    }
    let store = &shared.store;
    if let Base::Entry(t) = &plan.base
        && t.key == MONITOR_KEY
    {
        if matches!(plan.scope, Scope::Base | Scope::Subtree) {
            let values = monitor_values(store);
            virtual_entry(&plan, resp, MONITOR_DN, &values);
        }
        return LdapResult::success();
    }
    let now = store.now();
    let mut plan = plan;
    if let Some((name, literal)) = plan.literal.take() {
        // A name with `%` or `*` that a person or conference holds names
        // that entry.
        let dir = store.read();
        let mut holders = match name.0 == attr::CN {
            true => dir.by_cn(&name.1),
            false => dir.by_uid(&name.1),
        };
        let holds =
            |e: &Entry| (e.is(class::PERSON) || e.is(class::CONFERENCE)) && dir.alive(e, now);
        if holders.any(holds) {
            plan.exact_name = Some(name);
            plan.filter = literal;
        }
    }
    let sttl = plan
        .sttl
        .map(|minutes| store.ttl.clamp(minutes.saturating_mul(60)));
    let io_error = |_| LdapResult::new(LdapResultCode::Other, "client went away");
    let mut scan = Scan {
        plan: &plan,
        base_key: match &plan.base {
            Base::Entry(t) => Some(t.key.as_slice()),
            _ => None,
        },
        sttl,
        // A DN names its entry as exactly as a name in the filter does.
        exact: plan.exact_name.is_some()
            || matches!((&plan.base, plan.scope), (Base::Entry(_), Scope::Base)),
        now,
        progress,
        refreshed: 0,
        held_since: Instant::now(),
        sent_keys: None,
        skip: None,
        containers: None,
    };
    if takes_in_containers(&plan) {
        scan.containers = Some(HashMap::new());
    }
    // Where the first hold of the lock left the candidates: the names of
    // those not yet examined, for a lookup, or the slot a walk over every
    // entry goes on from.
    let mut pending: Vec<Key> = Vec::new();
    let mut cursor: Option<SlotCursor> = None;
    {
        let dir = store.read();
        scan.held_since = Instant::now();
        // The root (an empty key): a one-level or subtree search of
        // everything.
        if let Base::Entry(t) = &plan.base
            && !t.key.is_empty()
            && live(&dir, &t.key, now).is_none()
            && !implicit_container(&t.key)
        {
            return no_such_object(&dir, &t.dn, now);
        }
        // An application container is found through the entries below
        // it: a search from one walks every entry.
        let lookup = plan.scope == Scope::OneLevel
            || !matches!(&plan.base, Base::Entry(t) if implicit_container(&t.key));
        let mut named: Box<dyn Iterator<Item = &Entry>> =
            match (&plan.base, plan.scope, &plan.exact_name) {
                (Base::Entry(t), Scope::Base, _) if lookup => Box::new(dir.get(&t.key).into_iter()),
                (_, _, Some((a, name))) if lookup && *a == attr::CN => Box::new(dir.by_cn(name)),
                (_, _, Some((_, name))) if lookup => Box::new(dir.by_uid(name)),
                _ => {
                    scan.sent_keys = Some(Vec::new());
                    match scan.walk(store, &dir, 0, resp) {
                        Ok(at) => cursor = at,
                        Err(e) => return e,
                    }
                    Box::new(std::iter::empty())
                }
            };
        for entry in named.by_ref() {
            match scan.examine(store, &dir, entry, resp) {
                Ok(Flow::Go) => {}
                Ok(Flow::Yield) => break,
                // A limit was reached: what was found so far is sent.
                Err(e) => return e,
            }
        }
        // Too long or too large for one hold: the rest of the candidates
        // are taken by name and examined a hold at a time.
        pending.extend(
            named
                .filter(|e| selected(&plan, scan.base_key, e))
                .map(|e| e.key.clone()),
        );
    }
    let mut next = 0;
    while next < pending.len() {
        if let Err(e) = flush(resp.out) {
            return io_error(e);
        }
        let dir = store.read();
        scan.held_since = Instant::now();
        while let Some(key) = pending.get(next) {
            next += 1;
            let Some(entry) = dir.get(key) else {
                continue;
            };
            match scan.examine(store, &dir, entry, resp) {
                Ok(Flow::Go) => {}
                Ok(Flow::Yield) => break,
                Err(e) => return e,
            }
        }
    }
    while let Some(at) = cursor {
        if let Err(e) = flush(resp.out) {
            return io_error(e);
        }
        if scan.skip.is_none() {
            scan.skip = Some(scan.sent_keys.take().into_iter().flatten().collect());
        }
        let dir = store.read();
        scan.held_since = Instant::now();
        // Rehashed since the last hold: the entries are walked again from
        // the first slot (those already sent are skipped).
        let from = match dir.layout() == at.layout {
            true => at.slot,
            false => 0,
        };
        cursor = match scan.walk(store, &dir, from, resp) {
            Ok(at) => at,
            Err(e) => return e,
        };
    }
    if let Some(mut containers) = scan.containers.take() {
        let dir = store.read();
        // An entry stored under a container's name is that entry, and was
        // examined as one.
        containers.retain(|key, _| live(&dir, key, now).is_none());
        if let Base::Entry(t) = &plan.base
            && implicit_container(&t.key)
            && !containers.contains_key(&t.key)
            && live(&dir, &t.key, now).is_none()
        {
            return no_such_object(&dir, &t.dn, now);
        }
        drop(dir);
        for (key, dn) in &containers {
            let values = container_values(dn);
            if selected_key(&plan, scan.base_key, key, APPLICATIONS_KEY)
                && plan.filter.matches(&VirtualValues(dn, &values))
            {
                if let Err(e) = scan.progress.check_size() {
                    return e;
                }
                send_virtual(&plan, resp, dn, &values);
                scan.progress.sent += 1;
            }
        }
    }
    // The monitor entry, to a search from above it whose scope takes it
    // in (from itself, it was answered above).
    if selected_key(&plan, scan.base_key, MONITOR_KEY, ADMIN_KEY) {
        let values = monitor_values(store);
        if plan.filter.matches(&VirtualValues(MONITOR_DN, &values)) {
            if let Err(e) = scan.progress.check_size() {
                return e;
            }
            send_virtual(&plan, resp, MONITOR_DN, &values);
            scan.progress.sent += 1;
        }
    }
    if sttl.is_some() && scan.refreshed == 0 {
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

/// One search's walk over its candidates, which can stop at the end of a
/// hold of the read lock and go on in the next.
struct Scan<'p> {
    plan: &'p SearchPlan,
    base_key: Option<&'p [u8]>,
    sttl: Option<u32>,
    exact: bool,
    now: u64,
    progress: Progress,
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

impl Scan<'_> {
    /// Examines every entry from a slot of the table on, until they run
    /// out (`None`) or the hold ends (where to go on from).
    fn walk(
        &mut self,
        store: &Store,
        dir: &Directory,
        from: usize,
        resp: &mut Responder<'_>,
    ) -> Result<Option<SlotCursor>, LdapResult> {
        for (next, entry) in dir.slots_from(from) {
            if let Flow::Yield = self.examine(store, dir, entry, resp)? {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Examines one candidate, sending it if it matches.
    fn examine(
        &mut self,
        store: &Store,
        dir: &Directory,
        entry: &Entry,
        resp: &mut Responder<'_>,
    ) -> Result<Flow, LdapResult> {
        self.visit(store, dir, entry, resp)?;
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
        store: &Store,
        dir: &Directory,
        entry: &Entry,
        resp: &mut Responder<'_>,
    ) -> Result<(), LdapResult> {
        let plan = self.plan;
        if let Some(containers) = &mut self.containers
            && implicit_container(entry.parent_key())
            && !containers.contains_key(entry.parent_key())
            && dir.alive(entry, self.now)
            && let Ok(dn) = Dn::parse(&entry.dn())
        {
            containers.insert(entry.parent_key().to_vec(), dn.parent().to_bytes());
        }
        if self.skip.as_ref().is_some_and(|s| s.contains(&entry.key)) {
            return Ok(());
        }
        if !selected(plan, self.base_key, entry)
            || !dir.alive(entry, self.now)
            || (entry.is(class::CONFERENCE) && !plan.conferences)
        {
            return Ok(());
        }
        let mut view = PersonView::new(dir, entry, self.now);
        if !plan.filter.matches(&view) {
            return Ok(());
        }
        if let Some(ttl) = self.sttl {
            // What was granted: `now` is older than the clock the
            // deadline was set by, and would round a second up.
            if let Some(granted) = refresh(store, dir, &view, ttl) {
                view.ttl = Some(granted);
            }
            self.refreshed += 1;
        }
        // A search that names its entries exactly (every refresh) never
        // asks: the person's sFlags is usually on its application, which
        // is a second lookup by name.
        if !self.exact && view.hidden() {
            return Ok(());
        }
        self.progress.check_size()?;
        send_entry(resp, plan, &view);
        self.progress.sent += 1;
        if let Some(sent) = &mut self.skip {
            sent.insert(entry.key.clone());
        } else if let Some(sent) = &mut self.sent_keys {
            sent.push(entry.key.clone());
        }
        Ok(())
    }
}

/// Whether an entry is inside the search's base and scope.
fn selected(plan: &SearchPlan, base_key: Option<&[u8]>, entry: &Entry) -> bool {
    match &plan.base {
        Base::Class(bit) => entry.is(*bit),
        _ => selected_key(plan, base_key, &entry.key, entry.parent_key()),
    }
}

/// Whether the entry of a key is inside the search's base and scope, for
/// a base that is an entry.
fn selected_key(plan: &SearchPlan, base_key: Option<&[u8]>, key: &[u8], parent_key: &[u8]) -> bool {
    match (&plan.base, base_key) {
        (Base::Class(_), _) => false,
        (_, Some(base)) => match plan.scope {
            Scope::Base => key == base,
            Scope::OneLevel => parent_key == base,
            Scope::Subtree | Scope::Children => {
                let below = (base.is_empty() && !key.is_empty())
                    || (key.len() > base.len()
                        && key.ends_with(base)
                        && key[key.len() - base.len() - 1] == b',');
                below || (key == base && plan.scope == Scope::Subtree)
            }
        },
        _ => false,
    }
}

/// The `sttl` refresh of a matched entry (see [`Store::refresh`]) and of
/// the applications shown with it. Returns the seconds the entry has now,
/// if it is dynamic.
fn refresh(store: &Store, dir: &Directory, view: &PersonView<'_>, ttl: u32) -> Option<u64> {
    for app in view.apps() {
        if app.owner().is_none() && app.is(class::DYNAMIC) {
            store.set_ttl(app, ttl);
        }
    }
    view.entry
        .is(class::DYNAMIC)
        .then(|| store.refresh(dir, view.entry, ttl))
}

/// Writes one SearchResultEntry with the attributes the client asked for,
/// in its order and under its names.
fn send_entry(resp: &mut Responder<'_>, plan: &SearchPlan, view: &PersonView<'_>) {
    // Written straight into the output: collecting the attributes first
    // cost three allocations for each one sent.
    let mut shown = Vec::new();
    resp.entry_with(&view.entry.dn(), |enc| match &plan.picks {
        None => {
            for requested in &plan.attrs {
                select(enc, &mut shown, plan, view, requested);
            }
        }
        Some(picks) => {
            // A long list: the names the entry's attributes answer, with
            // those no stored attribute does, in the order asked for.
            let mut at = picks.always.clone();
            at.extend(
                view.attributes()
                    .into_iter()
                    .filter_map(|a| picks.by_attr.get(&a.to_owned())),
            );
            at.sort_unstable();
            at.dedup();
            for i in at {
                select(enc, &mut shown, plan, view, &plan.attrs[i]);
            }
        }
    });
}

/// The names of the attributes an entry's answer has so far: each is sent
/// once, under the first name that asked for it.
type Shown<'p> = Vec<Cow<'p, [u8]>>;

/// Adds to an entry's answer what one name asked for shows of it.
fn select<'p>(
    enc: &mut Encoder<'_>,
    shown: &mut Shown<'p>,
    plan: &SearchPlan,
    view: &PersonView<'_>,
    Requested { name, want }: &'p Requested,
) {
    match want {
        Want::Attr(a) => push_attr(enc, shown, plan, view, Cow::Borrowed(name), a),
        Want::Sttl => {
            if let Some(ttl) = view.ttl
                && !shown.iter().any(|n| n.eq_ignore_ascii_case(name))
            {
                let minutes = ttl.div_ceil(60).to_string();
                let values: &[&[u8]] = match plan.types_only {
                    true => &[],
                    false => &[minutes.as_bytes()],
                };
                enc.attribute(name, values.iter().copied());
                shown.push(Cow::Borrowed(name));
            }
        }
        Want::AllUser => {
            for a in view.attributes() {
                let a = a.to_owned();
                let name = Cow::Owned(a.message_name().to_vec());
                push_attr(enc, shown, plan, view, name, &a);
            }
        }
        Want::AllOperational => push_attr(
            enc,
            shown,
            plan,
            view,
            Cow::Borrowed(attr::ENTRY_TTL.name()),
            &attr::ENTRY_TTL,
        ),
    }
}

/// Adds an attribute of the view to a result under `name`, once, if it
/// has values.
fn push_attr<'p>(
    enc: &mut Encoder<'_>,
    shown: &mut Shown<'p>,
    plan: &SearchPlan,
    view: &PersonView<'_>,
    name: Cow<'p, [u8]>,
    a: &Attr,
) {
    if shown.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
        return;
    }
    let mark = enc.mark();
    enc.start(0x30);
    enc.octets(&name);
    enc.start(0x31);
    let mut any = false;
    view.for_each_value(a, &mut |v| {
        any = true;
        if !plan.types_only {
            enc.octets(v);
        }
    });
    enc.end();
    enc.end();
    if any {
        shown.push(name);
    } else {
        enc.undo(mark);
    }
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
        search(shared, req, &mut resp, &mut flush);
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
            send_entry(&mut resp, plan, &view);
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
                    crate::ops::delete::delete(&shared, dn.as_bytes(), &mut resp);
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
