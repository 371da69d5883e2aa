//! The server: listeners, the worker pool, the expiry thread, and the
//! handle that starts, reloads and stops them.
//!
//! Threads: one acceptor per listening socket hands each connection over a
//! `crossbeam_channel` to the worker pool. The pool starts with
//! `workers` threads, grows when every worker is busy, up to the connection
//! limit, and workers above the initial number retire after a minute
//! without work. A connection over the limit is told "busy" with a Notice
//! of Disconnection and closed by the acceptor itself.
//!
//! Shutdown stops the acceptors (each is woken by a connection to itself),
//! shuts the reading side of every open connection so that requests in
//! flight are answered and idle clients let go at once, and joins every
//! thread.
//!
//! Runs on the thread that starts it and on the threads it starts; it
//! imports the operations' dispatcher and the session they are served
//! with, and nothing of the daemon.

pub mod config;
pub mod connection;
pub mod keeper;
pub mod listener;

pub use config::Config;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ldap3_proto::LdapResultCode;
use parking_lot::Mutex;

use crate::auth::moderation::Moderation;
use crate::auth::{NtAccounts, smbpasswd};
use crate::directory::entry::{Key, class};
use crate::directory::expiry;
use crate::directory::owner::Owner;
use crate::directory::store::{self, Store, TtlPolicy};
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::protocol::notice_of_disconnection;
use crate::session::Shared;
use crate::throttle::Throttle;

/// Reads the NTLM accounts file, if there is one; bad lines are logged
/// with their numbers and the others kept.
fn ntlm_accounts(config: &Config) -> io::Result<Arc<NtAccounts>> {
    let Some(path) = &config.ntlm_accounts else {
        return Ok(Arc::default());
    };
    let read = smbpasswd::load(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    for (line, why) in &read.bad {
        log::warn!("{}:{line}: skipped: {why}", path.display());
    }
    log::info!(
        "{}: {} NTLM account(s)",
        path.display(),
        read.accounts.len()
    );
    Ok(Arc::new(read.accounts))
}

/// Removes the dynamic entries that moderation rules bar: a name that a
/// `deny-name` pattern matches, or an owner's address inside a
/// `deny-address` block. Returns how many entries went, with the
/// application entries that lived with them.
pub fn purge(store: &Store, moderation: &Moderation) -> usize {
    if moderation.names.is_empty() && moderation.addresses.is_empty() {
        return 0;
    }
    let mut dir = store.write();
    let barred: Vec<Key> = dir
        .slots_from(0)
        .map(|(_, entry)| entry)
        .filter(|entry| entry.is(class::DYNAMIC))
        .filter(|entry| {
            let from_denied = match dir.owner_of(entry) {
                Some(Owner::Address(ip)) => moderation.denied_address(*ip).is_some(),
                _ => false,
            };
            from_denied || moderation.denied_entry(entry).is_some()
        })
        .map(|entry| entry.key.clone())
        .collect();
    barred.iter().map(|key| dir.remove(key)).sum()
}

/// How long a worker above the initial number waits for work before it
/// retires.
const RETIRE_AFTER: Duration = Duration::from_secs(60);

/// Stack of a worker thread: requests are shallow, filters are bounded
/// in depth, and thousands of connections mean thousands of stacks.
const WORKER_STACK: usize = 256 * 1024;

/// The worker pool and the connections it serves.
struct Pool {
    jobs: Mutex<Option<Sender<(TcpStream, SocketAddr)>>>,
    inbox: Receiver<(TcpStream, SocketAddr)>,
    /// Workers alive, and those waiting for a connection.
    workers: AtomicUsize,
    idle: AtomicUsize,
    min_workers: usize,
    /// Connections being served, to shut down at stop.
    open: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Connections accepted and not yet closed, by address.
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Set at stop before the open connections are shut down: a worker
    /// that registers its connection after that shuts it down itself.
    stopping: AtomicBool,
    next_id: AtomicU64,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    addrs: Vec<SocketAddr>,
    stopping: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
    expiry: Option<JoinHandle<()>>,
    keeper: Option<keeper::Keeper>,
    http: Option<HttpServer>,
}

/// Binds `http-listen`'s addresses.
pub fn bind_http(config: &Config) -> io::Result<Vec<TcpListener>> {
    config
        .http_listen
        .iter()
        .map(|&addr| {
            listener::bind_listener(addr, false).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {addr} for HTTP: {e}"))
            })
        })
        .collect()
}

