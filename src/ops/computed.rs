//! The entries the server computes rather than stores: the root DSE
//! (RFC 4512 section 5.1), cn=Monitor, and the application containers
//! (`appName=APP,ou=Applications,o=Intranet`) that exist through the
//! entries below them. Search and Compare both read them. Runs on the
//! worker threads.

use crate::directory::dn::Dn;
use crate::directory::filter::ValueSource;
use crate::directory::schema::Attr;
use crate::metrics::OpKind;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::auth::NtlmMode;
use crate::ils::{APPLICATIONS_KEY, Base, SearchPlan, Want, implicit_container};
use crate::ops::extended;
use crate::protocol::{Responder, Scope};
use crate::session::Shared;

/// The monitor entry: what the server holds now, computed when read.
pub const MONITOR_KEY: &[u8] = b"cn=monitor,ou=admin,o=intranet";
pub const MONITOR_DN: &[u8] = b"cn=Monitor,ou=Admin,o=Intranet";
pub const ADMIN_KEY: &[u8] = b"ou=admin,o=intranet";

/// The attributes of the monitor entry. `entries` counts every stored
/// entry and `dynamicEntries` the dynamic ones, both including expired
/// entries the expiry thread has not yet removed, so that a client can
/// watch a sweep finish; `entryMemory` is what the dynamic entries take,
/// the estimate `max-memory` limits.
pub fn monitor_values(shared: &Shared) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let text = |s: &str| s.as_bytes().to_vec();
    let store = &shared.store;
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string().into_bytes();
    let counters = &shared.counters;
    let (entries, dynamic, memory) = {
        let dir = store.read();
        (dir.len(), dir.dynamic_count(), dir.footprint())
    };
    let mut values = vec![
        ("objectClass", vec![text("top"), text("monitor")]),
        ("cn", vec![text("Monitor")]),
        ("entries", vec![entries.to_string().into_bytes()]),
        ("dynamicEntries", vec![dynamic.to_string().into_bytes()]),
        ("entryMemory", vec![memory.to_string().into_bytes()]),
        (
            "uptime",
            vec![(store.now() / 1000).to_string().into_bytes()],
        ),
        ("refusedBusy", vec![count(&counters.refused_busy)]),
        (
            "refusedPerAddress",
            vec![count(&counters.refused_per_address)],
        ),
        ("refusedDenied", vec![count(&counters.refused_denied)]),
        ("bindsDelayed", vec![count(&counters.binds_delayed)]),
        ("connectionsAccepted", vec![count(&counters.accepted)]),
        ("connectionsOpen", vec![count(&counters.open)]),
        (
            "bytesIn",
            vec![counters.bytes_in().to_string().into_bytes()],
        ),
        (
            "bytesOut",
            vec![counters.bytes_out().to_string().into_bytes()],
        ),
        ("registrations", vec![count(&counters.registrations)]),
        ("refreshes", vec![count(&store.refreshed)]),
        ("expiries", vec![count(&store.expired)]),
        ("deletes", vec![count(&counters.deletes)]),
    ];
    // Each operation's count, as "search 120".
    values.push((
        "operations",
        OpKind::ALL
            .iter()
            .map(|&k| format!("{} {}", k.name(), counters.op(k).count()).into_bytes())
            .collect(),
    ));
    values
}

/// The root DSE (RFC 4512 section 5.1): what this server supports.
pub fn root_dse(shared: &Shared, plan: &SearchPlan, resp: &mut Responder<'_>) {
    virtual_entry(plan, resp, b"", &root_dse_values(shared));
}

