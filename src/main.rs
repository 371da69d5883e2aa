//! The `ilsd` daemon: reads options and the configuration file, binds,
//! drops privileges, serves until SIGTERM or SIGINT, and reloads on SIGHUP.
//! Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use ilsd::config::{Config, SETTINGS};
use ilsd::daemon::{self, DaemonError};
use ilsd::server::Server;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

const DEFAULT_CONFIG: &str = "/etc/ilsd/ilsd.conf";
const USAGE: &str =
    "usage: ilsd [-htV] [-f file] [-l addr:port] [-u user] [-g group] [--setting value ...]";

/// The parsed command line.
struct Args {
    config_path: PathBuf,
    config_named: bool,
    test_only: bool,
    /// Settings given on the command line, in order.
    settings: Vec<(String, String)>,
}

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "f",
        "config",
        &format!("configuration file (default {DEFAULT_CONFIG})"),
        "FILE",
    );
    opts.optflag("t", "test-config", "check the configuration and exit");
    opts.optflag("V", "version", "print the version and exit");
    opts.optflag("h", "help", "print this help and exit");
    for s in SETTINGS {
        let short = match s.name {
            "listen" => "l",
            "user" => "u",
            "group" => "g",
            _ => "",
        };
        if s.flag {
            opts.optflag(short, s.name, s.help);
        } else if s.repeatable {
            opts.optmulti(short, s.name, s.help, s.hint);
        } else {
            opts.optopt(short, s.name, s.help, s.hint);
        }
    }
    opts
}

/// The help text: every option with its one line.
pub fn help() -> String {
    options().usage(USAGE)
}

