//! The state thread: loads the state file before the server accepts
//! connections, writes a snapshot every `state-interval`, and the last one
//! at a stop, after every connection has closed. Runs on its own thread
//! (`ilsd-state`); the loading runs on the thread that starts the server.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::directory::store::Store;
use crate::state;

/// Skipped records named one by one in the log; the rest are counted.
const SKIPS_LOGGED: usize = 20;

/// The running state thread.
pub struct Keeper {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// Brings the entries of the state file back into the store, and checks
/// that the file can be written. A file that could not be read whole is
/// kept aside as `PATH.bad` for the administrator, and the server starts
/// with what was sound.
pub fn restore(store: &Store, path: &Path) -> io::Result<()> {
    state::check_writable(path)?;
    let started = std::time::Instant::now();
    let loaded = state::load(store, path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    log::info!(
        "{}: {} entries loaded in {:.3}s, {} expired while the server was down",
        path.display(),
        loaded.entries,
        started.elapsed().as_secs_f64(),
        loaded.expired
    );
    if loaded.skipped.is_empty() {
        return Ok(());
    }
    for (line, why) in loaded.skipped.iter().take(SKIPS_LOGGED) {
        log::warn!("{}:{line}: record skipped: {why}", path.display());
    }
    let bad = with_suffix(path, ".bad");
    let kept = std::fs::copy(path, &bad).map(|_| format!("kept as {}", bad.display()));
    log::warn!(
        "{}: {} record(s) skipped; the file is {}",
        path.display(),
        loaded.skipped.len(),
        kept.unwrap_or_else(|e| format!("not kept aside: {e}"))
    );
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

impl Keeper {
    /// Starts the thread that writes `path` every `interval`.
    pub fn spawn(store: Arc<Store>, path: PathBuf, interval: Duration) -> io::Result<Keeper> {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name("ilsd-state".into())
            .spawn(move || keep(&store, &path, interval, &stopped))?;
        Ok(Keeper { stop, handle })
    }

    /// Writes the last snapshot and stops.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

fn keep(store: &Store, path: &Path, interval: Duration, stopped: &Receiver<()>) {
    loop {
        let last = match stopped.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        match state::write(store, path) {
            Ok(w) => log::debug!(
                "{}: {} entries, {} bytes written in {:.3}s",
                path.display(),
                w.entries,
                w.bytes,
                w.took.as_secs_f64()
            ),
            Err(e) => log::error!("cannot write the state file {}: {e}", path.display()),
        }
        if last {
            return;
        }
    }
}
