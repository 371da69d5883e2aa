//! Pass-through to a Windows or Samba domain: a small pool of long-lived
//! helper processes, Samba's `ntlm_auth` from winbind (ntlm_auth(1)),
//! which check NTLM responses (`--helper-protocol=ntlm-server-1`) and
//! plain passwords (`--helper-protocol=squid-2.5-basic`) against the
//! domain.
//!
//! The pool holds at most `ntlm-helpers` processes: a logon storm waits
//! for a free one instead of forking without limit. Every exchange has a
//! timeout; a helper that dies or hangs is killed and replaced, and the
//! bind in flight is answered unavailable, never left hanging. Each
//! helper's output is read by a small thread of its own, so that the
//! worker waiting for an answer can give up after the timeout. Used by
//! the bind operation on the worker threads.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::{Condvar, Mutex};

/// What a helper said of a logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Yes,
    /// No, with the helper's reason.
    No(String),
    /// No answer: the helper could not be started, died, or took too
    /// long. The logon is answered unavailable (52).
    Unavailable(String),
}

/// One running helper.
struct Helper {
    child: Child,
    input: ChildStdin,
    lines: Receiver<String>,
}

impl Helper {
    fn start(command: &[String]) -> io::Result<Helper> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| io::Error::other("an empty helper command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let input = child.stdin.take().expect("piped");
        let output = child.stdout.take().expect("piped");
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("ilsd-ntlm-helper".into())
            .spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Helper {
            child,
            input,
            lines,
        })
    }

    /// Whether the process still runs.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a request and reads the answer's lines up to the one that
    /// `last` recognises, within `timeout`.
    fn exchange(
        &mut self,
        request: &str,
        timeout: Duration,
        last: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, String> {
        // What a helper killed mid-answer left behind is not this answer.
        while self.lines.try_recv().is_ok() {}
        self.input
            .write_all(request.as_bytes())
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("the helper is gone: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut answer = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = last(&line);
                    answer.push(line);
                    if done {
                        return Ok(answer);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err("the helper did not answer in time".into());
                }
                Err(RecvTimeoutError::Disconnected) => return Err("the helper died".into()),
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bounded pool of helpers running one command.
pub struct HelperPool {
    command: Vec<String>,
    max: usize,
    timeout: Duration,
    idle: Mutex<Vec<Helper>>,
    /// Helpers handed out.
    busy: Mutex<usize>,
    freed: Condvar,
}

impl std::fmt::Debug for HelperPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HelperPool({:?}, at most {})", self.command, self.max)
    }
}

impl HelperPool {
    pub fn new(command: Vec<String>, max: usize, timeout: Duration) -> HelperPool {
        HelperPool {
            command,
            max: max.max(1),
            timeout,
            idle: Mutex::new(Vec::new()),
            busy: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Runs one exchange on a helper of the pool, waiting for a free one
    /// up to the timeout, starting one when there is room.
    fn with_helper(
        &self,
        request: &str,
        last: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.timeout;
        {
            let mut busy = self.busy.lock();
            while *busy >= self.max {
                if self.freed.wait_until(&mut busy, deadline).timed_out() {
                    return Err(format!("all {} helpers stayed busy", self.max));
                }
            }
            *busy += 1;
        }
        let result = self.ask(request, deadline, &last);
        *self.busy.lock() -= 1;
        self.freed.notify_one();
        result
    }

    /// One exchange on an idle helper, or a fresh one. A helper that died
    /// while idle (its domain connection dropped, or an administrator
    /// killed it) is replaced before the request is sent, so that only a
    /// helper dying in the middle of a logon costs that logon.
    fn ask(
        &self,
        request: &str,
        deadline: Instant,
        last: &impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, String> {
        let mut idle = self.idle.lock().pop();
        if idle.as_mut().is_some_and(|h| !h.alive()) {
            idle = None;
        }
        let mut helper = match idle {
            Some(helper) => helper,
            None => Helper::start(&self.command)
                .map_err(|e| format!("cannot start {}: {e}", self.command[0]))?,
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let answer = helper.exchange(request, left, last);
        // A helper that failed is dropped, which kills it; the next logon
        // starts a fresh one.
        if answer.is_ok() {
            self.idle.lock().push(helper);
        }
        answer
    }

    /// Checks NTLM responses (ntlm-server-1).
    pub fn check_ntlm(
        &self,
        user: &str,
        domain: &str,
        challenge: &[u8],
        lm: &[u8],
        nt: &[u8],
    ) -> Verdict {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut request = String::new();
        for (key, value) in [("Username", user), ("NT-Domain", domain)] {
            match value.is_ascii() && !value.contains(['\n', '\r']) {
                true => request.push_str(&format!("{key}: {value}\n")),
                false => request.push_str(&format!("{key}:: {}\n", STANDARD.encode(value))),
            }
        }
        request.push_str(&format!("LANMAN-Challenge: {}\n", hex(challenge)));
        request.push_str(&format!("NT-Response: {}\n", hex(nt)));
        if !lm.is_empty() {
            request.push_str(&format!("LANMAN-Response: {}\n", hex(lm)));
        }
        request.push_str(".\n");
        // An answer ends with the "." after its Authenticated line: a
        // stray "." that a helper may write after an answer is not the
        // end of the next one.
        let answered = std::cell::Cell::new(false);
        let end = |line: &str| {
            if line.starts_with("Authenticated:") {
                answered.set(true);
            }
            answered.get() && line == "."
        };
        match self.with_helper(&request, end) {
            Err(e) => Verdict::Unavailable(e),
            Ok(lines) => {
                if lines.iter().any(|l| l.trim() == "Authenticated: Yes") {
                    return Verdict::Yes;
                }
                let why = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("Authentication-Error: "))
                    .unwrap_or("refused by the domain");
                Verdict::No(why.to_string())
            }
        }
    }

    /// Checks a plain password (squid-2.5-basic).
    pub fn check_password(&self, user: &str, password: &[u8]) -> Verdict {
        let request = format!("{} {}\n", url_encode(user.as_bytes()), url_encode(password));
        match self.with_helper(&request, |line| {
            line.starts_with("OK") || line.starts_with("ERR")
        }) {
            Err(e) => Verdict::Unavailable(e),
            Ok(lines) if lines.last().is_some_and(|l| l.starts_with("OK")) => Verdict::Yes,
            Ok(_) => Verdict::No("refused by the domain".into()),
        }
    }
}

/// Percent-encodes everything but unreserved characters, as the basic
/// helper protocol expects.
fn url_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The command of the plain-password helper for an NTLM helper command:
/// the same, with `--helper-protocol=squid-2.5-basic`.
pub fn basic_command(ntlm: &[String]) -> Vec<String> {
    let mut command: Vec<String> = ntlm
        .iter()
        .filter(|a| !a.starts_with("--helper-protocol"))
        .cloned()
        .collect();
    command.push("--helper-protocol=squid-2.5-basic".into());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper written in sh that speaks ntlm-server-1: Yes for alice,
    /// a hang for "slow", death for "crash"; each answer followed by a
    /// stray ".", as ntlm_auth sometimes writes.
    fn fake() -> Vec<String> {
        let script = r#"
while read -r line; do
  case "$line" in
    "Username: alice") user=alice ;;
    "Username: slow") user=slow ;;
    "Username: crash") exit 1 ;;
    .) if [ "$user" = alice ]; then echo "Authenticated: Yes"; elif [ "$user" = slow ]; then sleep 30; else echo "Authenticated: No"; echo "Authentication-Error: bad"; fi; echo .; echo .; user= ;;
  esac
done"#;
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_pool_answers_and_replaces_helpers_that_hang_or_die() {
        let pool = HelperPool::new(fake(), 2, Duration::from_millis(500));
        let check = |user: &str| pool.check_ntlm(user, "DOM", &[1; 8], &[], &[2; 24]);
        assert_eq!(check("alice"), Verdict::Yes);
        assert_eq!(check("bob"), Verdict::No("bad".into()));
        assert_eq!(check("alice"), Verdict::Yes, "the stray dots end no answer");
        assert_eq!(check("bob"), Verdict::No("bad".into()));
        let started = Instant::now();
        assert!(matches!(check("slow"), Verdict::Unavailable(_)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the timeout holds"
        );
        assert!(matches!(check("crash"), Verdict::Unavailable(_)));
        assert_eq!(check("alice"), Verdict::Yes, "fresh helpers after those");
        assert_eq!(pool.idle.lock().len(), 1);
    }

    #[test]
    fn a_pool_that_cannot_start_its_helper_says_so() {
        let pool = HelperPool::new(
            vec!["/nonexistent/ntlm_auth".into()],
            1,
            Duration::from_millis(200),
        );
        assert!(matches!(
            pool.check_password("a", b"b"),
            Verdict::Unavailable(_)
        ));
    }

    #[test]
    fn the_basic_helper_runs_the_same_command() {
        let ntlm: Vec<String> = [
            "ntlm_auth",
            "--configfile=/x",
            "--helper-protocol=ntlm-server-1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            basic_command(&ntlm),
            [
                "ntlm_auth",
                "--configfile=/x",
                "--helper-protocol=squid-2.5-basic"
            ]
        );
        assert_eq!(url_encode(b"a b%"), "a%20b%25");
    }
}