fn parse_args() -> Result<Option<Args>, DaemonError> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let matches = options()
        .parse(&argv)
        .map_err(|e| DaemonError::Usage(e.to_string()))?;
    if let Some(extra) = matches.free.first() {
        return Err(DaemonError::Usage(format!("unexpected argument '{extra}'")));
    }
    if matches.opt_present("h") {
        print!("{}", help());
        return Ok(None);
    }
    if matches.opt_present("V") {
        println!("ilsd {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let named = matches.opt_str("f");
    let mut settings = Vec::new();
    for s in SETTINGS {
        if s.flag {
            if matches.opt_present(s.name) {
                settings.push((s.name.to_string(), "yes".to_string()));
            }
            continue;
        }
        for value in matches.opt_strs(s.name) {
            settings.push((s.name.to_string(), value));
        }
    }
    Ok(Some(Args {
        config_named: named.is_some(),
        config_path: PathBuf::from(named.unwrap_or_else(|| DEFAULT_CONFIG.to_string())),
        test_only: matches.opt_present("t"),
        settings,
    }))
}

/// The configuration: defaults, then the file, then the command line.
fn load_config(args: &Args) -> Result<Config, DaemonError> {
    let mut config = Config::default();
    config
        .load_file(&args.config_path, args.config_named)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &args.settings {
        let fresh = !seen.contains(&name.as_str());
        seen.push(name);
        config
            .set(name, value, fresh)
            .map_err(|e| DaemonError::Usage(format!("--{name}: {e}")))?;
    }
    config.validate().map_err(|e| {
        // Settings that contradict each other may come from the file,
        // the command line or both: name where they were read.
        let file = args
            .config_path
            .exists()
            .then(|| args.config_path.display());
        DaemonError::Config(match (file, args.settings.is_empty()) {
            (Some(file), true) => format!("{file}: {e}"),
            (Some(file), false) => format!("{e} (settings of {file} and the command line)"),
            (None, _) => e,
        })
    })?;
    Ok(config)
}

fn run() -> Result<(), DaemonError> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let config = load_config(&args)?;
    if args.test_only {
        println!("configuration OK");
        return Ok(());
    }
    daemon::init_logging(config.log_level);
    // SIGPIPE is already ignored by the Rust runtime: a client that goes
    // away mid-write is an error on that connection, never a signal.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| DaemonError::Internal(format!("cannot handle signals: {e}")))?;
    let activated = daemon::activated_listeners()?;
    let activated_any = !activated.is_empty();
    daemon::raise_file_limit(config.max_connections);
    let server = if activated.is_empty() {
        let listeners = config
            .listen
            .iter()
            .map(|addr| {
                std::net::TcpListener::bind(addr).map_err(|e| {
                    let message = format!("cannot listen on {addr}: {e}");
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        DaemonError::Permission(message)
                    } else {
                        DaemonError::Start(message)
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        daemon::drop_privileges(config.user.as_deref(), config.group.as_deref())?;
        Server::from_listeners(&config, listeners)
    } else {
        log::info!(
            "using {} socket(s) passed by the service manager",
            activated.len()
        );
        if config.listen != Config::default().listen {
            log::warn!(
                "listen is ignored: the service manager passes the sockets (ilsd.socket decides the addresses)"
            );
        }
        daemon::drop_privileges(config.user.as_deref(), config.group.as_deref())?;
        Server::from_listeners(&config, activated)
    }
    .map_err(|e| DaemonError::Start(format!("cannot start: {e}")))?;
    daemon::notify("READY=1");
    log::info!("ilsd {} ready", env!("CARGO_PKG_VERSION"));
    // What a reload cannot change: compared with every reload's file, not
    // with the last one read.
    let started = RestartOnly::of(&config);
    for signal in signals.forever() {
        match signal {
            SIGHUP => reload(&server, &args, &started, !activated_any),
            _ => break,
        }
    }
    daemon::notify("STOPPING=1");
    log::info!("stopping");
    // A second stop signal does not wait for answers still being written.
    let closer = server.closer();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal != SIGHUP {
                log::info!("stopping now");
                closer.close_all();
            }
        }
    });
    server.shutdown();
    Ok(())
}

/// The settings that take effect at start only, as the server started.
struct RestartOnly {
    listen: Vec<std::net::SocketAddr>,
    workers: usize,
    user: Option<String>,
    group: Option<String>,
}

impl RestartOnly {
    fn of(config: &Config) -> RestartOnly {
        RestartOnly {
            listen: config.listen.clone(),
            workers: config.workers,
            user: config.user.clone(),
            group: config.group.clone(),
        }
    }
}

/// Re-reads the configuration and applies what can change while running.
/// `own_sockets` is false when the service manager passed the sockets,
/// and `listen` means nothing.
fn reload(server: &Server, args: &Args, started: &RestartOnly, own_sockets: bool) {
    daemon::notify("RELOADING=1");
    let next = match load_config(args) {
        Ok(next) => next,
        Err(e) => {
            log::error!("reload rejected, keeping the running configuration: {e}");
            daemon::notify("READY=1");
            return;
        }
    };
    server.reload(&next);
    daemon::set_log_level(next.log_level);
    // What waits for a restart first: "reloaded" ends the reload's lines.
    for (name, changed) in [
        ("listen", own_sockets && next.listen != started.listen),
        ("workers", next.workers != started.workers),
        ("user", next.user != started.user),
        ("group", next.group != started.group),
    ] {
        if changed {
            log::warn!("{name} changed: it takes effect at the next restart");
        }
    }
    log::info!(
        "reloaded: ttl default {} min {} max {}, max-connections {}, idle-timeout {}s, max-request-size {}, max-request-elements {}, max-values {}, max-memory {}, size-limit {}, time-limit {}, {} account(s), observed-ip {}, log-level {}",
        next.default_ttl,
        next.min_ttl,
        next.max_ttl,
        next.max_connections,
        next.idle_timeout.as_secs(),
        next.max_request_size,
        next.max_request_elements,
        next.max_values,
        next.max_memory,
        next.size_limit,
        next.time_limit,
        next.accounts.len(),
        if next.observed_ip { "yes" } else { "no" },
        next.log_level
    );
    daemon::notify("READY=1");
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Under the journal, the error priority, so that `journalctl
            // -p err` shows why the service did not start.
            let err = if daemon::stderr_is_journal() {
                "<3>"
            } else {
                ""
            };
            match &e {
                DaemonError::Usage(m) => eprintln!("{err}ilsd: {m}\n{USAGE}"),
                other => eprintln!("{err}ilsd: {other}"),
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