impl Server {
    /// Binds every listen address of the configuration and starts.
    pub fn start(config: &Config) -> io::Result<Server> {
        let listeners = config
            .listen
            .iter()
            .map(|&addr| {
                listener::bind_listener(addr, config.dual_stack.contains(&addr))
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Server::from_listeners(config, listeners)
    }

    /// Starts on sockets that are already bound (socket activation, tests),
    /// binding `http-listen` itself.
    pub fn from_listeners(config: &Config, listeners: Vec<TcpListener>) -> io::Result<Server> {
        Server::with_http(config, listeners, bind_http(config)?)
    }

    /// Starts on LDAP and HTTP sockets that are already bound.
    pub fn with_http(
        config: &Config,
        listeners: Vec<TcpListener>,
        http_listeners: Vec<TcpListener>,
    ) -> io::Result<Server> {
        let (expiry_tx, expiry_rx) = crossbeam_channel::unbounded();
        let ttl = TtlPolicy::new(config.default_ttl, config.min_ttl, config.max_ttl);
        let store = Arc::new(Store::new(ttl, expiry_tx));
        {
            let mut dir = store.write();
            store::load_static_tree(&mut dir);
            dir.set_max_footprint(config.max_memory);
        }
        let mut limits = config.limits();
        limits.ntlm.accounts = ntlm_accounts(config)?;
        let shared = Arc::new(Shared::new(store, limits));
        // The entries of the last run are back before anyone can ask.
        if let Some(path) = &config.state_file {
            keeper::restore(&shared.store, path)?;
        }
        let expiry = expiry::spawn(shared.store.clone(), expiry_rx)?;
        let keeper = match &config.state_file {
            Some(path) => {
                let store = shared.store.clone();
                Some(keeper::Keeper::spawn(
                    store,
                    path.clone(),
                    config.state_interval,
                )?)
            }
            None => None,
        };
        let (jobs, inbox) = crossbeam_channel::unbounded();
        let pool = Arc::new(Pool {
            jobs: Mutex::new(Some(jobs)),
            inbox,
            workers: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            min_workers: config.workers,
            open: Mutex::new(HashMap::new()),
            per_address: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            handles: Mutex::new(Vec::new()),
        });
        for _ in 0..config.workers {
            spawn_worker(&pool, &shared, true)?;
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        let mut acceptors = Vec::new();
        for listener in listeners {
            let addr = listener.local_addr()?;
            addrs.push(addr);
            let (pool, shared, stopping) = (pool.clone(), shared.clone(), stopping.clone());
            acceptors.push(
                std::thread::Builder::new()
                    .name(format!("ilsd-accept-{addr}"))
                    .spawn(move || accept_loop(&listener, &pool, &shared, &stopping))?,
            );
            log::info!("listening on {addr}");
        }
        let http = match http_listeners.is_empty() {
            true => None,
            false => Some(HttpServer::start(
                http_listeners,
                shared.clone(),
                &config.http(),
                stopping.clone(),
            )?),
        };
        Ok(Server {
            shared,
            pool,
            addrs,
            stopping,
            acceptors,
            expiry: Some(expiry),
            keeper,
            http,
        })
    }

    /// The first listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every listening address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The state the threads share, for inspection.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The HTTP listening addresses, if HTTP is served.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        self.http.as_ref().map_or(&[], |h| h.local_addrs())
    }

    /// Applies what can change without a restart: TTL bounds and limits.
    /// Entries are kept.
    pub fn reload(&self, config: &Config) {
        self.shared
            .store
            .ttl
            .set(config.default_ttl, config.min_ttl, config.max_ttl);
        let mut limits = config.limits();
        limits.ntlm.accounts = ntlm_accounts(config).unwrap_or_else(|e| {
            log::error!("{e}: NTLM logons are refused until it can be read");
            Default::default()
        });
        self.shared.set_limits(limits);
        let removed = purge(&self.shared.store, &config.moderation);
        if removed > 0 {
            log::warn!(
                "{removed} entries removed: the new deny-name or deny-address rules bar them"
            );
        }
        self.shared
            .store
            .write()
            .set_max_footprint(config.max_memory);
        if let Some(http) = &self.http {
            http.set_policy(config.http().policy);
        }
    }

    /// How many connections are being served.
    pub fn connections(&self) -> usize {
        self.pool.open.lock().len()
    }

    /// What cuts every connection off at once, from another thread.
    pub fn closer(&self) -> Closer {
        Closer(self.pool.clone())
    }

    /// Stops accepting, lets requests in flight finish (for at most
    /// stop-timeout), closes every connection and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for addr in &self.addrs {
            // Wake the acceptor blocked in accept().
            let _ = TcpStream::connect_timeout(&wake_address(*addr), Duration::from_secs(1));
        }
        for handle in self.acceptors.drain(..) {
            let _ = handle.join();
        }
        // Dropping the sender tells idle workers to exit; shutting the
        // reading side ends every session after its current request.
        self.pool.jobs.lock().take();
        self.pool.stopping.store(true, Ordering::SeqCst);
        for stream in self.pool.open.lock().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        // Answers still being written get stop-timeout; then whatever is
        // left is cut off, so that a client that stopped reading cannot
        // hold the stop past the service manager's patience.
        let deadline = Instant::now().checked_add(self.shared.limits.read().stop_timeout);
        while !self.pool.open.lock().is_empty() && deadline.is_none_or(|d| Instant::now() < d) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.closer().close_all();
        let handles: Vec<_> = self.pool.handles.lock().drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
        // Every connection is closed: the last snapshot misses nothing.
        if let Some(keeper) = self.keeper.take() {
            keeper.stop();
        }
        self.shared.store.stop_expiry();
        if let Some(handle) = self.expiry.take() {
            let _ = handle.join();
        }
        // Last, so that /healthz says 503 through the whole stop.
        if let Some(http) = self.http.take() {
            http.stop();
        }
        log::info!("stopped");
    }
}

