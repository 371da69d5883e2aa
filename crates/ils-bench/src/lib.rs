//! The load generator behind `ils-bench`: closed-loop workloads that ILS
//! clients generate, against any LDAP server, with latency statistics.
//!
//! Every connection has one request in flight at a time and records how
//! long each answer took. Connections kept open for the whole run are
//! driven a few to a thread ([`drive`]); those opened for every cycle are
//! a thread each. Requests are encoded with ilsd's own encoder (`ilsd::protocol`) and
//! answers read with a minimal BER walk, so that the client costs the
//! server's machine as little as possible.
//!
//! In `--standard` mode every workload uses plain RFC 4511 and RFC 2589
//! operations (DNs under ou=Dynamic, the refresh extended operation, no
//! `sttl` or `smodop`), so the same run works against OpenLDAP with dds.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use ilsd::protocol::{Encoder, Frame, LdapResult, Responder, frame_len, header, tag};

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    NetMeeting,
    Refresh,
    RefreshExt,
    Tapi,
    Find,
    List,
    Churn,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::NetMeeting,
        Workload::Refresh,
        Workload::RefreshExt,
        Workload::Tapi,
        Workload::Find,
        Workload::List,
        Workload::Churn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::NetMeeting => "netmeeting",
            Workload::Refresh => "refresh",
            Workload::RefreshExt => "refresh-ext",
            Workload::Tapi => "tapi",
            Workload::Find => "find",
            Workload::List => "list",
            Workload::Churn => "churn",
        }
    }

    /// Whether the workload runs on connections kept open (and bound once)
    /// for the whole run.
    pub fn persistent(self) -> bool {
        !matches!(self, Workload::NetMeeting | Workload::Churn)
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: SocketAddr,
    pub workload: Workload,
    pub connections: usize,
    pub duration: Duration,
    pub entries: usize,
    pub standard: bool,
    /// TTL, in seconds, of the entries registered for the run.
    pub ttl: u32,
    /// Threads that drive the persistent connections (see [`drive`]).
    pub threads: usize,
}

/// What a run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub workload: String,
    pub operations: u64,
    pub errors: u64,
    /// Entries received (the `list` workload's unit).
    pub entries: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Report {
    /// Builds a report from per-operation latencies in microseconds.
    pub fn from_latencies(
        workload: &str,
        mut latencies: Vec<u64>,
        errors: u64,
        entries: u64,
        seconds: f64,
    ) -> Report {
        latencies.sort_unstable();
        Report {
            workload: workload.to_string(),
            operations: latencies.len() as u64,
            errors,
            entries,
            seconds,
            p50_us: percentile(&latencies, 50.0),
            p90_us: percentile(&latencies, 90.0),
            p99_us: percentile(&latencies, 99.0),
            max_us: latencies.last().copied().unwrap_or(0),
        }
    }

    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.operations as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn entries_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.entries as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"workload\":\"{}\",\"operations\":{},\"errors\":{},\"entries\":{},\"seconds\":{:.3},\"ops_per_sec\":{:.1},\"entries_per_sec\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            self.workload,
            self.operations,
            self.errors,
            self.entries,
            self.seconds,
            self.ops_per_sec(),
            self.entries_per_sec(),
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.max_us
        )
    }

    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {:.0} ops/s, {} errors, latency p50 {} us, p90 {} us, p99 {} us, max {} us",
            self.workload,
            self.ops_per_sec(),
            self.errors,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.max_us
        );
        if self.entries > 0 {
            s.push_str(&format!(", {:.0} entries/s", self.entries_per_sec()));
        }
        s
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One change of a Modify: operation (0 add, 1 delete, 2 replace), name,
/// values.
type Change<'a> = (i64, &'a [u8], Vec<&'a [u8]>);

/// Encodes requests.
struct Req;

impl Req {
    fn message(msgid: i32, body: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let mut enc = Encoder::new(&mut buf);
        enc.start(0x30);
        enc.integer(0x02, msgid as i64);
        body(&mut enc);
        enc.end();
        buf.to_vec()
    }

    fn bind(version: i64) -> Vec<u8> {
        Req::message(1, |e| {
            e.start(0x60);
            e.integer(0x02, version);
            e.octets(b"");
            e.primitive(0x80, b"");
            e.end();
        })
    }

    fn unbind() -> Vec<u8> {
        Req::message(9, |e| e.primitive(0x42, b""))
    }

    fn add(dn: &[u8], attrs: &[(&[u8], Vec<&[u8]>)]) -> Vec<u8> {
        Req::message(2, |e| {
            e.start(0x68);
            e.octets(dn);
            e.start(0x30);
            for (name, values) in attrs {
                e.attribute(name, values.iter().copied());
            }
            e.end();
            e.end();
        })
    }

