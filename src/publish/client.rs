//! A small blocking LDAP client for a domain controller: connect over
//! LDAPS, or LDAP with StartTLS (RFC 4511 4.14), or plain LDAP when the
//! administrator asked for it; a simple bind; Search, Add and Modify.
//!
//! Messages are encoded and decoded by ldap3_proto's codec over a std
//! `TcpStream`, wrapped in rustls for TLS: no async runtime. Every read
//! and write has the timeout the caller gives, so a domain controller
//! that stops answering costs a bounded wait. Used by the publication
//! thread and by `ilsd --list-servers` on the main thread.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapAddRequest, LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest,
    LdapFilter, LdapModify, LdapModifyRequest, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio_util::codec::{Decoder, Encoder};

/// The OID of the StartTLS extended operation (RFC 4511 4.14.1).
const START_TLS: &str = "1.3.6.1.4.1.1466.20037";

/// The largest message accepted from the server: a search of one
/// container's service instances, with room to spare.
const MAX_MESSAGE: usize = 4 << 20;

/// The most entries a search keeps: far more ILS servers than any domain
/// has, and a bound on what a hostile server can make the client hold.
pub const MAX_ENTRIES: usize = 10_000;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
    /// LDAP, then StartTLS before the bind (`ldap://`).
    StartTls,
    /// No TLS at all (`ldap://` with `publish-insecure yes`).
    Plain,
}

/// Where a domain controller is: `ldaps://host[:port]` or
/// `ldap://host[:port]`, the host a name, an IPv4 address or a bracketed
/// IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    pub host: String,
    pub port: u16,
    pub ldaps: bool,
}