/// Cuts off every connection of a stopping server at once: for a second
/// stop signal, which should not wait for stop-timeout.
pub struct Closer(Arc<Pool>);

impl Closer {
    pub fn close_all(&self) {
        for stream in self.0.open.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connecting to 0.0.0.0 or :: is not portable; the loopback of the same
/// family reaches the same listener.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let mut target = addr;
    if addr.ip().is_unspecified() {
        target.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    target
}

fn accept_loop(
    listener: &TcpListener,
    pool: &Arc<Pool>,
    shared: &Arc<Shared>,
    stopping: &AtomicBool,
) {
    let (failures, refusals, crowded) = (Throttle::new(), Throttle::new(), Throttle::new());
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                failures
                    .warn(|n| format!("accept failed ({n} time(s) since the last warning): {e}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let (max, per_address) = {
            let limits = shared.limits.read();
            (limits.max_connections, limits.max_connections_per_address)
        };
        let busy = pool
            .workers
            .load(Ordering::SeqCst)
            .saturating_sub(pool.idle.load(Ordering::SeqCst));
        if busy >= max {
            shared.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
            refusals.warn(|n| {
                format!(
                    "{peer} refused: {max} connections already ({n} refused since the last warning)"
                )
            });
            refuse(stream, "too many connections");
            continue;
        }
        // One address (an office behind one NAT, or one abuser) cannot
        // take every slot.
        if !pool.admit(peer.ip(), per_address) {
            shared
                .counters
                .refused_per_address
                .fetch_add(1, Ordering::Relaxed);
            crowded.warn(|n| {
                format!(
                    "{peer} refused: {per_address} connections from its address already ({n} refused since the last warning)"
                )
            });
            refuse(stream, "too many connections from this address");
            continue;
        }
        // Each connection claims an idle worker here, before it is handed
        // over, so that a burst of connections is never counted against the
        // same idle worker twice while it is still waking up; with none
        // left, a new worker is started for it.
        if !pool.claim_idle()
            && let Err(e) = spawn_worker(pool, shared, false)
        {
            log::error!("cannot start a worker: {e}");
            pool.release(peer.ip());
            refuse(stream, "too many connections");
            continue;
        }
        if let Some(jobs) = pool.jobs.lock().as_ref() {
            let _ = jobs.send((stream, peer));
        }
    }
}

/// Tells a client over the connection limit that the server is busy.
fn refuse(mut stream: TcpStream, why: &str) {
    let mut out = BytesMut::new();
    notice_of_disconnection(&mut out, LdapResultCode::Busy, why);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&out);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Starts a worker: an idle one, or one already claimed for a connection
/// on its way.
fn spawn_worker(pool: &Arc<Pool>, shared: &Arc<Shared>, idle: bool) -> io::Result<()> {
    let (p, s) = (pool.clone(), shared.clone());
    pool.workers.fetch_add(1, Ordering::SeqCst);
    if idle {
        pool.idle.fetch_add(1, Ordering::SeqCst);
    }
    let spawned = std::thread::Builder::new()
        .name("ilsd-worker".into())
        .stack_size(WORKER_STACK)
        .spawn(move || worker(&p, &s));
    match spawned {
        Ok(handle) => {
            let mut handles = pool.handles.lock();
            handles.retain(|h| !h.is_finished());
            handles.push(handle);
            Ok(())
        }
        Err(e) => {
            pool.workers.fetch_sub(1, Ordering::SeqCst);
            if idle {
                pool.idle.fetch_sub(1, Ordering::SeqCst);
            }
            Err(e)
        }
    }
}

impl Pool {
    /// Counts a connection from `ip` in, unless its address has `max`
    /// already.
    fn admit(&self, ip: IpAddr, max: usize) -> bool {
        let mut per_address = self.per_address.lock();
        let count = per_address.entry(ip.to_canonical()).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// Counts a connection from `ip` out.
    fn release(&self, ip: IpAddr) {
        let mut per_address = self.per_address.lock();
        let ip = ip.to_canonical();
        if let Some(count) = per_address.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&ip);
            }
        }
    }

