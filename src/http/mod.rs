//! The operator's window: an optional HTTP listener with the "who is
//! online" page (`/`, `/users.json`), the Prometheus metrics (`/metrics`)
//! and a health check (`/healthz`).
//!
//! One acceptor thread per listener (`ilsd-http-accept-ADDR`) hands each
//! connection to a small pool of `http-threads` workers (`ilsd-http`)
//! through a queue of `http-max-connections`; a connection that finds the
//! queue full is answered 503 by the acceptor and closed. A worker reads
//! one request of at most [`MAX_REQUEST`] bytes within `http-timeout`,
//! parses it with httparse, answers it and closes the connection. So the
//! memory and the threads HTTP can take are bounded whatever clients do,
//! and they are not the LDAP side's: a slow or hostile HTTP client costs
//! LDAP clients nothing but CPU.

pub mod page;
pub mod prometheus;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::RwLock;

use crate::auth::moderation::Cidr;
use crate::session::Shared;
use crate::throttle::Throttle;

/// The largest request read: a request line and headers, with room for
/// the longest search a person types. A GET has no body.
pub const MAX_REQUEST: usize = 8 * 1024;

/// What may change on a reload.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Who may see the pages; others get 403.
    pub allow: Vec<Cidr>,
    /// Whether the page and `/users.json` show users' IP addresses.
    pub show_addresses: bool,
    /// The names the pages answer to in a request's Host, besides IP
    /// addresses and `localhost`.
    pub hosts: Vec<String>,
}

impl Policy {
    fn allows(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }

    /// Whether a request's Host names this server: an IP address,
    /// `localhost`, or a name of `http-host`. Any other name is how a web
    /// page whose domain was rebound to 127.0.0.1 would reach the pages
    /// from the administrator's own browser (DNS rebinding).
    fn answers_to(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            // HTTP/1.0 has no Host; its clients are scripts, not pages.
            return true;
        };
        let name = match host.strip_prefix('[') {
            Some(v6) => {
                return v6
                    .split(']')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
            }
            None => host.rsplit_once(':').map_or(host, |(n, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    n
                } else {
                    host
                }
            }),
        };
        name.parse::<std::net::Ipv4Addr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// How the HTTP side is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: Policy,
    pub threads: usize,
    pub max_connections: usize,
    pub timeout: Duration,
}

/// What the workers share.
struct State {
    shared: Arc<Shared>,
    policy: RwLock<Policy>,
    registry: prometheus_client::registry::Registry,
    timeout: Duration,
    /// Set when the server begins to stop: `/healthz` answers 503.
    stopping: Arc<AtomicBool>,
}

/// The running HTTP side.
pub struct HttpServer {
    state: Arc<State>,
    addrs: Vec<SocketAddr>,
    done: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    jobs: Option<Sender<(TcpStream, SocketAddr)>>,
}

