//! "Who is online": the visible users and the conferences, as an HTML
//! page that needs no JavaScript (`/`) and as JSON (`/users.json`).
//!
//! Users are read through the dialect's merged view, as a search reads
//! them: a person with its applications' attributes, hidden ones (sFlags
//! 0) left out, found with the same matching as an ILS find. Every value
//! comes from a client, so every value is escaped where it is written;
//! values that are not UTF-8 are read as Windows-1252, as NetMeeting
//! writes them. The store is read a slice of its slots at a time, so
//! that a page of a large directory never holds the lock for long. Runs
//! on the HTTP workers.

use std::fmt::Write;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;

use encoding_rs::WINDOWS_1252;

use super::Response;
use crate::directory::entry::{Entry, Key, class};
use crate::directory::schema::{Attr, attr};
use crate::directory::store::{Directory, SlotCursor, Store};
use crate::ils::ip_address_of;
use crate::ils::search::find_filter;
use crate::ils::view::PersonView;
use crate::session::Shared;

/// Users on one page.
pub const PAGE_SIZE: usize = 50;

/// Users in one answer of `/users.json`.
pub const JSON_PAGE_SIZE: usize = 1000;

/// The most conferences a page lists: any client can make them.
pub const MAX_CONFERENCES: usize = 200;

/// Slots of the store read per hold of its read lock.
const SLICE: usize = 1024;

/// One visible user.
#[derive(Debug, Clone)]
pub struct User {
    pub cn: String,
    pub name: String,
    pub email: String,
    pub location: String,
    pub comment: String,
    pub application: String,
    pub audio: bool,
    pub video: bool,
    pub in_call: bool,
    pub online_secs: u64,
    pub left_secs: Option<u64>,
    pub address: Option<String>,
}

/// One conference.
#[derive(Debug, Clone)]
pub struct Conference {
    pub name: String,
    pub description: String,
    pub originator: String,
    pub attendees: String,
    pub left_secs: Option<u64>,
}

/// What a page shows.
pub struct Listing {
    /// The users of the page asked for, sorted.
    pub users: Vec<User>,
    /// How many users were found, on every page.
    pub found: usize,
    /// The page shown (from 1) and how many there are.
    pub page: usize,
    pub pages: usize,
    /// The conferences, the first [`MAX_CONFERENCES`] by name.
    pub conferences: Vec<Conference>,
    /// How many conferences there are.
    pub conference_count: usize,
    /// Every visible user, found or not.
    pub online: usize,
}

/// A value as text: UTF-8, or else Windows-1252.
fn text(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) => s.to_string(),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(v).0.into_owned(),
    }
}

fn first(view: &PersonView<'_>, a: &Attr) -> String {
    let mut out = None;
    view.for_each_value(a, &mut |v| {
        if out.is_none() {
            out = Some(text(v));
        }
    });
    out.unwrap_or_default()
}

fn flag(view: &PersonView<'_>, a: &Attr) -> bool {
    first(view, a).trim() == "1"
}

/// The name a user is shown by: given name and surname, or else the cn.
fn display_name(view: &PersonView<'_>) -> String {
    let full = [first(view, &attr::GIVEN_NAME), first(view, &attr::SURNAME)]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match full.is_empty() {
        true => first(view, &attr::CN),
        false => full,
    }
}

