//! The real `ilsd` binary, started as a service manager starts it, with
//! its log lines read as they come; and scratch directories for its files.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Raw;

/// The ilsd binary; empty in ils-bench's tests, which share these
/// helpers but are another package's.
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_ilsd") {
    Some(bin) => bin,
    None => "",
};

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ilsd-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon whose log lines arrive on a channel.
pub struct Daemon {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: std::cell::RefCell<Vec<String>>,
    pub port: u16,
}

impl Daemon {
    pub fn spawn(cmd: Command) -> Daemon {
        Daemon::spawn_with_stdout(cmd, Stdio::null())
    }

    pub fn spawn_with_stdout(mut cmd: Command, stdout: Stdio) -> Daemon {
        cmd.stderr(Stdio::piped())
            .stdout(stdout)
            .env_remove("JOURNAL_STREAM");
        let mut child = cmd.spawn().expect("ilsd starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            seen: Default::default(),
            port: 0,
        };
        let line = daemon.wait_for("listening on");
        daemon.port = line.rsplit(':').next().unwrap().trim().parse().unwrap();
        daemon.wait_for("ready");
        daemon
    }

    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.borrow_mut().push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                    eprintln!("ilsd: {line}");
                }
                Err(_) => panic!("no log line with '{needle}'"),
            }
        }
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ilsd did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(([127, 0, 0, 1], self.port).into())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
