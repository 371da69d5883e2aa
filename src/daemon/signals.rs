//! Waiting for the signals that stop and reload the daemon.
//!
//! signal-hook records each signal and wakes a pipe; its blocking
//! iterator panics when a read of that pipe fails, which a debugger or
//! tracer attaching to the process can cause (seen as "Unknown error 512"
//! when gdb attached to a running server). A stop signal must never be
//! lost that way, and a debugger must not kill the server, so the waiting
//! is done here: on a pipe of our own that the same signals wake, reading
//! again after any error, and asking signal-hook only which signals came,
//! which never blocks.
//!
//! Used by the main thread, and by the thread that waits for a second stop
//! signal during a stop.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use signal_hook::iterator::Signals;

pub struct Waiter {
    signals: Signals,
    wake: UnixStream,
}

impl Waiter {
    /// Starts recording `which`.
    pub fn new(which: &[i32]) -> io::Result<Waiter> {
        // A signal's actions run in the order they were registered: the
        // signal is recorded before the pipe is written, so that a wait
        // woken by the pipe always finds it.
        let signals = Signals::new(which)?;
        let (wake, write) = UnixStream::pair()?;
        for &signal in which {
            signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
        }
        Ok(Waiter { signals, wake })
    }

    /// Blocks until one of the signals arrives, and returns it.
    pub fn next(&mut self) -> i32 {
        loop {
            // Asked before each wait: a signal that comes after this
            // writes to the pipe, and the read returns at once.
            if let Some(signal) = self.signals.pending().next() {
                return signal;
            }
            match self.wake.read(&mut [0u8; 64]) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The writing ends stay registered for the life of the
                // process, so neither an end of file nor an error should
                // come; if one does, it must not spin.
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    log::debug!("waiting for signals: {e}; waiting again");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}