fn user(view: &PersonView<'_>, now_secs: u64, addresses: bool) -> User {
    let cn = first(view, &attr::CN);
    let mail = first(view, &attr::MAIL);
    let application = [
        first(view, &attr::APP_NAME),
        first(view, &attr::APPLICATION_ID),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_default();
    let address = addresses
        .then(|| {
            let mut found = None;
            view.for_each_value(&attr::IP_ADDRESS, &mut |v| {
                found = found
                    .take()
                    .or_else(|| ip_address_of(v).map(|ip: Ipv4Addr| ip.to_string()));
            });
            found
        })
        .flatten();
    User {
        name: display_name(view),
        email: if mail.is_empty() { cn.clone() } else { mail },
        cn,
        location: first(view, &attr::LOCATION),
        comment: first(view, &attr::COMMENT),
        application,
        audio: flag(view, &attr::ILSA32833566),
        video: flag(view, &attr::ILSA32964638),
        in_call: flag(view, &attr::ILSA26214430),
        online_secs: now_secs.saturating_sub(u64::from(view.entry.created)),
        left_secs: view.ttl,
        address,
    }
}

fn conference(dir: &Directory, entry: &Entry, now: u64) -> Conference {
    let value = |a: &Attr| entry.attrs.first(a).map(text).unwrap_or_default();
    let name = [value(&attr::UID), value(&attr::CN)]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    Conference {
        name,
        description: value(&attr::GENERAL_DESCRIPTION),
        originator: value(&attr::ORIGINATOR),
        attendees: value(&attr::ATTENDEES_COUNT),
        left_secs: Store::ttl_left(dir, entry, now),
    }
}

/// How a listing is asked for: `q` (a find, `%` for any text), `page`
/// (from 1), `sort` (`name` or `-name`).
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub find: String,
    pub page: usize,
    pub descending: bool,
}

impl Query {
    pub fn parse(query: &str) -> Query {
        let mut q = Query {
            page: 1,
            ..Query::default()
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "q" => q.find = v.trim().chars().take(256).collect(),
                "page" => q.page = v.parse().unwrap_or(1).max(1),
                "sort" => q.descending = v == "-name",
                _ => {}
            }
        }
        q
    }
}

/// The display name a user is sorted by, in lower case.
fn sort_name(view: &PersonView<'_>) -> String {
    display_name(view).to_lowercase()
}

/// The page `query` asks for, of `page_size` users, and the counts.
///
/// The store is walked a slice at a time, keeping for each user found
/// only its sort name and its key; the page's users are then built from
/// their entries. So what a listing holds is some tens of bytes a user
/// found, whatever the users carry.
pub fn listing(shared: &Shared, query: &Query, addresses: bool, page_size: usize) -> Listing {
    let store = &shared.store;
    let filter = (!query.find.is_empty()).then(|| find_filter(query.find.as_bytes()));
    let mut found: Vec<(String, Key)> = Vec::new();
    let mut conferences = Vec::new();
    let mut conference_count = 0;
    let mut online = 0;
    // The entries met, by the hash of their key: when the table is
    // rehashed between two slices the walk starts again from the first
    // slot, and what was met is not met twice (as the state file does).
    let mut met = std::collections::HashSet::new();
    let mut layout = None;
    let mut restarts = 0;
    let mut from = 0;
    loop {
        let dir = store.read();
        let now = store.now();
        // A directory rehashed at every slice (a flood of registrations)
        // is walked again at most a few times; what moved then is missed
        // for this page.
        if layout.is_some_and(|l| l != dir.layout()) && restarts < 3 {
            from = 0;
            restarts += 1;
        }
        layout = Some(dir.layout());
        let hasher = dir.key_hasher();
        let mut next = None;
        for (i, (SlotCursor { slot, .. }, entry)) in dir.slots_from(from).enumerate() {
            if dir.alive(entry, now) && met.insert(hasher.hash_one(&*entry.key)) {
                if entry.is(class::CONFERENCE) {
                    conference_count += 1;
                    conferences.push(conference(&dir, entry, now));
                    // Kept to the first by name as they come.
                    if conferences.len() > 2 * MAX_CONFERENCES {
                        conferences.sort_by_cached_key(|c| c.name.to_lowercase());
                        conferences.truncate(MAX_CONFERENCES);
                    }
                }
                if entry.is(class::PERSON) {
                    let view = PersonView::new(&dir, entry, now);
                    if !view.hidden() {
                        online += 1;
                        if filter.as_ref().is_none_or(|f| f.matches(&view)) {
                            found.push((sort_name(&view), entry.key.clone()));
                        }
                    }
                }
            }
            // `slot` is where the walk goes on.
            if i + 1 == SLICE {
                next = Some(slot);
                break;
            }
        }
        drop(dir);
        match next {
            Some(slot) => from = slot,
            None => break,
        }
    }
    found.sort_unstable();
    if query.descending {
        found.reverse();
    }
    conferences.sort_by_cached_key(|c| c.name.to_lowercase());
    conferences.truncate(MAX_CONFERENCES);
    let pages = found.len().div_ceil(page_size).max(1);
    let page = query.page.min(pages);
    let users = {
        let dir = store.read();
        let now = store.now();
        found
            .iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .filter_map(|(_, key)| {
                // Gone since the walk: left out of the page.
                let entry = dir.get(key).filter(|e| dir.alive(e, now))?;
                Some(user(
                    &PersonView::new(&dir, entry, now),
                    now / 1000,
                    addresses,
                ))
            })
            .collect()
    };
    Listing {
        users,
        found: found.len(),
        page,
        pages,
        conferences,
        conference_count,
        online,
    }
}