    fn modify(dn: &[u8], changes: &[Change<'_>]) -> Vec<u8> {
        Req::message(3, |e| {
            e.start(0x66);
            e.octets(dn);
            e.start(0x30);
            for (op, name, values) in changes {
                e.start(0x30);
                e.integer(0x0a, *op);
                e.attribute(name, values.iter().copied());
                e.end();
            }
            e.end();
            e.end();
        })
    }

    fn delete(dn: &[u8]) -> Vec<u8> {
        Req::message(4, |e| e.primitive(0x4a, dn))
    }

    /// A search with an AND of equality assertions (an empty list is
    /// `(cn=*)`).
    fn search(base: &[u8], scope: i64, equals: &[(&[u8], &[u8])], attrs: &[&[u8]]) -> Vec<u8> {
        Req::message(5, |e| {
            e.start(0x63);
            e.octets(base);
            e.integer(0x0a, scope);
            e.integer(0x0a, 0);
            e.integer(0x02, 0);
            e.integer(0x02, 0);
            e.primitive(0x01, &[0]);
            if equals.is_empty() {
                e.primitive(0x87, b"cn");
            } else {
                e.start(0xa0);
                for (a, v) in equals {
                    e.start(0xa3);
                    e.octets(a);
                    e.octets(v);
                    e.end();
                }
                e.end();
            }
            e.start(0x30);
            for a in attrs {
                e.octets(a);
            }
            e.end();
            e.end();
        })
    }

    fn refresh(dn: &[u8], ttl: u32) -> Vec<u8> {
        Req::message(6, |e| {
            e.start(0x77);
            e.primitive(0x80, b"1.3.6.1.4.1.1466.101.119.1");
            let mut value = BytesMut::new();
            let mut v = Encoder::new(&mut value);
            v.start(0x30);
            v.primitive(0x80, dn);
            v.integer(0x81, ttl as i64);
            v.end();
            e.primitive(0x81, &value);
            e.end();
        })
    }
}

fn person_cn(i: usize) -> String {
    format!("user{i}@bench.example")
}

fn person_dn(plan: &Plan, i: usize) -> Vec<u8> {
    if plan.standard {
        format!("cn={},ou=Dynamic,o=Intranet", person_cn(i)).into_bytes()
    } else {
        format!("c=-,o=Microsoft,cn={},objectClass=rtPerson", person_cn(i)).into_bytes()
    }
}

/// The registration Add of [MS-TAIL] 4.1.2, with a unique cn.
fn register_add(plan: &Plan, i: usize) -> Vec<u8> {
    let cn = person_cn(i);
    let minutes = plan.ttl.div_ceil(60).to_string();
    let mut attrs: Vec<(&[u8], Vec<&[u8]>)> = vec![
        (b"cn", vec![cn.as_bytes()]),
        (b"givenname", vec![b"Eric"]),
        (b"surname", vec![b"Gruber"]),
        (b"rfc822mailbox", vec![cn.as_bytes()]),
        (b"location", vec![b"Seattle"]),
        (b"comment", vec![b"Participant"]),
        // slapd checks c against the country syntax; NetMeeting sends "-".
        (b"c", vec![if plan.standard { b"US" } else { b"-" }]),
        (b"sflags", vec![b"1"]),
        (b"ILSA26214430", vec![b"0"]),
        (b"ILSA26279966", vec![b"84020942"]),
        (b"ILSA32833566", vec![b"1"]),
        (b"ILSA32964638", vec![b"1"]),
        (b"ILSA39321630", vec![b"2"]),
    ];
    if plan.standard {
        attrs.push((b"objectClass", vec![b"rtPerson", b"dynamicObject"]));
        attrs.push((b"ipAddress", vec![b"3758139584"]));
        attrs.push((b"securityToken", vec![b"21912384"]));
    } else {
        attrs.push((b"sipaddress", vec![b"3758139584"]));
        attrs.push((b"ssecurity", vec![b"21912384"]));
        attrs.push((b"sttl", vec![minutes.as_bytes()]));
    }
    Req::add(&person_dn(plan, i), &attrs)
}

/// The registration Modify of [MS-TAIL] 4.1.3.
fn register_modify(plan: &Plan, i: usize) -> Option<Vec<u8>> {
    if plan.standard {
        return None;
    }
    Some(Req::modify(
        &person_dn(plan, i),
        &[
            (2, b"smodop", vec![b"0"]),
            (2, b"sappid", vec![b"ms-netmeeting"]),
            (2, b"smimetype", vec![b"text/iuls"]),
            (2, b"sappguid", vec![b"008aff194794cf118796444553540000"]),
            (2, b"sprotid", vec![b"t120", b"h323"]),
            (2, b"sprotmimetype", vec![b"text/t120", b"text/h323"]),
            (2, b"sport", vec![b"1503", b"1720"]),
        ],
    ))
}

/// The keep-alive of the workload for user `i`.
fn refresh_request(plan: &Plan, i: usize, extended: bool) -> Vec<u8> {
    let cn = person_cn(i);
    if plan.standard || extended {
        let dn = format!("cn={cn},ou=Dynamic,o=Intranet");
        return Req::refresh(dn.as_bytes(), plan.ttl);
    }
    let minutes = plan.ttl.div_ceil(60).to_string();
    Req::search(
        b"objectClass=rtPerson",
        0,
        &[
            (b"objectClass", b"rtPerson"),
            (b"cn", cn.as_bytes()),
            (b"sttl", minutes.as_bytes()),
        ],
        &[b"cn"],
    )
}

fn find_request(plan: &Plan, i: usize) -> Vec<u8> {
    let cn = person_cn(i);
    let attrs: &[&[u8]] = &[
        b"cn",
        b"givenname",
        b"surname",
        b"rfc822mailbox",
        b"location",
        b"comment",
        b"ipAddress",
    ];
    if plan.standard {
        Req::search(
            b"ou=Dynamic,o=Intranet",
            1,
            &[(b"objectClass", b"rtPerson"), (b"cn", cn.as_bytes())],
            attrs,
        )
    } else {
        Req::search(
            b"objectClass=rtPerson",
            0,
            &[(b"objectClass", b"rtPerson"), (b"cn", cn.as_bytes())],
            attrs,
        )
    }
}

/// A connection that sends requests and reads answers.
pub struct Conn {
    stream: TcpStream,
    /// Answers read and not yet taken are `buf[start..end]`. The buffer is
    /// zeroed once as it grows, never per read: zeroing 64 KiB for every
    /// answer cost ils-bench more CPU than anything else it does.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// The read buffer of a fresh connection, and the size it grows to while
/// reads keep filling it: thousands of held connections stay small.
const BUF_START: usize = 4 * 1024;
const BUF_MAX_GROWTH: usize = 64 * 1024;

/// How long an answer may take: a server that stays silent longer is
/// broken, and the run goes on without that connection's request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer frame read: a longer one is a broken server.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// What one exchange brought back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub code: i64,
    pub entries: u64,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: vec![0; BUF_START],
            start: 0,
            end: 0,
        })
    }

    /// Sends a request and reads up to its final response.
    pub fn call(&mut self, request: &[u8]) -> io::Result<Answer> {
        self.exchange(request, false).map(|(answer, _)| answer)
    }

    /// Sends a request and reads up to its final response, keeping the
    /// entries' frames if asked to.
    fn exchange(&mut self, request: &[u8], keep: bool) -> io::Result<(Answer, Vec<Vec<u8>>)> {
        self.stream.write_all(request)?;
        let (mut answer, mut kept) = (Answer::default(), Vec::new());
        loop {
            let frame = self.next_frame()?;
            match response_kind(frame) {
                Some((0x64, _)) => {
                    answer.entries += 1;
                    if keep {
                        kept.push(frame.to_vec());
                    }
                }
                Some((_, code)) => {
                    answer.code = code;
                    return Ok((answer, kept));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unreadable response",
                    ));
                }
            }
        }
    }

    pub fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request)
    }

    fn next_frame(&mut self) -> io::Result<&[u8]> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(&self.buf[frame]);
            }
            self.fill()?;
        }
    }

    /// The next whole answer frame already read, if there is one.
    fn take_frame(&mut self) -> io::Result<Option<std::ops::Range<usize>>> {
        match frame_len(&self.buf[self.start..self.end], MAX_FRAME) {
            Frame::Complete(n) => {
                let at = self.start;
                self.start += n;
                Ok(Some(at..at + n))
            }
            Frame::Incomplete => Ok(None),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame")),
        }
    }

    /// Reads once, after what is buffered; blocks if nothing has arrived.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = self.buf.len() - self.end;
        if free == 0 {
            // One frame larger than the buffer.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        if n == free && self.buf.len() < BUF_MAX_GROWTH {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(())
    }
}

