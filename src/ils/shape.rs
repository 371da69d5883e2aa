//! What an entry's answer shows: the attributes a client asked for, in
//! its order and under its names, `sttl` in minutes, written straight
//! into the response with the protocol's encoder. Runs on the worker
//! threads, under the store's read lock.

use std::borrow::Cow;

use super::search::{Requested, SearchPlan, Want};
use super::view::PersonView;
use crate::directory::schema::{Attr, attr};
use crate::protocol::{Encoder, Responder};

/// Writes one SearchResultEntry with the attributes the client asked for,
/// in its order and under its names.
pub fn send_entry(resp: &mut Responder<'_>, plan: &SearchPlan, view: &PersonView<'_>) {
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
        Want::AllOperational => {
            // ilsOwner shows only where the view lets it (to administrators).
            for a in &OPERATIONAL {
                push_attr(enc, shown, plan, view, Cow::Borrowed(a.name()), a);
            }
        }
    }
}

/// The operational attributes `+` asks for.
static OPERATIONAL: [Attr; 2] = [attr::ENTRY_TTL, attr::ILS_OWNER];

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