    /// Takes one idle worker off the count, if there is one.
    fn claim_idle(&self) -> bool {
        self.idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A worker's life. `idle` counts the workers no connection has claimed:
/// the acceptor takes one off when it hands a connection over, and a
/// worker puts itself back when that connection ends. A worker retires
/// only by claiming itself, so a connection already promised a worker is
/// never left in the queue.
fn worker(pool: &Pool, shared: &Shared) {
    loop {
        match pool.inbox.recv_timeout(RETIRE_AFTER) {
            Ok((stream, peer)) => {
                let stream = Arc::new(stream);
                Metrics::add(&shared.counters.accepted, 1);
                Metrics::add(&shared.counters.open, 1);
                let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
                pool.open.lock().insert(id, stream.clone());
                if pool.stopping.load(Ordering::SeqCst) {
                    let _ = stream.shutdown(Shutdown::Read);
                }
                // A bug that panics while serving one client must not
                // leave that client hanging or cost the pool a worker.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    connection::serve(shared, &stream, peer)
                }));
                if served.is_err() {
                    log::error!("{peer}: connection closed after an internal error");
                    let _ = stream.shutdown(Shutdown::Both);
                }
                pool.open.lock().remove(&id);
                shared.counters.open.fetch_sub(1, Ordering::Relaxed);
                pool.release(peer.ip());
                pool.idle.fetch_add(1, Ordering::SeqCst);
            }
            Err(RecvTimeoutError::Timeout) => {
                if pool.workers.load(Ordering::SeqCst) > pool.min_workers && pool.claim_idle() {
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Shutdown: whatever is still counted idle no longer matters.
                break;
            }
        }
    }
    pool.workers.fetch_sub(1, Ordering::SeqCst);
}