/// The attributes of the root DSE.
pub fn root_dse_values(shared: &Shared) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    // NTLM is the one SASL mechanism of ILS, unless it is turned off.
    let sasl = match shared.limits.read().ntlm.mode {
        NtlmMode::Off => Vec::new(),
        _ => vec![b"NTLM".to_vec()],
    };
    let text = |s: &str| s.as_bytes().to_vec();
    let mut values = vec![
        ("objectClass", vec![text("top")]),
        ("namingContexts", vec![text("o=Intranet")]),
        ("supportedLDAPVersion", vec![text("2"), text("3")]),
        ("supportedSASLMechanisms", sasl),
        (
            "supportedExtension",
            vec![extended::REFRESH.to_vec(), extended::WHO_AM_I.to_vec()],
        ),
        (
            "dynamicSubtrees",
            vec![
                text("ou=Dynamic,o=Intranet"),
                text("ou=Applications,o=Intranet"),
            ],
        ),
        ("vendorName", vec![text("ilsd")]),
        (
            "vendorVersion",
            vec![text(concat!("ilsd ", env!("CARGO_PKG_VERSION")))],
        ),
    ];
    values.retain(|(_, v)| !v.is_empty());
    values
}

/// Whether a search may take in application containers: its base is one
/// of them, ou=Applications, or above it with a subtree scope.
pub fn takes_in_containers(plan: &SearchPlan) -> bool {
    let Base::Entry(t) = &plan.base else {
        return false;
    };
    let key: &[u8] = &t.key;
    match plan.scope {
        Scope::Base => implicit_container(key),
        Scope::OneLevel => key == APPLICATIONS_KEY,
        Scope::Subtree | Scope::Children => {
            // The root, o=Intranet or ou=Applications itself.
            let above = key.is_empty()
                || key == APPLICATIONS_KEY
                || APPLICATIONS_KEY
                    .strip_suffix(key)
                    .is_some_and(|rest| rest.ends_with(b","));
            above || implicit_container(key)
        }
    }
}

/// The attributes of an application container: an entry of class
/// `container` named by its `appName`.
pub fn container_values(dn: &[u8]) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let name = Dn::parse(dn)
        .ok()
        .and_then(|d| d.rdns.into_iter().next())
        .map(|r| r.value)
        .unwrap_or_default();
    vec![
        ("objectClass", vec![b"top".to_vec(), b"container".to_vec()]),
        ("appName", vec![name]),
    ]
}

/// Sends an entry the server computes rather than stores, if it matches.
pub fn virtual_entry(
    plan: &SearchPlan,
    resp: &mut Responder<'_>,
    dn: &[u8],
    all: &[(&str, Vec<Vec<u8>>)],
) {
    if plan.filter.matches(&VirtualValues(dn, all)) {
        send_virtual(plan, resp, dn, all);
    }
}

/// Sends an entry the server computes, with the attributes asked for.
pub fn send_virtual(
    plan: &SearchPlan,
    resp: &mut Responder<'_>,
    dn: &[u8],
    all: &[(&str, Vec<Vec<u8>>)],
) {
    let wants_all = plan
        .attrs
        .iter()
        .any(|r| matches!(r.want, Want::AllUser | Want::AllOperational));
    let mut chosen: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    if wants_all {
        chosen = all
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.clone()))
            .collect();
    } else {
        for r in &plan.attrs {
            if let Some((_, v)) = all
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(&r.name))
            {
                chosen.push((r.name.clone(), v.clone()));
            }
        }
    }
    if plan.types_only {
        chosen.iter_mut().for_each(|(_, v)| v.clear());
    }
    resp.entry(
        dn,
        chosen
            .iter()
            .map(|(n, v)| (n.as_slice(), v.iter().map(Vec::as_slice))),
    );
}

/// The DN and attributes of an entry the server computes.
pub struct VirtualValues<'a>(pub &'a [u8], pub &'a [(&'a str, Vec<Vec<u8>>)]);

impl ValueSource for VirtualValues<'_> {
    fn any_value(&self, a: &Attr, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.1
            .iter()
            .filter(|(n, _)| Attr::from_name(n.as_bytes()) == *a)
            .any(|(_, vals)| vals.iter().any(|v| f(v)))
    }

    fn any_attr_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        self.1.iter().any(|(n, vals)| {
            let a = Attr::from_name(n.as_bytes());
            vals.iter().any(|v| f(&a, v))
        })
    }

    fn any_dn_value(&self, f: &mut dyn FnMut(&Attr, &[u8]) -> bool) -> bool {
        Dn::parse(self.0).is_ok_and(|dn| dn.rdns.iter().any(|rdn| f(&rdn.attr, &rdn.value)))
    }
}
