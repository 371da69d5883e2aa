//! What running as a system daemon takes: logging for the journal or a
//! terminal, service manager notification, socket activation, dropping
//! privileges and the open-file limit.
//!
//! All of it runs on the main thread, before the server starts or around
//! reloads and shutdown.

use std::io::Write;
use std::net::TcpListener;

/// Daemon failures, each with the sysexits code it exits with.
#[derive(Debug)]
pub enum DaemonError {
    /// Bad command line (EX_USAGE).
    Usage(String),
    /// Bad configuration (EX_CONFIG).
    Config(String),
    /// Cannot bind or start (EX_OSERR).
    Start(String),
    /// Not allowed: privileges, ports (EX_NOPERM).
    Permission(String),
    /// A failure of the server itself (EX_SOFTWARE).
    Internal(String),
    /// A service it needs is not there (EX_UNAVAILABLE).
    Unavailable(String),
}

impl DaemonError {
    /// The exit status, from sysexits(3).
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Usage(_) => 64,
            DaemonError::Config(_) => 78,
            DaemonError::Start(_) => 71,
            DaemonError::Permission(_) => 77,
            DaemonError::Internal(_) => 70,
            DaemonError::Unavailable(_) => 69,
        }
    }
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Usage(m)
            | DaemonError::Config(m)
            | DaemonError::Start(m)
            | DaemonError::Permission(m)
            | DaemonError::Internal(m)
            | DaemonError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Whether stderr is the journal: JOURNAL_STREAM holds its device and inode.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Logs to stderr: with `<N>` syslog priorities when stderr is the journal,
/// with timestamps otherwise. `RUST_LOG` overrides the configured level.
pub fn init_logging(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.target(env_logger::Target::Stderr);
    match std::env::var("RUST_LOG") {
        // RUST_LOG decides, over the configured level for what it leaves out.
        Ok(spec) => {
            builder.filter_level(level).parse_filters(&spec);
        }
        // The logger lets everything through and `log::set_max_level`
        // decides, so that a reload can raise the level as well as lower it.
        Err(_) => {
            builder.filter_level(log::LevelFilter::Trace);
        }
    }
    if stderr_is_journal() {
        builder.format(|buf, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(buf, "<{priority}>{}", record.args())
        });
    } else {
        builder.format_timestamp_millis();
    }
    let _ = builder.try_init();
    set_log_level(level);
}

/// Applies the configured log level, unless RUST_LOG decides it.
pub fn set_log_level(level: log::LevelFilter) {
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(level);
    }
}

/// Sends a state change to the service manager if NOTIFY_SOCKET is set
/// (sd_notify(3)); does nothing otherwise.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot notify the service manager: {e}");
            return;
        }
    };
    let path = path.to_string_lossy().into_owned();
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        log::warn!("cannot notify the service manager at {path}: {e}");
    }
}

/// The listening sockets passed by socket activation (LISTEN_FDS), if any.
pub fn activated_listeners() -> Result<Vec<TcpListener>, DaemonError> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i) {
            Ok(Some(l)) => {
                // A bound socket that nobody called listen() on passes as
                // a TCP listener, and would fail every accept().
                use nix::sys::socket::{getsockopt, sockopt::AcceptConn};
                if !getsockopt(&l, AcceptConn).unwrap_or(false) {
                    return Err(DaemonError::Start(format!(
                        "passed socket {i} is not listening"
                    )));
                }
                listeners.push(l);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(DaemonError::Start(format!(
                    "passed socket {i} is not a TCP listener: {e}"
                )));
            }
        }
    }
    Ok(listeners)
}

/// Drops root privileges to `user` (and `group`, or the user's group).
/// Started as root without a user, it only warns.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<(), DaemonError> {
    use nix::unistd::{Gid, Group, Uid, User, setgid, setgroups, setuid};
    let root = Uid::effective().is_root();
    if user.is_none() && group.is_none() {
        if root {
            log::warn!(
                "running as root: give --user to drop privileges once the sockets are bound"
            );
        }
        return Ok(());
    }
    if !root {
        return Err(DaemonError::Permission(
            "--user and --group need to start as root".into(),
        ));
    }
    let found_user = match user {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| DaemonError::Config(format!("cannot look up user {name}: {e}")))?
                .ok_or_else(|| DaemonError::Config(format!("no user named {name}")))?,
        ),
        None => None,
    };
    let gid: Gid = match (group, &found_user) {
        (Some(name), _) => {
            Group::from_name(name)
                .map_err(|e| DaemonError::Config(format!("cannot look up group {name}: {e}")))?
                .ok_or_else(|| DaemonError::Config(format!("no group named {name}")))?
                .gid
        }
        (None, Some(u)) => u.gid,
        (None, None) => Gid::effective(),
    };
    let perm = |what: &str, e: nix::Error| DaemonError::Permission(format!("cannot {what}: {e}"));
    setgroups(&[gid]).map_err(|e| perm("set groups", e))?;
    setgid(gid).map_err(|e| perm("set group", e))?;
    match found_user {
        Some(u) => {
            setuid(u.uid).map_err(|e| perm("set user", e))?;
            log::info!("running as user {} ({}), group {}", u.name, u.uid, gid);
        }
        None => log::warn!(
            "running as root with group {gid}: give --user to drop privileges once the sockets are bound"
        ),
    }
    Ok(())
}

/// Raises the open-file limit to what `connections` need, within the hard
/// limit.
pub fn raise_file_limit(connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // Listening sockets, the log, the notify socket and some slack.
    let want = connections as u64 + 64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= want {
        return;
    }
    let target = want.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) if target >= want => log::debug!("open-file limit raised to {target}"),
        Ok(()) => log::warn!(
            "open-file limit is {target} (hard limit), below the {want} that max-connections {connections} needs"
        ),
        Err(e) => log::warn!("cannot raise the open-file limit from {soft} to {want}: {e}"),
    }
}
