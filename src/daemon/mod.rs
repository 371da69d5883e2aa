//! The daemon: what running as a system service takes around the
//! server. Options and the configuration file ([`options`], [`config`]),
//! signals (stop on SIGTERM or SIGINT, reload on SIGHUP: [`signals`]), readiness for
//! the service manager, socket activation and privileges ([`process`]).
//!
//! Runs on the main thread; the server's own threads are started by
//! [`Server`]. This is the top layer: it may use everything below it, and
//! nothing imports it.

pub mod config;
pub mod options;
pub mod process;
pub mod publication;
mod signals;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::server::listener::bind_listener;
use crate::server::{Config, Server};
use options::{Args, load_config};
use process::DaemonError;

/// Serves with `config` until SIGTERM or SIGINT, reloading on SIGHUP:
/// binds (or takes the service manager's sockets), drops privileges,
/// tells the service manager when it is ready, and stops cleanly.
pub fn serve(args: &Args, config: Config) -> Result<(), DaemonError> {
    process::init_logging(config.log_level);
    warn_plain_passwords(&config);
    // SIGPIPE is already ignored by the Rust runtime: a client that goes
    // away mid-write is an error on that connection, never a signal.
    let mut signals = signals::Waiter::new(&[SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| DaemonError::Internal(format!("cannot handle signals: {e}")))?;
    let activated = process::activated_listeners()?;
    let activated_any = !activated.is_empty();
    // Read before privileges are dropped: the password file is the
    // administrator's, not the service account's.
    let publish = publication::settings(&config)?;
    process::raise_file_limit(config.max_connections);
    let server = if activated.is_empty() {
        let listeners = config
            .listen
            .iter()
            .map(|&addr| {
                bind_listener(addr, config.dual_stack.contains(&addr)).map_err(|e| {
                    let message = format!("cannot listen on {addr}: {e}");
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        DaemonError::Permission(message)
                    } else {
                        DaemonError::Start(message)
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = bind_http(&config)?;
        process::drop_privileges(config.user.as_deref(), config.group.as_deref())?;
        Server::with_http(&config, listeners, http)
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
        let http = bind_http(&config)?;
        process::drop_privileges(config.user.as_deref(), config.group.as_deref())?;
        Server::with_http(&config, activated, http)
    }
    .map_err(|e| DaemonError::Start(format!("cannot start: {e}")))?;
    process::notify("READY=1");
    log::info!("ilsd {} ready", env!("CARGO_PKG_VERSION"));
    let publisher = match publish {
        Some(settings) => {
            let addresses = publication::addresses(&config, server.local_addrs());
            Some(
                crate::publish::Publisher::start(settings, addresses)
                    .map_err(|e| DaemonError::Start(format!("cannot start publishing: {e}")))?,
            )
        }
        None => None,
    };
    // What a reload cannot change: compared with every reload's file, not
    // with the last one read.
    let started = RestartOnly::of(&config);
    while signals.next() == SIGHUP {
        reload(&server, args, &started, !activated_any);
    }
    process::notify("STOPPING=1");
    log::info!("stopping");
    // A second stop signal does not wait for answers still being written.
    let closer = server.closer();
    std::thread::spawn(move || {
        loop {
            if signals.next() != SIGHUP {
                log::info!("stopping now");
                closer.close_all();
            }
        }
    });
    // The addresses go first: a client that finds this server in the
    // domain while it stops is sent to a server about to be gone.
    if let Some(publisher) = publisher {
        // Connecting, TLS, binding and the Modify: a step each.
        publisher.stop(config.publish_timeout * 4);
    }
    server.shutdown();
    Ok(())
}

/// Binds `http-listen`, before privileges are dropped.
fn bind_http(config: &Config) -> Result<Vec<std::net::TcpListener>, DaemonError> {
    crate::server::bind_http(config).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            DaemonError::Permission(e.to_string())
        } else {
            DaemonError::Start(e.to_string())
        }
    })
}

/// Warns about account passwords given in the clear: a configuration
/// file gets copied, backed up and shown.
fn warn_plain_passwords(config: &Config) {
    let plain = config
        .accounts
        .iter()
        .filter(|a| a.password.is_plain())
        .count();
    if plain > 0 {
        log::warn!(
            "{plain} account password(s) in the clear: give them hashed, as slappasswd writes them ({{SSHA512}} or {{ARGON2}})"
        );
    }
}

/// The settings that take effect at start only, as the server started.
struct RestartOnly {
    listen: Vec<std::net::SocketAddr>,
    workers: usize,
    user: Option<String>,
    group: Option<String>,
    state_file: Option<std::path::PathBuf>,
    state_interval: std::time::Duration,
    publish: Vec<String>,
    http_listen: Vec<std::net::SocketAddr>,
    http_threads: usize,
    http_max_connections: usize,
    http_timeout: std::time::Duration,
}

impl RestartOnly {
    fn of(config: &Config) -> RestartOnly {
        RestartOnly {
            listen: config.listen.clone(),
            workers: config.workers,
            user: config.user.clone(),
            group: config.group.clone(),
            state_file: config.state_file.clone(),
            state_interval: config.state_interval,
            publish: publication::restart_only(config),
            http_listen: config.http_listen.clone(),
            http_threads: config.http_threads,
            http_max_connections: config.http_max_connections,
            http_timeout: config.http_timeout,
        }
    }
}

/// Re-reads the configuration and applies what can change while running.
/// `own_sockets` is false when the service manager passed the sockets,
/// and `listen` means nothing.
fn reload(server: &Server, args: &Args, started: &RestartOnly, own_sockets: bool) {
    process::notify("RELOADING=1");
    let next = match load_config(args) {
        Ok(next) => next,
        Err(e) => {
            log::error!("reload rejected, keeping the running configuration: {e}");
            process::notify("READY=1");
            return;
        }
    };
    server.reload(&next);
    warn_plain_passwords(&next);
    process::set_log_level(next.log_level);
    // What waits for a restart first: "reloaded" ends the reload's lines.
    for (name, changed) in [
        ("listen", own_sockets && next.listen != started.listen),
        ("workers", next.workers != started.workers),
        ("user", next.user != started.user),
        ("group", next.group != started.group),
        ("state-file", next.state_file != started.state_file),
        (
            "state-interval",
            next.state_interval != started.state_interval,
        ),
        ("http-listen", next.http_listen != started.http_listen),
        ("http-threads", next.http_threads != started.http_threads),
        (
            "http-max-connections",
            next.http_max_connections != started.http_max_connections,
        ),
        ("http-timeout", next.http_timeout != started.http_timeout),
        (
            "the publish- settings",
            publication::restart_only(&next) != started.publish,
        ),
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
    process::notify("READY=1");
}