impl Uri {
    pub fn parse(text: &str) -> Result<Uri, String> {
        let (ldaps, rest) = if let Some(rest) = text.strip_prefix("ldaps://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("ldap://") {
            (false, rest)
        } else {
            return Err(format!("'{text}' is not an ldaps:// or ldap:// URI"));
        };
        let rest = rest.trim_end_matches('/');
        let default_port = if ldaps { 636 } else { 389 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{text}': no ']' after the IPv6 address"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(format!("'{text}': ':port' expected after ']'")),
            }
        } else {
            match rest.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(format!("'{text}': an IPv6 address goes in brackets"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', '?', '@']) {
            return Err(format!("'{text}' has no host name, or more than one"));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("'{text}': '{p}' is not a port"))?,
            None => default_port,
        };
        Ok(Uri {
            host: host.to_string(),
            port,
            ldaps,
        })
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.ldaps { "ldaps" } else { "ldap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Why an exchange with the domain controller failed.
#[derive(Debug)]
pub enum Error {
    /// It could not be reached, or the connection broke or timed out.
    Io(io::Error),
    /// The TLS set-up failed: no trusted CA, or a bad certificate.
    Tls(String),
    /// It answered an operation with an error.
    Refused {
        op: &'static str,
        code: LdapResultCode,
        message: String,
    },
    /// It sent something that is not the answer asked for.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Refused { op, code, message } if message.is_empty() => {
                write!(f, "{op} refused: {code:?}")
            }
            Error::Refused { op, code, message } => {
                write!(
                    f,
                    "{op} refused: {code:?} ({})",
                    message.trim_end_matches('\0')
                )
            }
            Error::Protocol(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl Error {
    /// The result code when the server refused.
    pub fn code(&self) -> Option<&LdapResultCode> {
        match self {
            Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The certificate authorities a server's certificate must chain to:
/// those of `ca_file` (PEM), or else the system's store.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store may hold a certificate rustls cannot
                // use; the others still count.
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(Error::Tls(match ca_file {
            Some(path) => format!("{} holds no CA certificate", path.display()),
            None => "the system has no CA certificates (set publish-ca-file)".into(),
        }));
    }
    // ring, not aws-lc-rs: it builds with a C compiler alone, on every
    // architecture a Raspberry Pi or a distribution has. What rustls
    // deprecates it for is post-quantum key exchange, which no domain
    // controller's LDAPS offers.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One connection to a directory server.
pub struct Client {
    stream: Stream,
    codec: LdapCodec,
    input: BytesMut,
    last_id: i32,
    timeout: Duration,
    /// When the answer to the request in flight must have come, whole:
    /// a server that keeps sending without answering is cut off too.
    deadline: Instant,
}

impl Client {
    /// Connects to `uri`, each network step bounded by `timeout`, and
    /// sets up TLS as `security` says (verified against `tls`).
    pub fn connect(
        uri: &Uri,
        security: Security,
        tls: Option<&Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Client, Error> {
        let tcp = dial(uri, timeout)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        let mut client = Client {
            stream: Stream::Plain(tcp),
            codec: LdapCodec::new(Some(MAX_MESSAGE), None),
            input: BytesMut::new(),
            last_id: 0,
            timeout,
            deadline: Instant::now() + timeout,
        };
        match security {
            Security::Plain => {}
            Security::Ldaps => client.start_tls(uri, tls)?,
            Security::StartTls => {
                client.call(
                    "StartTLS",
                    LdapOp::ExtendedRequest(LdapExtendedRequest {
                        name: START_TLS.into(),
                        value: None,
                    }),
                )?;
                // Bytes that came after the StartTLS answer, before the
                // handshake, are not protected by it: someone in the
                // middle could have put answers there (the STARTTLS
                // injection of CVE-2011-0411). Nothing may be waiting.
                if !client.input.is_empty() {
                    return Err(Error::Protocol(
                        "data after the StartTLS answer, before TLS began".into(),
                    ));
                }
                client.start_tls(uri, tls)?;
            }
        }
        Ok(client)
    }

    fn start_tls(
        &mut self,
        uri: &Uri,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<(), Error> {
        let config = tls.ok_or_else(|| Error::Tls("no TLS settings".into()))?;

        let name = ServerName::try_from(uri.host.clone())
            .map_err(|e| Error::Tls(format!("'{}': {e}", uri.host)))?;
        let conn = rustls::ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| Error::Tls(e.to_string()))?;
        let Stream::Plain(tcp) = &self.stream else {
            return Err(Error::Tls("TLS is already on".into()));
        };
        let tcp = tcp.try_clone()?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake now, so that a bad certificate is a TLS error
        // and not a failure of whatever is sent first.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidData => Error::Tls(e.to_string()),
                    _ => timed_out(e, self.timeout),
                })?;
        }
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    /// A simple bind (RFC 4511 4.2) as `who`, a DN or `user@realm`.
    pub fn bind(&mut self, who: &str, password: &str) -> Result<(), Error> {
        self.call(
            "bind",
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: who.into(),
                cred: LdapBindCred::Simple(password.into()),
            }),
        )
        .map(drop)
    }

    /// Searches, and returns the entries found.
    pub fn search(
        &mut self,
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> Result<Vec<LdapSearchResultEntry>, Error> {
        let id = self.send(LdapOp::SearchRequest(LdapSearchRequest {
            base: base.into(),
            scope,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: attrs.iter().map(|a| a.to_string()).collect(),
        }))?;
        let mut entries = Vec::new();
        loop {
            let msg = self.receive(id)?;
            match msg.op {
                LdapOp::SearchResultEntry(_) if entries.len() >= MAX_ENTRIES => {
                    return Err(Error::Protocol(format!("more than {MAX_ENTRIES} entries")));
                }
                LdapOp::SearchResultEntry(entry) => entries.push(entry),
                LdapOp::SearchResultReference(_) => {}
                LdapOp::SearchResultDone(result) => {
                    return check("search", result).map(|_| entries);
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    pub fn add(&mut self, dn: &str, attributes: Vec<LdapPartialAttribute>) -> Result<(), Error> {
        self.call(
            "add",
            LdapOp::AddRequest(LdapAddRequest {
                dn: dn.into(),
                attributes,
            }),
        )
        .map(drop)
    }

    pub fn modify(&mut self, dn: &str, changes: Vec<LdapModify>) -> Result<(), Error> {
        self.call(
            "modify",
            LdapOp::ModifyRequest(LdapModifyRequest {
                dn: dn.into(),
                changes,
            }),
        )
        .map(drop)
    }

    /// Ends the session politely; the connection closes when dropped.
    pub fn unbind(mut self) {
        let _ = self.send(LdapOp::UnbindRequest);
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    /// Sends one request and reads its single result.
    fn call(&mut self, what: &'static str, op: LdapOp) -> Result<LdapResult, Error> {
        let id = self.send(op)?;
        let msg = self.receive(id)?;
        let result = match msg.op {
            LdapOp::BindResponse(r) => r.res,
            LdapOp::AddResponse(r) | LdapOp::ModifyResponse(r) | LdapOp::DelResponse(r) => r,
            LdapOp::ExtendedResponse(r) => r.res,
            other => return Err(unexpected(&other)),
        };
        check(what, result)
    }

    fn send(&mut self, op: LdapOp) -> Result<i32, Error> {
        self.last_id += 1;
        let msg = LdapMsg {
            msgid: self.last_id,
            op,
            ctrl: Vec::new(),
        };
        let mut out = BytesMut::new();
        self.codec.encode(msg, &mut out)?;
        self.deadline = Instant::now() + self.timeout;
        self.stream
            .write_all(&out)
            .and_then(|()| self.stream.flush())
            .map_err(|e| timed_out(e, self.timeout))?;
        Ok(self.last_id)
    }

    /// Reads messages until the one answering `id`; a Notice of
    /// Disconnection ends the session.
    fn receive(&mut self, id: i32) -> Result<LdapMsg, Error> {
        loop {
            while let Some(msg) = self.codec.decode(&mut self.input)? {
                if msg.msgid == id {
                    return Ok(msg);
                }
                if msg.msgid == 0 {
                    return Err(match msg.op {
                        LdapOp::ExtendedResponse(r) => Error::Refused {
                            op: "session",
                            code: r.res.code,
                            message: r.res.message,
                        },
                        other => unexpected(&other),
                    });
                }
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out(io::ErrorKind::TimedOut.into(), self.timeout));
            }
            self.stream.tcp().set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| timed_out(e, self.timeout))?;
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A socket timeout said as one (Linux reports it as EAGAIN).
fn timed_out(e: io::Error, timeout: Duration) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {}s", timeout.as_secs_f32()),
        )),
        _ => Error::Io(e),
    }
}

/// Connects to the first of the URI's addresses that answers.
fn dial(uri: &Uri, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = (uri.host.as_str(), uri.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

fn check(op: &'static str, result: LdapResult) -> Result<LdapResult, Error> {
    match result.code {
        LdapResultCode::Success => Ok(result),
        code => Err(Error::Refused {
            op,
            code,
            message: result.message,
        }),
    }
}

fn unexpected(op: &LdapOp) -> Error {
    let name = format!("{op:?}");
    Error::Protocol(
        name.split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_host_port_and_scheme() {
        let u = Uri::parse("ldaps://dc.example.org").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.ldaps),
            ("dc.example.org", 636, true)
        );
        let u = Uri::parse("ldap://dc.example.org:3268/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.ldaps),
            ("dc.example.org", 3268, false)
        );
        let u = Uri::parse("ldaps://[::1]:1636").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1636));
        assert_eq!(u.to_string(), "ldaps://[::1]:1636");
        assert_eq!(Uri::parse("ldap://[::1]").unwrap().port, 389);
        for bad in [
            "dc.example.org",
            "http://dc",
            "ldaps://",
            "ldap://dc:0",
            "ldap://dc:x",
            "ldap://[::1",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    /// A server that answers whatever comes first with `answer`.
    fn fake_server(answer: Vec<u8>) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 1024]);
            let _ = s.write_all(&answer);
            std::thread::sleep(Duration::from_secs(2));
        });
        port
    }

    fn encoded(id: i32, op: LdapOp) -> Vec<u8> {
        let mut out = BytesMut::new();
        LdapCodec::default()
            .encode(
                LdapMsg {
                    msgid: id,
                    op,
                    ctrl: Vec::new(),
                },
                &mut out,
            )
            .unwrap();
        out.to_vec()
    }

    #[test]
    fn answers_slipped_in_before_tls_are_refused() {
        let ok = LdapResult {
            code: LdapResultCode::Success,
            matcheddn: String::new(),
            message: String::new(),
            referral: Vec::new(),
        };
        let mut answer = encoded(
            1,
            LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
                res: ok.clone(),
                name: None,
                value: None,
            }),
        );
        // A forged answer to the bind that would follow.
        answer.extend(encoded(
            2,
            LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
                res: ok,
                saslcreds: None,
            }),
        ));
        let port = fake_server(answer);
        let uri = Uri::parse(&format!("ldap://127.0.0.1:{port}")).unwrap();
        let e = Client::connect(&uri, Security::StartTls, None, Duration::from_secs(2))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Protocol(_)), "{e}");
    }

    #[test]
    fn a_server_that_never_answers_is_given_up_on_at_the_deadline() {
        let port = fake_server(Vec::new());
        let uri = Uri::parse(&format!("ldap://127.0.0.1:{port}")).unwrap();
        let mut c =
            Client::connect(&uri, Security::Plain, None, Duration::from_millis(500)).unwrap();
        let started = std::time::Instant::now();
        let e = c.bind("cn=x", "y").unwrap_err();
        assert!(e.to_string().contains("no answer within"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_missing_ca_file_is_a_tls_error() {
        let e = tls_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(e, Error::Tls(_)), "{e}");
    }

    #[test]
    fn an_unreachable_server_is_an_io_error_within_the_timeout() {
        // A port nothing listens on: refused at once.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let uri = Uri::parse(&format!("ldap://127.0.0.1:{port}")).unwrap();
        let started = std::time::Instant::now();
        let e = Client::connect(&uri, Security::Plain, None, Duration::from_secs(2))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Io(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