impl HttpServer {
    /// Serves on `listeners`. `stopping` is the LDAP server's flag, set
    /// when it begins to stop.
    pub fn start(
        listeners: Vec<TcpListener>,
        shared: Arc<Shared>,
        settings: &Settings,
        stopping: Arc<AtomicBool>,
    ) -> io::Result<HttpServer> {
        let state = Arc::new(State {
            registry: prometheus::registry(shared.clone()),
            shared,
            policy: RwLock::new(settings.policy.clone()),
            timeout: settings.timeout,
            stopping,
        });
        let (jobs, inbox) = crossbeam_channel::bounded(settings.max_connections);
        let done = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for _ in 0..settings.threads.max(1) {
            let (state, inbox, done) = (state.clone(), inbox.clone(), done.clone());
            workers.push(
                std::thread::Builder::new()
                    .name("ilsd-http".into())
                    .spawn(move || work(&state, &inbox, &done))?,
            );
        }
        let mut addrs = Vec::new();
        let mut acceptors = Vec::new();
        for listener in listeners {
            let addr = listener.local_addr()?;
            addrs.push(addr);
            let (state, jobs, done) = (state.clone(), jobs.clone(), done.clone());
            acceptors.push(
                std::thread::Builder::new()
                    .name(format!("ilsd-http-accept-{addr}"))
                    .spawn(move || accept(&listener, &state, &jobs, &done))?,
            );
            log::info!("http: listening on {addr}");
        }
        Ok(HttpServer {
            state,
            addrs,
            done,
            acceptors,
            workers,
            jobs: Some(jobs),
        })
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Puts a new policy in force (a reload).
    pub fn set_policy(&self, policy: Policy) {
        *self.state.policy.write() = policy;
    }

    /// Stops accepting, lets the workers finish what they hold, and
    /// joins every thread.
    pub fn stop(mut self) {
        self.done.store(true, Ordering::SeqCst);
        for addr in &self.addrs {
            let _ = TcpStream::connect_timeout(&wake_address(*addr), Duration::from_secs(1));
        }
        for handle in self.acceptors.drain(..) {
            let _ = handle.join();
        }
        self.jobs.take();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Where to connect to wake an acceptor blocked on `addr`.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

fn accept(
    listener: &TcpListener,
    state: &State,
    jobs: &Sender<(TcpStream, SocketAddr)>,
    done: &AtomicBool,
) {
    let (full, failures, refused) = (Throttle::new(), Throttle::new(), Throttle::new());
    loop {
        let accepted = listener.accept();
        if done.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                failures.warn(|n| format!("http: accept failed ({n} since the last warning): {e}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        // Who may not see the pages is answered here, before it can take
        // a worker or a place in the queue.
        if !state.policy.read().allows(peer.ip()) {
            refused.warn(|n| {
                format!("http: {peer} refused: not in http-allow ({n} since the last warning)")
            });
            answer_and_close(&stream, &Response::text(403, "Forbidden", "forbidden\n"));
            continue;
        }
        match jobs.try_send((stream, peer)) {
            Ok(()) => {}
            Err(TrySendError::Full((stream, peer))) => {
                full.warn(|n| {
                    format!("http: {peer} refused: every worker busy ({n} since the last warning)")
                });
                answer_and_close(
                    &stream,
                    &Response::text(503, "Service Unavailable", "busy\n"),
                );
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Answers a request that is not read, and closes after taking in (for a
/// moment) what the client sent, so that the close does not reset the
/// connection under the answer.
fn answer_and_close(stream: &TcpStream, response: &Response) {
    respond(
        stream,
        response,
        false,
        Instant::now() + Duration::from_secs(1),
    );
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut left = MAX_REQUEST;
    while left > 0 {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn work(state: &State, inbox: &Receiver<(TcpStream, SocketAddr)>, done: &AtomicBool) {
    for (stream, peer) in inbox.iter() {
        // A stop closes what still waits, unread.
        if done.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        // A bug in one page must not cost the pool a worker.
        let served =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(state, &stream, peer)));
        if served.is_err() {
            log::error!("http: {peer}: closed after an internal error");
        }
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// A request as far as the pages need it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub host: Option<String>,
}

/// Why no request could be read.
enum ReadError {
    /// Closed, timed out or broken: nothing to answer.
    Gone,
    TooLarge,
    Malformed,
}

/// Reads one request's head within `timeout`, whatever the pace.
fn read_request(mut stream: &TcpStream, timeout: Duration) -> Result<Request, ReadError> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Gone);
        }
        let _ = stream.set_read_timeout(Some(left));
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(ReadError::Gone),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let target = parsed.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let host = parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
                return Ok(Request {
                    method: parsed.method.unwrap_or_default().to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    host,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => {}
            Ok(httparse::Status::Partial) => return Err(ReadError::TooLarge),
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
            Err(_) => return Err(ReadError::Malformed),
        }
    }
}

/// An answer.
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Writes `response`, with the body unless the request was a HEAD, all
/// of it by `deadline`: a client that reads slowly is cut off there.
fn respond(mut stream: &TcpStream, response: &Response, head_only: bool, deadline: Instant) {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n\r\n",
        response.status,
        response.reason,
        response.content_type,
        response.body.len()
    );
    let body: &[u8] = if head_only { &[] } else { &response.body };
    for part in [head.as_bytes(), body] {
        for chunk in part.chunks(16 * 1024) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero()
                || stream.set_write_timeout(Some(left)).is_err()
                || stream.write_all(chunk).is_err()
            {
                return;
            }
        }
    }
    let _ = stream.flush();
}

fn serve(state: &State, stream: &TcpStream, peer: SocketAddr) {
    let request = match read_request(stream, state.timeout) {
        Ok(r) => r,
        Err(ReadError::Gone) => return,
        Err(ReadError::TooLarge) => {
            let body = "request too large\n";
            return answer_and_close(
                stream,
                &Response::text(431, "Request Header Fields Too Large", body),
            );
        }
        Err(ReadError::Malformed) => {
            return answer_and_close(stream, &Response::text(400, "Bad Request", "bad request\n"));
        }
    };
    let deadline = Instant::now() + state.timeout;
    let policy = state.policy.read().clone();
    if !policy.answers_to(request.host.as_deref()) {
        log::debug!(
            "http: {peer} refused: Host {:?} is not this server's",
            request.host
        );
        let body = "this server does not answer to that name (http-host)\n";
        return respond(
            stream,
            &Response::text(421, "Misdirected Request", body),
            false,
            deadline,
        );
    }
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return answer_and_close(
            stream,
            &Response::text(405, "Method Not Allowed", "only GET and HEAD\n"),
        );
    }
    let response = route(state, &policy, &request);
    log::debug!(
        "http: {peer} {} {} {}",
        request.method,
        request.path,
        response.status
    );
    respond(stream, &response, head_only, deadline);
}

fn route(state: &State, policy: &Policy, request: &Request) -> Response {
    match request.path.as_str() {
        "/" => page::html(&state.shared, policy.show_addresses, &request.query),
        "/users.json" => page::json(&state.shared, policy.show_addresses, &request.query),
        "/metrics" => Response {
            status: 200,
            reason: "OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: prometheus::render(&state.registry).into_bytes(),
        },
        "/healthz" if state.stopping.load(Ordering::SeqCst) => {
            Response::text(503, "Service Unavailable", "stopping\n")
        }
        "/healthz" => Response::text(200, "OK", "ok\n"),
        _ => Response::text(404, "Not Found", "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_takes_ipv4_mapped_addresses_as_ipv4() {
        let policy = Policy {
            allow: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            show_addresses: false,
            hosts: Vec::new(),
        };
        assert!(policy.allows("127.0.0.2".parse().unwrap()));
        assert!(policy.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.allows("192.0.2.1".parse().unwrap()));
        assert!(!policy.allows("::1".parse().unwrap()));
    }

    #[test]
    fn the_pages_answer_to_addresses_localhost_and_the_names_given() {
        let policy = Policy {
            allow: Vec::new(),
            show_addresses: false,
            hosts: vec!["ils.example.org".into()],
        };
        for host in [
            None,
            Some("127.0.0.1"),
            Some("127.0.0.1:8002"),
            Some("[::1]:8002"),
            Some("[::1]"),
            Some("localhost:8002"),
            Some("ILS.example.org"),
            Some("ils.example.org:80"),
        ] {
            assert!(policy.answers_to(host), "{host:?}");
        }
        for host in [
            Some("evil.example.com"),
            Some("evil.example.com:8002"),
            Some("[evil]"),
            Some(""),
        ] {
            assert!(!policy.answers_to(host), "{host:?}");
        }
    }
}