/// The protocolOp tag of a response and, for results, the result code.
fn response_kind(frame: &[u8]) -> Option<(u8, i64)> {
    let (_, start, _) = header(frame)?;
    let rest = frame.get(start..)?;
    let (_, id_start, id_len) = header(rest)?;
    let rest = rest.get(id_start + id_len..)?;
    let (op, op_start, _) = header(rest)?;
    if op == 0x64 {
        return Some((op, 0));
    }
    let body = &rest[op_start..];
    let (_, code_start, code_len) = header(body)?;
    let code = body
        .get(code_start..code_start + code_len)?
        .iter()
        .fold(0i64, |a, &x| (a << 8) | x as i64);
    Some((op, code))
}

fn expect_ok(answer: io::Result<Answer>, allowed: &[i64]) -> Result<Answer, ()> {
    match answer {
        Ok(a) if a.code == 0 || allowed.contains(&a.code) => Ok(a),
        _ => Err(()),
    }
}

/// Registers `plan.entries` users (and, for `tapi`, their application
/// entries) before a run, over a few connections.
pub fn populate(plan: &Plan) -> io::Result<u64> {
    for_each_user(plan, plan.entries, |conn, i| {
        // 68: already there from an earlier run.
        let mut failed = expect_ok(conn.call(&register_add(plan, i)), &[68]).is_err() as u64;
        if let Some(m) = register_modify(plan, i) {
            failed += expect_ok(conn.call(&m), &[]).is_err() as u64;
        }
        failed
    })
}

/// Runs `each` for users `0..count` over up to four bound connections;
/// returns the sum of what it returned (the failures).
fn for_each_user(
    plan: &Plan,
    count: usize,
    each: impl Fn(&mut Conn, usize) -> u64 + Sync,
) -> io::Result<u64> {
    let threads = plan.connections.clamp(1, 4);
    let each = &each;
    let failures = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> io::Result<u64> {
                    let mut conn = Conn::open(plan.target)?;
                    conn.call(&Req::bind(if plan.standard { 3 } else { 2 }))?;
                    let failed = (t..count)
                        .step_by(threads)
                        .map(|i| each(&mut conn, i))
                        .sum();
                    conn.send(&Req::unbind())?;
                    Ok(failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(1)))
            .collect::<io::Result<Vec<u64>>>()
    })?;
    Ok(failures.iter().sum())
}

