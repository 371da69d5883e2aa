//! One client connection, served by one worker thread from accept to close.
//!
//! The connection owns the socket, the read buffer and the framing: it reads
//! into a `BytesMut`, cuts complete LDAPMessages off the front (several may
//! arrive in one read, one may arrive over many), hands each to the
//! dispatcher and writes back what the dispatcher produced, one write per
//! batch of requests. A frame that cannot be LDAP, or that announces more
//! than the maximum request size, ends the session with a Notice of
//! Disconnection. A client that stays silent, or trickles a request slower
//! than the idle timeout, is closed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ldap3_proto::LdapResultCode;

use tokio_util::codec::Decoder;

use crate::ops::{self, Outcome};
use crate::protocol::{RequestCodec, StreamError, notice_of_disconnection};
use crate::session::{Session, Shared};

/// Why a session ended, for the log.
#[derive(Debug)]
enum End {
    Unbind,
    Closed,
    Idle,
    ProtocolError(&'static str),
    TooLarge(usize),
    Io(io::ErrorKind),
}

/// Serves a connection until the client leaves, breaks the protocol, idles
/// out, or the server shuts the reading side down.
pub fn serve(shared: &Shared, stream: &TcpStream, peer: SocketAddr) {
    let started = Instant::now();
    let mut session = Session::new(peer);
    let end = run(shared, stream, &mut session);
    log::debug!(
        "{peer} closed after {:.3}s, {} operations ({})",
        started.elapsed().as_secs_f64(),
        session.ops,
        match &end {
            End::Unbind => "unbind".to_string(),
            End::Closed => "client closed".to_string(),
            End::Idle => "idle timeout".to_string(),
            End::ProtocolError(why) => format!("protocol error: {why}"),
            End::TooLarge(n) => format!("request of {n} bytes too large"),
            End::Io(kind) => format!("{kind}"),
        }
    );
}

fn run(shared: &Shared, mut stream: &TcpStream, session: &mut Session) -> End {
    // Small requests and answers: send each batch of responses at once.
    let _ = stream.set_nodelay(true);
    let mut input = BytesMut::with_capacity(4096);
    let mut out = BytesMut::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    // When the partial request now in the buffer began to arrive.
    let mut partial_since: Option<Instant> = None;
    // The read and write timeouts set on the socket.
    let mut timeouts = (Duration::ZERO, Duration::ZERO);
    loop {
        let (max_request, idle) = {
            let limits = shared.limits.read();
            (
                (limits.max_request_size, limits.max_request_elements),
                limits.idle_timeout,
            )
        };
        let mut codec = RequestCodec {
            max_request_size: max_request.0,
            max_elements: max_request.1,
        };
        loop {
            let request = match codec.decode(&mut input) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(StreamError::Protocol(why)) => {
                    return disconnect(
                        stream,
                        &mut out,
                        LdapResultCode::ProtocolError,
                        why,
                        End::ProtocolError(why),
                    );
                }
                Err(StreamError::TooLarge(n)) => {
                    return disconnect(
                        stream,
                        &mut out,
                        LdapResultCode::ProtocolError,
                        "request too large",
                        End::TooLarge(n),
                    );
                }
            };
            // A client that stopped reading fails the first write at the
            // timeout: that ends the session, so that it cannot hold the
            // worker (or a stopping server) for one timeout per write.
            let mut failed = None;
            let mut flush = |buf: &mut BytesMut| -> io::Result<()> {
                stream
                    .write_all(buf)
                    .inspect_err(|e| failed = Some(e.kind()))?;
                shared.counters.sent(buf.len());
                buf.clear();
                Ok(())
            };
            let outcome = ops::handle(shared, session, request, &mut out, &mut flush);
            if let Some(kind) = failed {
                return End::Io(kind);
            }
            if outcome == Outcome::Close {
                let _ = write_out(shared, stream, &mut out);
                return End::Unbind;
            }
        }
        if let Err(e) = write_out(shared, stream, &mut out) {
            return End::Io(e.kind());
        }
        partial_since = if input.is_empty() {
            None
        } else {
            partial_since.or(Some(Instant::now()))
        };
        // A request must arrive whole within the idle timeout of its first
        // byte: a trickling client holds a worker no longer than a silent one.
        let wait = match partial_since {
            Some(since) => match idle.checked_sub(since.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return End::Idle,
            },
            None => idle,
        };
        // Each is a system call: only made when the value changes, which
        // on a busy connection is seldom.
        let wait = wait.max(Duration::from_millis(1));
        if timeouts != (wait, idle) {
            let _ = stream.set_read_timeout(Some(wait));
            let _ = stream.set_write_timeout(Some(idle));
            timeouts = (wait, idle);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return End::Closed,
            Ok(n) => {
                shared.counters.received(n);
                input.extend_from_slice(&chunk[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return End::Idle;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return End::Io(e.kind()),
        }
        // Keep a long-lived connection's buffer from creeping.
        if input.is_empty() && input.capacity() > 64 * 1024 {
            input = BytesMut::with_capacity(4096);
        }
    }
}

fn write_out(shared: &Shared, mut stream: &TcpStream, out: &mut BytesMut) -> io::Result<()> {
    if !out.is_empty() {
        stream.write_all(out)?;
        shared.counters.sent(out.len());
        out.clear();
    }
    Ok(())
}

/// Sends a Notice of Disconnection after any responses already produced.
fn disconnect(
    stream: &TcpStream,
    out: &mut BytesMut,
    code: LdapResultCode,
    why: &str,
    end: End,
) -> End {
    notice_of_disconnection(out, code, why);
    // Not counted in bytes_out: a notice is not an answer.
    let _ = (&*stream).write_all(out);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    drain(stream);
    end
}

/// How long, and how much, a closing connection reads and discards.
const DRAIN_FOR: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 1 << 20;

/// Reads and discards what the client still sends, until it closes, for
/// at most [`DRAIN_FOR`] and [`DRAIN_BYTES`]. Closing a socket with unread
/// input makes the kernel reset the connection and drop the answers and
/// the Notice of Disconnection not yet delivered; a client that pipelines
/// requests after a malformed one would lose them.
fn drain(mut stream: &TcpStream) {
    let until = Instant::now() + DRAIN_FOR;
    let mut scratch = [0u8; 16 * 1024];
    let mut read = 0;
    while read < DRAIN_BYTES {
        let Some(left) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
}
