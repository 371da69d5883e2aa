//! `/metrics`: the server's counters ([`crate::metrics`]) in the
//! Prometheus text format, encoded by the prometheus-client crate. The
//! counters are read when scraped, by the HTTP worker that serves the
//! scrape; nothing is copied between scrapes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::metrics::{Metrics, OTHER_CODE, OpKind};
use crate::session::Shared;

/// The collector that reads the shared counters at each scrape.
struct Counters(Arc<Shared>);

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counters")
    }
}

type Labels<'a> = [(&'static str, &'a str)];

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(&Labels<'_>, u64)],
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        metric
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(&Labels<'_>, f64)],
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in rows {
        metric.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

impl Collector for Counters {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let m = &shared.counters;
        let get = |c: &AtomicU64| Metrics::get(c);
        let none: &Labels<'_> = &[];

        gauge(
            &mut e,
            "connections_open",
            "LDAP connections open now",
            None,
            &[(none, get(&m.open) as f64)],
        )?;
        counter(
            &mut e,
            "connections_accepted",
            "LDAP connections accepted and served",
            &[(none, get(&m.accepted))],
        )?;
        counter(
            &mut e,
            "connections_refused",
            "LDAP connections refused, and requests refused from denied addresses, by reason",
            &[
                (&[("reason", "limit")], get(&m.refused_busy)),
                (
                    &[("reason", "per_address_limit")],
                    get(&m.refused_per_address),
                ),
                (&[("reason", "denied_address")], get(&m.refused_denied)),
            ],
        )?;
        counter(
            &mut e,
            "binds_delayed",
            "binds made to wait after failed binds from their address",
            &[(none, get(&m.binds_delayed))],
        )?;

        let mut by_result: Vec<([(&str, &str); 2], u64)> = Vec::new();
        let codes: Vec<(OpKind, Vec<(String, u64)>)> = OpKind::ALL
            .iter()
            .map(|&k| {
                let rows = m
                    .op(k)
                    .results()
                    .into_iter()
                    .map(|(code, n)| match code {
                        OTHER_CODE => ("other".to_string(), n),
                        code => (code.to_string(), n),
                    })
                    .collect();
                (k, rows)
            })
            .collect();
        for (kind, rows) in &codes {
            for (code, n) in rows {
                by_result.push(([("op", kind.name()), ("code", code.as_str())], *n));
            }
        }
        let rows: Vec<(&Labels<'_>, u64)> = by_result.iter().map(|(l, n)| (&l[..], *n)).collect();
        counter(
            &mut e,
            "operations",
            "LDAP operations answered, by operation and LDAP result code",
            &rows,
        )?;

        let mut latency = e.encode_descriptor(
            "operation_duration",
            "time from a request's decoding to its answer, by operation",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for &kind in &OpKind::ALL {
            let (sum, count, buckets) = m.op(kind).histogram();
            if count == 0 {
                continue;
            }
            latency
                .encode_family(&[("op", kind.name())])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let (classes, entries, dynamic, memory) = {
            let dir = shared.store.read();
            (
                dir.class_counts(),
                dir.len(),
                dir.dynamic_count(),
                dir.footprint(),
            )
        };
        let class_rows: Vec<([(&str, &str); 1], f64)> = classes
            .iter()
            .map(|&(class, n)| ([("class", class)], n as f64))
            .collect();
        let mut rows: Vec<(&Labels<'_>, f64)> =
            class_rows.iter().map(|(l, n)| (&l[..], *n)).collect();
        rows.push((&[("class", "all")], entries as f64));
        rows.push((&[("class", "dynamic")], dynamic as f64));
        gauge(
            &mut e,
            "entries",
            "entries stored, by class (expired ones not yet removed included)",
            None,
            &rows,
        )?;
        gauge(
            &mut e,
            "store_memory",
            "what the dynamic entries take, as max-memory counts it",
            Some(&Unit::Bytes),
            &[(none, memory as f64)],
        )?;
        if let Some(heap) = crate::memory::heap() {
            gauge(
                &mut e,
                "heap",
                "what malloc holds from the system, and what of it is in use",
                Some(&Unit::Bytes),
                &[
                    (&[("kind", "in_use")], heap.in_use as f64),
                    (&[("kind", "held")], heap.held as f64),
                ],
            )?;
        }
        counter(
            &mut e,
            "registrations",
            "dynamic entries added",
            &[(none, get(&m.registrations))],
        )?;
        counter(
            &mut e,
            "refreshes",
            "time-to-live refreshes, by any operation",
            &[(none, get(&shared.store.refreshed))],
        )?;
        counter(
            &mut e,
            "expiries",
            "entries removed when their time to live ran out",
            &[(none, get(&shared.store.expired))],
        )?;
        counter(
            &mut e,
            "deletes",
            "entries removed by Delete",
            &[(none, get(&m.deletes))],
        )?;
        counter(
            &mut e,
            "received",
            "bytes read from LDAP clients",
            &[(none, m.bytes_in())],
        )?;
        counter(
            &mut e,
            "sent",
            "bytes written to LDAP clients",
            &[(none, m.bytes_out())],
        )?;
        gauge(
            &mut e,
            "uptime",
            "time since the server started",
            Some(&Unit::Seconds),
            &[(none, m.started.elapsed().as_secs_f64())],
        )?;
        let mut info = e.encode_descriptor("build", "the build", None, MetricType::Info)?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        Ok(())
    }
}

/// The registry `/metrics` encodes: the counters of `shared`, named
/// `ilsd_...`.
pub fn registry(shared: Arc<Shared>) -> Registry {
    let mut registry = Registry::with_prefix("ilsd");
    registry.register_collector(Box::new(Counters(shared)));
    registry
}

/// The page `/metrics` answers.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String does not fail; a collector's error would be a
    // bug, and is answered as an empty page rather than a panic.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        log::error!("/metrics: {e}");
    }
    out
}