/// `s` with the characters HTML gives meaning to escaped, for text and
/// for quoted attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls other than white space have no business in a page.
            c if c.is_control() && !matches!(c, '\t' | '\n') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `3 h 5 min`, `42 s`.
fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72em;padding:0 1em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #ddd;vertical-align:top}\
th{background:#f3f3f3}form{margin:1em 0}input[type=search]{width:16em;max-width:60%}\
.small{color:#666;font-size:.9em}nav a{margin-right:1em}\
@media (max-width:40em){table,tbody,tr,td{display:block}thead{display:none}\
tr{border-bottom:1px solid #ccc;padding:.4em 0}td{border:0;padding:.1em 0}}";

fn link(query: &Query, page: usize, descending: bool) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if !query.find.is_empty() {
        s.append_pair("q", &query.find);
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    if descending {
        s.append_pair("sort", "-name");
    }
    let q = s.finish();
    if q.is_empty() {
        "/".into()
    } else {
        format!("/?{}", escape(&q))
    }
}

/// The page.
pub fn html(shared: &Shared, addresses: bool, query: &str) -> Response {
    let query = Query::parse(query);
    let listing = listing(shared, &query, addresses, PAGE_SIZE);
    let (page, pages) = (listing.page, listing.pages);
    let shown = listing.users.iter();
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Who is online</title><style>{STYLE}</style></head><body>\
<h1>Who is online</h1><p id=\"counts\">{} online, {} conference(s)",
        listing.online, listing.conference_count
    );
    if !query.find.is_empty() {
        let _ = write!(h, "; {} found", listing.found);
    }
    let _ = write!(
        h,
        ".</p><form method=\"get\" action=\"/\"><label>Find <input type=\"search\" name=\"q\" value=\"{}\" \
placeholder=\"name or e-mail, % for any text\"></label> <button type=\"submit\">Find</button></form>",
        escape(&query.find)
    );
    let arrow = if query.descending {
        "&#9650;"
    } else {
        "&#9660;"
    };
    let _ = write!(
        h,
        "<table id=\"users\"><thead><tr><th><a href=\"{}\">Name {arrow}</a></th><th>E-mail</th><th>Location</th>\
<th>Comment</th><th>Application</th><th>Online</th><th>Time left</th>{}</tr></thead><tbody>",
        link(&query, 1, !query.descending),
        if addresses { "<th>Address</th>" } else { "" }
    );
    for u in shown {
        let mut media = Vec::new();
        if u.audio {
            media.push("audio");
        }
        if u.video {
            media.push("video");
        }
        if u.in_call {
            media.push("in a call");
        }
        let _ = write!(
            h,
            "<tr class=\"user\"><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td>",
            escape(&u.name),
            escape(&u.email),
            escape(&u.location),
            escape(&u.comment),
            escape(&u.application),
            if media.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"small\">({})</span>", media.join(", "))
            },
            duration(u.online_secs),
            u.left_secs.map(duration).unwrap_or_else(|| "-".into()),
        );
        if addresses {
            let _ = write!(h, "<td>{}</td>", escape(u.address.as_deref().unwrap_or("")));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    if pages > 1 {
        h.push_str("<nav>");
        if page > 1 {
            let _ = write!(
                h,
                "<a rel=\"prev\" href=\"{}\">Previous</a>",
                link(&query, page - 1, query.descending)
            );
        }
        let _ = write!(h, "<span>Page {page} of {pages}</span>");
        if page < pages {
            let _ = write!(
                h,
                " <a rel=\"next\" href=\"{}\">Next</a>",
                link(&query, page + 1, query.descending)
            );
        }
        h.push_str("</nav>");
    }
    if !listing.conferences.is_empty() {
        h.push_str("<h2>Conferences</h2><table id=\"conferences\"><thead><tr><th>Name</th><th>Description</th>\
<th>Originator</th><th>Attendees</th><th>Time left</th></tr></thead><tbody>");
        for c in &listing.conferences {
            let _ = write!(
                h,
                "<tr class=\"conference\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.name),
                escape(&c.description),
                escape(&c.originator),
                escape(&c.attendees),
                c.left_secs.map(duration).unwrap_or_else(|| "-".into()),
            );
        }
        h.push_str("</tbody></table>");
        if listing.conference_count > listing.conferences.len() {
            let _ = write!(
                h,
                "<p class=\"small\">The first {} of {} conferences.</p>",
                listing.conferences.len(),
                listing.conference_count
            );
        }
    }
    h.push_str("<p class=\"small\">ilsd ");
    h.push_str(env!("CARGO_PKG_VERSION"));
    h.push_str("</p></body></html>\n");
    Response {
        status: 200,
        reason: "OK",
        content_type: "text/html; charset=utf-8",
        body: h.into_bytes(),
    }
}

/// The same listing for scripts, a thousand users an answer (`page`
/// from 1), with the conferences and the counts.
pub fn json(shared: &Shared, addresses: bool, query: &str) -> Response {
    let query = Query::parse(query);
    let listing = listing(shared, &query, addresses, JSON_PAGE_SIZE);
    let users: Vec<serde_json::Value> = listing
        .users
        .iter()
        .map(|u| {
            let mut v = serde_json::json!({
                "cn": u.cn,
                "name": u.name,
                "email": u.email,
                "location": u.location,
                "comment": u.comment,
                "application": u.application,
                "audio": u.audio,
                "video": u.video,
                "in_call": u.in_call,
                "online_seconds": u.online_secs,
                "ttl_seconds": u.left_secs,
            });
            if addresses {
                v["address"] = serde_json::json!(u.address);
            }
            v
        })
        .collect();
    let conferences: Vec<serde_json::Value> = listing
        .conferences
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "description": c.description,
                "originator": c.originator,
                "attendees": c.attendees,
                "ttl_seconds": c.left_secs,
            })
        })
        .collect();
    let body = serde_json::json!({
        "online": listing.online,
        "found": listing.found,
        "page": listing.page,
        "pages": listing.pages,
        "conference_count": listing.conference_count,
        "users": users,
        "conferences": conferences,
    });
    Response {
        status: 200,
        reason: "OK",
        content_type: "application/json",
        body: body.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(escape("a\u{1b}b"), "a\u{FFFD}b");
    }

    #[test]
    fn windows_1252_bytes_are_read_as_such() {
        assert_eq!(text(b"Ren\xe9e M\xfcller \x80"), "Renée Müller €");
        assert_eq!(text("Renée".as_bytes()), "Renée");
    }

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse("q=al%25&page=3&sort=-name");
        assert_eq!((q.find.as_str(), q.page, q.descending), ("al%", 3, true));
        let q = Query::parse("page=0&q=+a+b+");
        assert_eq!((q.find.as_str(), q.page), ("a b", 1));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!(duration(2 * 86_400 + 3600), "2 d 1 h");
    }
}
