//! Staying with a running container (`run` without `-d`, `start -a`): forward signals to
//! it, restore the terminal, and return its exit code. The supervisor moves the bytes.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use berth_engine::start::{Report, SupervisorHandle};

static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; pid and sig are plain integers.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Forwards the usual termination signals to `pid` (Docker's `--sig-proxy`).
pub fn forward_signals_to(pid: i32) {
    proxy_signals(pid);
}

fn proxy_signals(pid: i32) {
    TARGET.store(pid, Ordering::Relaxed);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: `forward` only calls async-signal-safe functions; installing a handler
        // has no other precondition.
        unsafe {
            libc::signal(sig, forward as *const () as libc::sighandler_t);
        }
    }
}

/// Puts the terminal in raw mode for `-t` sessions; restores it when dropped.
pub struct RawTerminal(Option<rustix::termios::Termios>);

impl RawTerminal {
    pub fn enable() -> Self {
        let stdin = std::io::stdin();
        match rustix::termios::tcgetattr(&stdin) {
            Ok(saved) => {
                let mut raw = saved.clone();
                raw.make_raw();
                let _ =
                    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
                Self(Some(saved))
            }
            Err(_) => Self(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// Waits for the container to exit; its code becomes ours.
pub fn follow(mut handle: SupervisorHandle, pid: i32) -> ExitCode {
    proxy_signals(pid);
    loop {
        match handle.next_report() {
            Report::Exited(code) => return ExitCode::from(code.clamp(0, 255) as u8),
            Report::Started(pid) => TARGET.store(pid, Ordering::Relaxed),
            Report::Error(message) => {
                eprintln!("berth: {message}");
                return ExitCode::from(super::EXIT_ERROR);
            }
            Report::Gone => {
                eprintln!("berth: the container's supervisor exited unexpectedly");
                return ExitCode::from(super::EXIT_ERROR);
            }
        }
    }
}
