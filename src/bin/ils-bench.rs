//! `ils-bench`: the ILS load generator. Registers users, runs one workload
//! closed-loop for a while, and prints throughput and latency.

use std::process::ExitCode;
use std::time::Duration;

use ilsd::bench::{self, Plan, Workload};

const USAGE: &str = "usage: ils-bench [--workload W] [--connections C] [--duration SECS] [--entries N] [--ttl SECS] [--standard] [--no-populate] [--json] HOST:PORT";

fn main() -> ExitCode {
    let mut opts = getopts::Options::new();
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    opts.optopt(
        "w",
        "workload",
        &format!("one of {} (default refresh)", names.join(", ")),
        "W",
    );
    opts.optopt(
        "c",
        "connections",
        "concurrent connections (default 8)",
        "C",
    );
    opts.optopt("d", "duration", "seconds to run (default 10)", "SECS");
    opts.optopt(
        "n",
        "entries",
        "users registered before the run (default 10000)",
        "N",
    );
    opts.optopt(
        "",
        "ttl",
        "TTL of the registered users in seconds (default 3600)",
        "SECS",
    );
    opts.optflag(
        "",
        "standard",
        "plain RFC 4511/2589 operations, for servers without the ILS dialect",
    );
    opts.optflag(
        "",
        "no-populate",
        "do not register users first (they are already there)",
    );
    opts.optflag("", "json", "print the report as JSON");
    opts.optflag("h", "help", "print this help");
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let usage_error = |m: String| {
        eprintln!("ils-bench: {m}\n{USAGE}");
        ExitCode::from(64)
    };
    let m = match opts.parse(&argv) {
        Ok(m) => m,
        Err(e) => return usage_error(e.to_string()),
    };
    if m.opt_present("h") {
        print!("{}", opts.usage(USAGE));
        return ExitCode::SUCCESS;
    }
    let Some(target) = m
        .free
        .first()
        .and_then(|t| std::net::ToSocketAddrs::to_socket_addrs(t).ok()?.next())
    else {
        return usage_error("a HOST:PORT to load is required".into());
    };
    let number = |name: &str, default: u64| -> Result<u64, String> {
        m.opt_str(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("--{name}: '{v}' is not a number"))
        })
    };
    let workload = match m.opt_str("workload").as_deref().map(Workload::from_name) {
        None => Workload::Refresh,
        Some(Some(w)) => w,
        Some(None) => return usage_error(format!("workloads: {}", names.join(", "))),
    };
    let plan = match (|| -> Result<Plan, String> {
        Ok(Plan {
            target,
            workload,
            connections: number("connections", 8)?.max(1) as usize,
            duration: Duration::from_secs_f64(number("duration", 10)? as f64),
            entries: number("entries", 10_000)? as usize,
            standard: m.opt_present("standard"),
            ttl: number("ttl", 3600)? as u32,
        })
    })() {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    if !m.opt_present("no-populate") && workload != Workload::Churn
        || workload == Workload::Churn && !m.opt_present("no-populate")
    {
        match bench::populate(&plan) {
            Ok(0) => {}
            Ok(failed) => eprintln!("ils-bench: {failed} registrations failed"),
            Err(e) => {
                eprintln!("ils-bench: cannot register users at {target}: {e}");
                return ExitCode::from(69);
            }
        }
    }
    let report = bench::run(&plan);
    if m.opt_present("json") {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    if report.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
