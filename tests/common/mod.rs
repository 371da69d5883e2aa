//! Test helpers: a real server on 127.0.0.1:0 that stops when dropped, and
//! a raw LDAP client that writes requests byte for byte the way old
//! clients do (LDAPv2 binds, Windows' four-byte lengths, Latin-1 names).

#![allow(dead_code)]

pub mod daemon;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ilsd::server::Config;
use ilsd::server::Server;
use ldap3_lber::parse::Parser;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};

/// A server for one test.
pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    pub fn with(change: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 2,
            min_ttl: 1,
            ..Config::default()
        };
        change(&mut config);
        let server = Server::start(&config).expect("server starts");
        let addr = server.local_addr();
        TestServer { server, addr }
    }

    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    pub fn ldap(&self) -> ldap3::LdapConn {
        ldap3::LdapConn::new(&self.url()).expect("ldap3 connects")
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }
}

/// BER with Windows' long-form lengths (`84 xx xx xx xx`) on every
/// constructed element, as wldap32 writes them.
pub fn cons(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = vec![tag, 0x84];
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

/// A primitive element with a short or minimal long-form length.
pub fn prim(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else if len < 0x10000 {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.push(0x84);
        out.extend((len as u32).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

pub fn octets(s: &[u8]) -> Vec<u8> {
    prim(0x04, s)
}

pub fn int(tag: u8, v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    prim(tag, &bytes[start..])
}

/// An LDAPMessage.
pub fn message(msgid: i32, op: Vec<u8>) -> Vec<u8> {
    cons(0x30, &[int(0x02, msgid as i64), op])
}

pub fn bind_v2(msgid: i32) -> Vec<u8> {
    message(
        msgid,
        cons(0x60, &[int(0x02, 2), octets(b""), prim(0x80, b"")]),
    )
}

pub fn bind_simple(msgid: i32, version: i64, dn: &[u8], password: &[u8]) -> Vec<u8> {
    message(
        msgid,
        cons(
            0x60,
            &[int(0x02, version), octets(dn), prim(0x80, password)],
        ),
    )
}

pub fn unbind(msgid: i32) -> Vec<u8> {
    message(msgid, prim(0x42, b""))
}

pub fn attribute(name: &[u8], values: &[&[u8]]) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = values.iter().map(|v| octets(v)).collect();
    cons(0x30, &[octets(name), cons(0x31, &vals)])
}

pub fn add(msgid: i32, dn: &[u8], attrs: &[(&[u8], &[&[u8]])]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = attrs.iter().map(|(n, v)| attribute(n, v)).collect();
    message(msgid, cons(0x68, &[octets(dn), cons(0x30, &list)]))
}

/// One change of a Modify: operation (0 add, 1 delete, 2 replace), name, values.
pub type RawChange<'a> = (i64, &'a [u8], &'a [&'a [u8]]);

pub fn modify(msgid: i32, dn: &[u8], changes: &[RawChange<'_>]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = changes
        .iter()
        .map(|(op, n, v)| cons(0x30, &[int(0x0a, *op), attribute(n, v)]))
        .collect();
    message(msgid, cons(0x66, &[octets(dn), cons(0x30, &list)]))
}

/// Adds `count` people `cn=bigN` under ou=Dynamic, each with a comment
/// of `bytes` bytes: answers far larger than the socket buffers.
pub fn add_large_people(raw: &mut Raw, count: i32, bytes: usize) {
    let comment = vec![b'c'; bytes];
    for i in 0..count {
        let dn = format!("cn=big{i},ou=Dynamic,o=Intranet");
        let attrs: &[(&[u8], &[&[u8]])] =
            &[(b"objectClass", &[b"rtPerson"]), (b"comment", &[&comment])];
        assert_eq!(raw.code(&add(i + 1, dn.as_bytes(), attrs)), SUCCESS);
    }
}

pub fn delete(msgid: i32, dn: &[u8]) -> Vec<u8> {
    message(msgid, prim(0x4a, dn))
}

/// Filters, encoded.
pub mod f {
    use super::*;
    pub fn and(parts: &[Vec<u8>]) -> Vec<u8> {
        cons(0xa0, parts)
    }
    pub fn or(parts: &[Vec<u8>]) -> Vec<u8> {
        cons(0xa1, parts)
    }
    pub fn not(part: Vec<u8>) -> Vec<u8> {
        cons(0xa2, &[part])
    }
    pub fn eq(a: &[u8], v: &[u8]) -> Vec<u8> {
        cons(0xa3, &[octets(a), octets(v)])
    }
    pub fn ge(a: &[u8], v: &[u8]) -> Vec<u8> {
        cons(0xa5, &[octets(a), octets(v)])
    }
    pub fn le(a: &[u8], v: &[u8]) -> Vec<u8> {
        cons(0xa6, &[octets(a), octets(v)])
    }
    pub fn approx(a: &[u8], v: &[u8]) -> Vec<u8> {
        cons(0xa8, &[octets(a), octets(v)])
    }
    pub fn present(a: &[u8]) -> Vec<u8> {
        prim(0x87, a)
    }
    pub fn sub(a: &[u8], initial: Option<&[u8]>, any: &[&[u8]], last: Option<&[u8]>) -> Vec<u8> {
        let mut parts = Vec::new();
        if let Some(i) = initial {
            parts.push(prim(0x80, i));
        }
        for a in any {
            parts.push(prim(0x81, a));
        }
        if let Some(l) = last {
            parts.push(prim(0x82, l));
        }
        cons(0xa4, &[octets(a), cons(0x30, &parts)])
    }
}

/// A SearchRequest: scope 0 base, 1 one-level, 2 subtree.
pub fn search(msgid: i32, base: &[u8], scope: i64, filter: Vec<u8>, attrs: &[&[u8]]) -> Vec<u8> {
    search_full(msgid, base, scope, 0, 0, false, filter, attrs)
}

#[allow(clippy::too_many_arguments)]
pub fn search_full(
    msgid: i32,
    base: &[u8],
    scope: i64,
    size_limit: i64,
    time_limit: i64,
    types_only: bool,
    filter: Vec<u8>,
    attrs: &[&[u8]],
) -> Vec<u8> {
    let list: Vec<Vec<u8>> = attrs.iter().map(|a| octets(a)).collect();
    message(
        msgid,
        cons(
            0x63,
            &[
                octets(base),
                int(0x0a, scope),
                int(0x0a, 0),
                int(0x02, size_limit),
                int(0x02, time_limit),
                prim(0x01, &[if types_only { 0xff } else { 0 }]),
                filter,
                cons(0x30, &list),
            ],
        ),
    )
}

/// A SearchResultEntry with the raw bytes of its DN, names and values.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub dn: Vec<u8>,
    pub attrs: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

impl RawEntry {
    pub fn get(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.get(name).and_then(|v| v.first()).map(Vec::as_slice)
    }

    pub fn names(&self) -> Vec<String> {
        self.attrs
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect()
    }
}

/// One response, with raw bytes where it matters.
#[derive(Debug)]
pub enum Response {
    Entry(i32, RawEntry),
    Result {
        msgid: i32,
        tag: u64,
        code: i64,
        matched: Vec<u8>,
        message: Vec<u8>,
    },
    Extended {
        msgid: i32,
        code: i64,
        name: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    },
}

/// A raw LDAP connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::over(TcpStream::connect(addr).expect("connects"))
    }

    /// A client on a connected stream, which fails the test when the
    /// server neither answers nor closes within ten seconds.
    fn over(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects from another loopback address (all of 127.0.0.0/8 is
    /// this machine), to play a second client.
    pub fn connect_from(addr: SocketAddr, from: std::net::Ipv4Addr) -> Raw {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket,
        };
        use std::os::fd::AsRawFd;
        let SocketAddr::V4(to) = addr else {
            panic!("an IPv4 server address");
        };
        let sock = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("a socket");
        let [a, b, c, d] = from.octets();
        bind(sock.as_raw_fd(), &SockaddrIn::new(a, b, c, d, 0)).expect("binds the source address");
        connect(sock.as_raw_fd(), &SockaddrIn::from(to)).expect("connects");
        Raw::over(TcpStream::from(sock))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next response, or None when the server closed the connection.
    /// A server that neither answers nor closes within the read timeout
    /// fails the test.
    pub fn recv(&mut self) -> Option<Response> {
        loop {
            if let Ok((rest, tag)) = Parser::new(64).parse(&self.buf) {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                return Some(parse_response(tag));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Err(e) if timed_out(&e) => panic!("neither an answer nor a close: {e}"),
                Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a request and reads responses up to its final result.
    pub fn call(&mut self, bytes: &[u8]) -> (Vec<RawEntry>, Response) {
        self.send(bytes);
        self.collect()
    }

    /// Reads entries up to a final result.
    pub fn collect(&mut self) -> (Vec<RawEntry>, Response) {
        let mut entries = Vec::new();
        loop {
            match self
                .recv()
                .expect("a response before the connection closes")
            {
                Response::Entry(_, e) => entries.push(e),
                other => return (entries, other),
            }
        }
    }

    /// Sends a search and returns its entries; the search must succeed.
    pub fn found(&mut self, bytes: &[u8]) -> Vec<RawEntry> {
        let (entries, done) = self.call(bytes);
        assert!(
            matches!(done, Response::Result { code: 0, .. }),
            "the search failed: {done:?}"
        );
        entries
    }

    /// Sends a request and returns its result code.
    pub fn code(&mut self, bytes: &[u8]) -> i64 {
        match self.call(bytes).1 {
            Response::Result { code, .. } | Response::Extended { code, .. } => code,
            Response::Entry(..) => unreachable!(),
        }
    }

    /// Whether the server has closed the connection (reads EOF or a
    /// reset) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Err(e) => !timed_out(&e),
            Ok(_) => false,
        }
    }
}

/// Whether a read failed for its timeout rather than for the connection.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn parse_response(tag: ldap3_lber::structure::StructureTag) -> Response {
    use ldap3_lber::structure::PL;
    let PL::C(parts) = tag.payload else {
        panic!("message is not a sequence")
    };
    let msgid = match &parts[0].payload {
        PL::P(b) => b.iter().fold(0i64, |a, &x| (a << 8) | x as i64) as i32,
        _ => panic!("bad msgid"),
    };
    let op = &parts[1];
    let PL::C(fields) = &op.payload else {
        panic!("op is not constructed: {op:?}")
    };
    let bytes = |t: &ldap3_lber::structure::StructureTag| match &t.payload {
        PL::P(b) => b.clone(),
        PL::C(_) => panic!("expected a primitive"),
    };
    if op.id == 4 {
        let dn = bytes(&fields[0]);
        let PL::C(list) = &fields[1].payload else {
            panic!()
        };
        let attrs = list
            .iter()
            .map(|a| {
                let PL::C(pair) = &a.payload else { panic!() };
                let PL::C(vals) = &pair[1].payload else {
                    panic!()
                };
                (bytes(&pair[0]), vals.iter().map(bytes).collect())
            })
            .collect();
        return Response::Entry(msgid, RawEntry { dn, attrs });
    }
    let code = bytes(&fields[0])
        .iter()
        .fold(0i64, |a, &x| (a << 8) | x as i64);
    if op.id == 24 {
        let find = |id: u64| {
            fields
                .iter()
                .find(|f| f.id == id && f.class == ldap3_lber::common::TagClass::Context)
                .map(bytes)
        };
        return Response::Extended {
            msgid,
            code,
            name: find(10),
            value: find(11),
        };
    }
    Response::Result {
        msgid,
        tag: op.id,
        code,
        matched: bytes(&fields[1]),
        message: bytes(&fields[2]),
    }
}

/// Decodes a response with ldap3_proto, for checks that need its types.
pub fn decode_with_ldap3_proto(bytes: &[u8]) -> LdapMsg {
    let (_, tag) = Parser::new(64).parse(bytes).expect("BER");
    LdapMsg::try_from(tag).expect("LDAP")
}

pub const SUCCESS: i64 = 0;
pub fn code(c: LdapResultCode) -> i64 {
    c as i64
}

pub fn is_notice(op: &LdapOp) -> bool {
    matches!(op, LdapOp::ExtendedResponse(e) if e.name.as_deref() == Some("1.3.6.1.4.1.1466.20036"))
}

/// The python of a virtual environment with the clients nobody here
/// wrote (python ldap3, pycryptodome, impacket, prometheus_client), made with pip once per
/// test binary; a test that needs it fails, saying why, when pip cannot
/// reach the package index.
pub fn python_with_clients() -> &'static std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
        let python = venv.join("bin/python");
        let ready = || {
            std::process::Command::new(&python)
                .args(["-c", "import ldap3, impacket, Crypto, prometheus_client"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ready() {
            let made = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
            assert!(made.is_ok_and(|s| s.success()), "python3 -m venv failed: python3 with venv is needed");
            let pip = std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "ldap3", "pycryptodome", "impacket", "prometheus_client"])
                .output()
                .unwrap();
            assert!(
                pip.status.success() && ready(),
                "cannot install python ldap3, pycryptodome, impacket and prometheus_client with pip (is the package index reachable?): {}",
                String::from_utf8_lossy(&pip.stderr)
            );
        }
        python
    })
}

/// Runs a Python script with the clients' python and arguments; returns
/// its standard output, failing the test with its errors.
pub fn run_python(script: &str, args: &[String]) -> String {
    let out = std::process::Command::new(python_with_clients())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
