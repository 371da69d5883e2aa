//! `ils-bench`: the ILS load generator. Registers users, runs one workload
//! closed-loop for a while, and prints throughput and latency.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ils_bench::{self as bench, Plan, Workload};

const USAGE: &str = "usage: ils-bench [--workload W] [--connections C] [--threads T] [--duration SECS] [--entries N] [--ttl SECS] [--hold N] [--expire N] [--standard] [--no-populate] [--json] HOST:PORT\n       ils-bench --serve-ceiling HOST:PORT";

/// How long after the expiring users are set up they expire.
const EXPIRY_LEAD: Duration = Duration::from_secs(3);

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
    opts.optopt(
        "t",
        "threads",
        "client threads driving the connections of the workloads that keep \
         them open (default: the number of CPUs)",
        "T",
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
    opts.optopt(
        "",
        "hold",
        "keep N more connections open and idle through the run, and check \
         at the end that each still answers",
        "N",
    );
    opts.optopt(
        "",
        "expire",
        "register N more users that all expire within one second during \
         the run; report when the server has removed them (ilsd's monitor \
         entry) and the latency around it (needs the server's min-ttl at \
         most 3)",
        "N",
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
    opts.optflag(
        "",
        "serve-ceiling",
        "instead of loading a server, be one that answers every request \
         with a fixed success at HOST:PORT: the ceiling any blocking server \
         reaches with this client on this machine",
    );
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
    if m.opt_present("serve-ceiling") {
        let served = std::net::TcpListener::bind(target).and_then(bench::serve_ceiling);
        if let Err(e) = served {
            eprintln!("ils-bench: cannot serve at {target}: {e}");
            return ExitCode::from(71);
        }
        return ExitCode::SUCCESS;
    }
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
    let (hold, expire) = match (number("hold", 0), number("expire", 0)) {
        (Ok(h), Ok(e)) => (h as usize, e as usize),
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut plan = match (|| -> Result<Plan, String> {
        Ok(Plan {
            target,
            workload,
            connections: number("connections", 8)?.max(1) as usize,
            duration: Duration::from_secs_f64(number("duration", 10)? as f64),
            entries: number("entries", 10_000)? as usize,
            standard: m.opt_present("standard"),
            ttl: number("ttl", 3600)? as u32,
            threads: number("threads", cpus)?.max(1) as usize,
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
    open_files_for(hold + plan.connections + 16);
    let mut held = match bench::hold(&plan, hold) {
        Ok(held) => held,
        Err(e) => {
            eprintln!("ils-bench: cannot open {hold} connections to {target}: {e}");
            return ExitCode::from(69);
        }
    };
    let expiry = match expire {
        0 => None,
        n => match bench::prepare_expiry(&plan, n, EXPIRY_LEAD) {
            Ok(expiry) => Some(expiry),
            Err(e) => {
                eprintln!("ils-bench: cannot set up {n} expiring users: {e}");
                return ExitCode::from(69);
            }
        },
    };
    if let Some(x) = &expiry {
        // Run on for a while after the removal should be over.
        let wanted = x.deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        if plan.duration < wanted {
            eprintln!(
                "ils-bench: running {} s, to see the mass expiry through",
                wanted.as_secs()
            );
            plan.duration = wanted;
        }
    }
    let give_up = Instant::now() + plan.duration;
    let (run, removed) = std::thread::scope(|scope| {
        let watcher = expiry
            .as_ref()
            .map(|x| scope.spawn(|| bench::watch_expiry(&plan, x, give_up)));
        let run = bench::measure(&plan);
        (run, watcher.map(|w| w.join().unwrap_or(Ok(None))))
    });
    let report = &run.report;
    let mut failed = report.errors > 0;
    if m.opt_present("json") {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    if hold > 0 {
        let served = bench::still_served(&plan, &mut held);
        println!("held: {served} of {hold} idle connections still answered after the run");
        failed |= served < hold;
    }
    if let (Some(x), Some(removed)) = (&expiry, removed) {
        let removed = match removed {
            Ok(Some(t)) => t,
            Ok(None) => {
                println!(
                    "expiry: {} users were not all removed during the run (is the server's min-ttl above {} s?)",
                    x.count,
                    EXPIRY_LEAD.as_secs()
                );
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("ils-bench: cannot read the monitor entry: {e}");
                return ExitCode::from(1);
            }
        };
        let after = removed.saturating_duration_since(x.deadline);
        let margin = Duration::from_millis(250);
        let from = x.deadline.checked_sub(margin).unwrap_or(run.started);
        let window = run.window(from, removed + margin);
        println!(
            "expiry: {} users due {:.1} s into the run, all removed {} ms after the first was due and {} ms after the last",
            x.count,
            x.deadline
                .saturating_duration_since(run.started)
                .as_secs_f64(),
            after.as_millis(),
            removed.saturating_duration_since(x.last).as_millis()
        );
        println!("  during it: {}", window.to_text());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Raises the soft open-file limit to the hard one when `sockets` would
/// not fit under it: a run holding thousands of idle connections needs
/// more than the usual 1,024.
fn open_files_for(sockets: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < sockets as u64 + 16
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("ils-bench: cannot raise the open-file limit to {hard}: {e}");
    }
}