/// Opens `count` connections and binds on each, to be held open, idle,
/// through a run.
pub fn hold(plan: &Plan, count: usize) -> io::Result<Vec<Conn>> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = Conn::open(plan.target)?;
        if expect_ok(conn.call(&Req::bind(version(plan))), &[]).is_err() {
            return Err(io::Error::other(
                "a held connection's bind failed (is the server's max-connections high enough?)",
            ));
        }
        held.push(conn);
    }
    Ok(held)
}

/// How many held connections still answer, binding again on each.
pub fn still_served(plan: &Plan, held: &mut [Conn]) -> usize {
    held.iter_mut()
        .map(|c| expect_ok(c.call(&Req::bind(version(plan))), &[]))
        .filter(Result::is_ok)
        .count()
}

fn version(plan: &Plan) -> i64 {
    if plan.standard { 3 } else { 2 }
}

/// ilsd's monitor entry, which counts stored entries until they are
/// removed (searches hide expired entries at once).
const MONITOR: &[u8] = b"cn=Monitor,ou=Admin,o=Intranet";

/// Users registered to expire together in the middle of a run.
#[derive(Debug)]
pub struct MassExpiry {
    pub count: usize,
    /// They expire between this and one second later.
    pub deadline: Instant,
    /// No earlier than this the last of them expires (its refresh was
    /// sent at most this TTL before).
    pub last: Instant,
    /// The server's dynamic entries before they were added.
    baseline: u64,
}

fn expiring_dn(i: usize) -> Vec<u8> {
    format!("cn=gone{i}@bench.example,ou=Dynamic,o=Intranet").into_bytes()
}

/// Registers `count` users and refreshes each with the TTL that makes them
/// all expire within the same second, `lead` after the refreshes are
/// expected to end. Needs ilsd (the monitor entry) with a `min-ttl` at
/// most `lead`.
pub fn prepare_expiry(plan: &Plan, count: usize, lead: Duration) -> io::Result<MassExpiry> {
    let mut conn = Conn::open(plan.target)?;
    conn.call(&Req::bind(version(plan)))?;
    let baseline = dynamic_entries(&mut conn)?;
    let started = Instant::now();
    let failed = for_each_user(plan, count, |conn, i| {
        let cn = format!("gone{i}@bench.example");
        let add = Req::add(
            &expiring_dn(i),
            &[
                (b"objectClass", vec![b"rtPerson", b"dynamicObject"]),
                (b"cn", vec![cn.as_bytes()]),
            ],
        );
        expect_ok(conn.call(&add), &[68]).is_err() as u64
    })?;
    // Refreshes are usually quicker than the Adds were; half as long again
    // leaves room for a slow moment of a busy machine.
    let adds = started.elapsed();
    let deadline = Instant::now() + adds.mul_f64(1.5) + lead;
    let refreshing = Instant::now();
    let last = parking_lot::Mutex::new(deadline);
    let failed = failed
        + for_each_user(plan, count, |conn, i| {
            let sent = Instant::now();
            let ttl = deadline
                .saturating_duration_since(sent)
                .as_secs_f64()
                .ceil();
            let expires = sent + Duration::from_secs_f64(ttl);
            let mut last = last.lock();
            *last = (*last).max(expires);
            drop(last);
            expect_ok(conn.call(&Req::refresh(&expiring_dn(i), ttl as u32)), &[]).is_err() as u64
        })?;
    if failed > 0 {
        return Err(io::Error::other(format!(
            "{failed} of the expiring users could not be set up"
        )));
    }
    if Instant::now() + Duration::from_secs(1) > deadline {
        return Err(io::Error::other(format!(
            "refreshing the expiring users took too long ({:.1} s, after {:.1} s of registering them)",
            refreshing.elapsed().as_secs_f64(),
            adds.as_secs_f64()
        )));
    }
    Ok(MassExpiry {
        count,
        deadline,
        last: last.into_inner(),
        baseline,
    })
}

/// Reads the monitor entry from just before the deadline until the
/// expiring users have all been removed, and says when that was seen;
/// `None` if not by `give_up`.
pub fn watch_expiry(
    plan: &Plan,
    expiry: &MassExpiry,
    give_up: Instant,
) -> io::Result<Option<Instant>> {
    let mut conn = Conn::open(plan.target)?;
    conn.call(&Req::bind(version(plan)))?;
    let early = expiry.deadline.checked_sub(Duration::from_millis(200));
    std::thread::sleep(early.map_or(Duration::ZERO, |t| {
        t.saturating_duration_since(Instant::now())
    }));
    while Instant::now() < give_up {
        if dynamic_entries(&mut conn)? <= expiry.baseline {
            return Ok(Some(Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(None)
}

fn dynamic_entries(conn: &mut Conn) -> io::Result<u64> {
    let request = Req::search(MONITOR, 0, &[], &[b"dynamicEntries"]);
    let (_, frames) = conn.exchange(&request, true)?;
    frames
        .first()
        .and_then(|f| entry_value(f, b"dynamicEntries"))
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .ok_or_else(|| io::Error::other("no monitor entry: --expire needs ilsd"))
}

/// The first value of an attribute in a SearchResultEntry.
fn entry_value(frame: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let inside = |b: &[u8]| -> Option<(u8, usize, usize)> {
        let (tag, start, len) = header(b)?;
        (start + len <= b.len()).then_some((tag, start, len))
    };
    let (_, start, _) = inside(frame)?;
    let rest = &frame[start..];
    let (_, id_start, id_len) = inside(rest)?;
    let rest = &rest[id_start + id_len..];
    let (0x64, op_start, op_len) = inside(rest)? else {
        return None;
    };
    let body = &rest[op_start..op_start + op_len];
    let (_, dn_start, dn_len) = inside(body)?;
    let rest = &body[dn_start + dn_len..];
    let (_, list_start, list_len) = inside(rest)?;
    let mut list = &rest[list_start..list_start + list_len];
    while !list.is_empty() {
        let (_, at, len) = inside(list)?;
        let attribute = &list[at..at + len];
        list = &list[at + len..];
        let (_, type_start, type_len) = inside(attribute)?;
        if !attribute[type_start..type_start + type_len].eq_ignore_ascii_case(name) {
            continue;
        }
        let set = &attribute[type_start + type_len..];
        let (_, set_start, _) = inside(set)?;
        let (_, v_start, v_len) = inside(&set[set_start..])?;
        return Some(set[set_start + v_start..set_start + v_start + v_len].to_vec());
    }
    None
}

/// Serves the ceiling: a server that answers every request with a fixed
/// success (a search with one fixed entry), without decoding more than
/// the message ID and the operation's tag. Like ilsd, it hands each
/// connection to a pooled worker thread, starting one when none is idle.
/// What ils-bench measures against it is the most any blocking server
/// could reach with this client on this machine: the cost of the system
/// calls, thread switches and TCP alone. Runs until the process ends.
pub fn serve_ceiling(listener: std::net::TcpListener) -> io::Result<()> {
    let (hand, take) = crossbeam_channel::unbounded::<TcpStream>();
    let idle = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = stream?;
        let claimed = idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if claimed.is_err() {
            let (take, idle) = (take.clone(), idle.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; BUF_MAX_GROWTH];
                while let Ok(stream) = take.recv() {
                    let _ = answer_fixed(stream, &mut buf);
                    idle.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
        // The receivers live as long as the workers, which never stop.
        let _ = hand.send(stream);
    }
    Ok(())
}

fn answer_fixed(mut stream: TcpStream, buf: &mut [u8]) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut have = 0;
    let mut out = BytesMut::with_capacity(1024);
    loop {
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        while let Frame::Complete(len) = frame_len(&buf[at..have], BUF_MAX_GROWTH) {
            let Some((msgid, op)) = request_kind(&buf[at..at + len]) else {
                return Ok(());
            };
            if op == 0x42 {
                // Unbind.
                return stream.write_all(&out);
            }
            let mut resp = Responder {
                msgid,
                out: &mut out,
            };
            let success = LdapResult::success();
            match op {
                // Abandon: no answer.
                0x50 => {}
                // Search: one entry, then done.
                0x63 => {
                    let cn: [&[u8]; 1] = [b"ceiling"];
                    resp.entry(b"cn=ceiling,ou=Dynamic,o=Intranet", [(&b"cn"[..], cn)]);
                    resp.result(tag::SEARCH_DONE, &success);
                }
                // Delete's request tag is primitive; its response is not.
                0x4a => resp.result(tag::DELETE, &success),
                // Every other request's response tag is the next one up.
                op => resp.result(op + 1, &success),
            }
            at += len;
        }
        if at < have && frame_len(&buf[at..have], BUF_MAX_GROWTH) != Frame::Incomplete {
            return Ok(());
        }
        buf.copy_within(at..have, 0);
        have -= at;
        stream.write_all(&out)?;
        out.clear();
    }
}

/// The message ID and the protocolOp tag of a request.
fn request_kind(frame: &[u8]) -> Option<(i32, u8)> {
    let (_, start, _) = header(frame)?;
    let rest = frame.get(start..)?;
    let (_, id_start, id_len) = header(rest)?;
    let msgid = rest
        .get(id_start..id_start + id_len)?
        .iter()
        .fold(0i32, |a, &x| (a << 8) | x as i32);
    let (op, _, _) = header(rest.get(id_start + id_len..)?)?;
    Some((msgid, op))
}

/// Runs a workload and reports. `populate` must have run for the
/// workloads that use registered users.
pub fn run(plan: &Plan) -> Report {
    measure(plan).report
}

/// A finished run: its report, and when each operation started and how
/// long it took, to report on part of the run.
pub struct Run {
    pub report: Report,
    pub started: Instant,
    /// (start, latency) of each operation, in microseconds from `started`.
    samples: Vec<(u64, u64)>,
}

impl Run {
    /// The latencies of the operations that started between `from` and
    /// `to`, as a report of that window.
    pub fn window(&self, from: Instant, to: Instant) -> Report {
        let at = |t: Instant| t.saturating_duration_since(self.started).as_micros() as u64;
        let (from, to) = (at(from), at(to));
        let latencies = self
            .samples
            .iter()
            .filter(|(start, _)| (from..to).contains(start))
            .map(|&(_, latency)| latency)
            .collect();
        let seconds = to.saturating_sub(from) as f64 / 1e6;
        Report::from_latencies(&self.report.workload, latencies, 0, 0, seconds)
    }
}

/// Runs a workload and keeps every sample.
pub fn measure(plan: &Plan) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results: Vec<WorkerResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = if plan.workload.persistent() {
            let threads = plan.threads.clamp(1, plan.connections.max(1));
            (0..threads)
                .map(|t| {
                    let stop = stop.clone();
                    let mine: Vec<usize> = (t..plan.connections).step_by(threads).collect();
                    scope.spawn(move || drive(plan, &mine, started, &stop))
                })
                .collect()
        } else {
            (0..plan.connections)
                .map(|c| {
                    let stop = stop.clone();
                    scope.spawn(move || worker(plan, c, started, &stop))
                })
                .collect()
        };
        std::thread::sleep(plan.duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            // A thread that panicked (a broken answer it could not read)
            // is an error, not a silent loss of its samples.
            .map(|h| h.join().unwrap_or((Vec::new(), 1, 0)))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    let (mut errors, mut entries) = (0, 0);
    for (l, e, n) in results {
        samples.extend(l);
        errors += e;
        entries += n;
    }
    let latencies = samples.iter().map(|&(_, latency)| latency).collect();
    let report = Report::from_latencies(plan.workload.name(), latencies, errors, entries, seconds);
    Run {
        report,
        started,
        samples,
    }
}

/// What one connection saw: (start, latency) samples, errors, entries.
type WorkerResult = (Vec<(u64, u64)>, u64, u64);

/// The request a persistent workload sends for user `i`.
fn persistent_request(plan: &Plan, i: usize) -> Vec<u8> {
    match plan.workload {
        Workload::Refresh => refresh_request(plan, i, false),
        Workload::RefreshExt => refresh_request(plan, i, true),
        Workload::Find => find_request(plan, i),
        Workload::Tapi if plan.standard => refresh_request(plan, i, true),
        Workload::Tapi => Req::modify(
            format!("cn={},ou=Dynamic,o=Intranet", person_cn(i)).as_bytes(),
            &[(2, b"entryTTL", vec![plan.ttl.to_string().as_bytes()])],
        ),
        _ => Req::search(b"ou=Dynamic,o=Intranet", 1, &[], &[b"cn", b"ipAddress"]),
    }
}

/// A request of a persistent workload, for tests of the decoders.
#[cfg(test)]
pub(crate) fn sample_request(workload: Workload, standard: bool) -> Vec<u8> {
    let plan = Plan {
        target: SocketAddr::from(([127, 0, 0, 1], 1)),
        workload,
        connections: 1,
        duration: Duration::ZERO,
        entries: 10,
        standard,
        ttl: 3600,
        threads: 1,
    };
    persistent_request(&plan, 3)
}

/// A cheap per-connection sequence over the users.
fn picker(plan: &Plan, index: usize) -> impl FnMut() -> usize {
    let n = plan.entries.max(1);
    let mut next = index.wrapping_mul(7919) % n;
    move || {
        next = (next + 7919) % n;
        next
    }
}

/// A bound connection of a persistent workload, or an error.
fn open_bound(plan: &Plan) -> Result<Conn, ()> {
    let mut c = Conn::open(plan.target).map_err(|_| ())?;
    expect_ok(c.call(&Req::bind(version(plan))), &[])?;
    Ok(c)
}

/// One persistent connection driven by [`drive`].
struct Slot<P> {
    conn: Option<Conn>,
    pick: P,
    /// When the request in flight was sent.
    sent: Instant,
    /// Entries of the answer being read.
    entries: u64,
    /// A request is in flight.
    busy: bool,
}

impl<P: FnMut() -> usize> Slot<P> {
    /// Sends the next request, opening the connection if there is none;
    /// false if that failed.
    fn send_next(&mut self, plan: &Plan) -> bool {
        if self.conn.is_none() {
            self.conn = open_bound(plan).ok();
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        self.sent = Instant::now();
        self.entries = 0;
        let request = persistent_request(plan, (self.pick)());
        if conn.send(&request).is_err() {
            self.conn = None;
            return false;
        }
        self.busy = true;
        true
    }
}

/// Drives some of a persistent workload's connections from one thread,
/// each with one request in flight (closed loop). The thread sends on
/// every connection, then waits in poll(2) for whichever answers first.
///
/// One thread per connection, blocking in read, costs a wake-up and a
/// thread switch per answer: on a machine where client and server share
/// the cores, that CPU is taken from the server and shows as its latency.
/// With a few connections per thread, a busy client finds answers waiting
/// and switches far less.
fn drive(plan: &Plan, indices: &[usize], started: Instant, stop: &AtomicBool) -> WorkerResult {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;

    let mut latencies = Vec::with_capacity(1 << 16);
    let (mut errors, mut entries) = (0u64, 0u64);
    let mut slots: Vec<Slot<_>> = indices
        .iter()
        .map(|&index| Slot {
            conn: None,
            pick: picker(plan, index),
            sent: Instant::now(),
            entries: 0,
            busy: false,
        })
        .collect();
    // Every connection is open and bound before the first request, so
    // that no latency counts another connection's setup.
    for slot in &mut slots {
        slot.conn = open_bound(plan).ok();
    }
    for slot in &mut slots {
        if !slot.send_next(plan) {
            errors += 1;
        }
    }
    let (mut waiting, mut ready, mut done) = (Vec::new(), Vec::new(), Vec::new());
    // Once the run is over, no request is sent, and those in flight are
    // waited for and counted: a workload of long answers (a listing) is
    // not undercounted by the one cut off.
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        for slot in &mut slots {
            if slot.busy && slot.sent.elapsed() > ANSWER_TIMEOUT {
                errors += 1;
                slot.conn = None;
                slot.busy = false;
                if !stopping && !slot.send_next(plan) {
                    errors += 1;
                }
            }
        }
        waiting.clear();
        waiting.extend((0..slots.len()).filter(|&at| slots[at].busy && slots[at].conn.is_some()));
        if waiting.is_empty() {
            break;
        }
        ready.clear();
        {
            let mut fds: Vec<PollFd<'_>> = waiting
                .iter()
                .filter_map(|&at| slots[at].conn.as_ref())
                .map(|conn| PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::from(100u8)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    errors += waiting.len() as u64;
                    break;
                }
            }
            for (fd, &at) in fds.iter().zip(&waiting) {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    ready.push(at);
                }
            }
        }
        // When the answers arrived, for all of this round: handling one
        // must not add to another's latency.
        let arrived = Instant::now();
        done.clear();
        for &at in &ready {
            let slot = &mut slots[at];
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            let mut outcome = conn.fill().map(|()| None);
            // Every whole frame read: entries, then the final result.
            while let Ok(None) = outcome {
                match conn.take_frame() {
                    Ok(Some(frame)) => match response_kind(&conn.buf[frame]) {
                        Some((0x64, _)) => slot.entries += 1,
                        Some((_, 0)) => outcome = Ok(Some(true)),
                        Some(_) => outcome = Ok(Some(false)),
                        None => outcome = Err(io::ErrorKind::InvalidData.into()),
                    },
                    Ok(None) => break,
                    Err(e) => outcome = Err(e),
                }
            }
            match outcome {
                // Part of the answer: wait for the rest.
                Ok(None) => continue,
                Ok(Some(true)) => {
                    let start = slot.sent.duration_since(started).as_micros() as u64;
                    let latency = arrived.saturating_duration_since(slot.sent);
                    latencies.push((start, latency.as_micros() as u64));
                    entries += slot.entries;
                }
                Ok(Some(false)) => errors += 1,
                Err(_) => {
                    // Start over on a fresh connection.
                    errors += 1;
                    slot.conn = None;
                }
            }
            slot.busy = false;
            done.push(at);
        }
        // The next requests, once this round's answers are read: a
        // connection to open again holds up no answer already waiting.
        if !stop.load(Ordering::Relaxed) {
            for &at in &done {
                let slot = &mut slots[at];
                if !slot.send_next(plan) {
                    errors += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    if !slot.send_next(plan) {
                        errors += 1;
                    }
                }
            }
        }
    }
    (latencies, errors, entries)
}

/// One connection's loop, for the workloads that open a connection for
/// every cycle.
fn worker(plan: &Plan, index: usize, started: Instant, stop: &AtomicBool) -> WorkerResult {
    let mut latencies = Vec::with_capacity(1 << 16);
    let (mut errors, mut entries) = (0u64, 0u64);
    let mut pick = picker(plan, index);
    let version = version(plan);
    let mut cycle = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let outcome: Result<u64, ()> = match plan.workload {
            Workload::Churn => {
                let i = pick();
                (|| -> Result<u64, ()> {
                    let mut c = Conn::open(plan.target).map_err(|_| ())?;
                    expect_ok(c.call(&Req::bind(version)), &[])?;
                    let a = expect_ok(c.call(&find_request(plan, i)), &[])?;
                    c.send(&Req::unbind()).map_err(|_| ())?;
                    Ok(a.entries)
                })()
            }
            _ => {
                // A user of this connection's own range, so that
                // connections never register the same name.
                let i = plan.entries + index * 1_000_000 + cycle;
                cycle += 1;
                (|| -> Result<u64, ()> {
                    let mut c = Conn::open(plan.target).map_err(|_| ())?;
                    expect_ok(c.call(&Req::bind(version)), &[])?;
                    expect_ok(c.call(&register_add(plan, i)), &[])?;
                    if let Some(m) = register_modify(plan, i) {
                        expect_ok(c.call(&m), &[])?;
                    }
                    c.send(&Req::unbind()).map_err(|_| ())?;
                    let mut c = Conn::open(plan.target).map_err(|_| ())?;
                    expect_ok(c.call(&Req::bind(version)), &[])?;
                    expect_ok(c.call(&refresh_request(plan, i, false)), &[])?;
                    c.send(&Req::unbind()).map_err(|_| ())?;
                    let mut c = Conn::open(plan.target).map_err(|_| ())?;
                    expect_ok(c.call(&Req::bind(version)), &[])?;
                    expect_ok(c.call(&Req::delete(&person_dn(plan, i))), &[])?;
                    c.send(&Req::unbind()).map_err(|_| ())?;
                    Ok(0)
                })()
            }
        };
        match outcome {
            Ok(n) => {
                let start = t.duration_since(started).as_micros() as u64;
                latencies.push((start, t.elapsed().as_micros() as u64));
                entries += n;
            }
            Err(()) => errors += 1,
        }
    }
    (latencies, errors, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests the workloads send are read alike by the server's
    /// fast decoder and by its general one: the keep-alive, look-ups and
    /// listings in both forms.
    #[test]
    fn sample_requests_take_the_fast_path_and_decode_alike() {
        let mut frames = vec![sample_request(Workload::Refresh, false)];
        for standard in [false, true] {
            frames.push(sample_request(Workload::Find, standard));
            frames.push(sample_request(Workload::List, standard));
        }
        for frame in frames {
            let quick = ilsd::protocol::quick::search(&frame).expect("the fast path takes it");
            let general = ilsd::protocol::decode_general(&frame).expect("it decodes");
            assert_eq!(format!("{quick:?}"), format!("{general:?}"));
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn report_rates_and_json() {
        let r = Report::from_latencies("refresh", vec![30, 10, 20, 40], 1, 8, 2.0);
        assert_eq!(r.operations, 4);
        assert_eq!((r.p50_us, r.p90_us, r.p99_us, r.max_us), (20, 40, 40, 40));
        assert_eq!(r.ops_per_sec(), 2.0);
        assert_eq!(r.entries_per_sec(), 4.0);
        assert!(r.to_json().contains("\"ops_per_sec\":2.0"));
        assert!(r.to_json().contains("\"errors\":1"));
    }

    #[test]
    fn responses_are_read_without_a_full_decode() {
        let mut out = BytesMut::new();
        ilsd::protocol::Responder {
            msgid: 7,
            out: &mut out,
        }
        .result(
            ilsd::protocol::tag::SEARCH_DONE,
            &ilsd::protocol::LdapResult::new(ldap3_proto::LdapResultCode::SizeLimitExceeded, ""),
        );
        assert_eq!(response_kind(&out), Some((0x65, 4)));
        // A message ID running past the end of the frame is unreadable.
        assert_eq!(response_kind(&[0x30, 0x03, 0x02, 0x05, 0x01]), None);
    }

    #[test]
    fn attribute_values_are_read_from_entries() {
        let mut out = BytesMut::new();
        ilsd::protocol::Responder {
            msgid: 2,
            out: &mut out,
        }
        .entry(
            b"cn=Monitor,ou=Admin,o=Intranet",
            [
                (&b"cn"[..], vec![&b"Monitor"[..]].into_iter()),
                (b"DynamicEntries", vec![&b"1000000"[..], b"x"].into_iter()),
            ],
        );
        assert_eq!(
            entry_value(&out, b"dynamicentries"),
            Some(b"1000000".to_vec())
        );
        assert_eq!(entry_value(&out, b"entries"), None);
        assert_eq!(entry_value(&out[..out.len() - 3], b"dynamicEntries"), None);
    }

    #[test]
    fn answers_larger_than_the_buffer_and_split_anyhow_are_read_whole() {
        let mut out = BytesMut::new();
        let big = vec![b'x'; 3 * BUF_START];
        for msgid in [1, 2] {
            let mut r = ilsd::protocol::Responder {
                msgid,
                out: &mut out,
            };
            r.entry(b"cn=a", [(&b"cn"[..], vec![&big[..]].into_iter())]);
            for _ in 0..200 {
                r.entry(b"cn=b", [(&b"cn"[..], vec![&b"b"[..]].into_iter())]);
            }
            r.result(
                ilsd::protocol::tag::SEARCH_DONE,
                &ilsd::protocol::LdapResult::success(),
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            for piece in out.chunks(1000) {
                peer.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let mut conn = Conn::open(addr).unwrap();
        for _ in 0..2 {
            let answer = conn.exchange(b"", false).unwrap().0;
            assert_eq!(
                answer,
                Answer {
                    code: 0,
                    entries: 201
                }
            );
        }
        server.join().unwrap();
    }

    #[test]
    fn a_request_in_flight_when_the_run_ends_is_waited_for_and_counted() {
        // Answers every search 600 ms after it arrives.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut conn = Conn {
                stream: peer.try_clone().unwrap(),
                buf: vec![0; BUF_START],
                start: 0,
                end: 0,
            };
            while let Ok(frame) = conn.next_frame() {
                let Some((msgid, op)) = request_kind(frame) else {
                    return;
                };
                let mut out = BytesMut::new();
                let mut r = ilsd::protocol::Responder {
                    msgid,
                    out: &mut out,
                };
                if op == 0x63 {
                    std::thread::sleep(Duration::from_millis(600));
                    r.result(tag::SEARCH_DONE, &LdapResult::success());
                } else {
                    r.result(tag::BIND, &LdapResult::success());
                }
                peer.write_all(&out).unwrap();
            }
        });
        let plan = Plan {
            target,
            workload: Workload::Find,
            connections: 1,
            duration: Duration::from_secs(1),
            entries: 1,
            standard: false,
            ttl: 60,
            threads: 1,
        };
        let report = run(&plan);
        // The second search was sent at 0.6 s and answered at 1.2 s.
        assert_eq!((report.operations, report.errors), (2, 0), "{report:?}");
        assert!(report.seconds >= 1.2, "{report:?}");
        // No connection at all: an empty run, not a panic.
        let none = Plan {
            connections: 0,
            duration: Duration::from_millis(10),
            ..plan
        };
        assert_eq!(run(&none).operations, 0);
    }

    #[test]
    fn an_answer_announcing_more_than_the_limit_is_an_error_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02])
                .unwrap();
            // Keep the connection open: the client must not wait for more.
            let _ = peer.read(&mut [0u8; 1]);
        });
        let mut conn = Conn::open(addr).unwrap();
        let err = conn.exchange(b"", false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        drop(conn);
        server.join().unwrap();
    }
}
