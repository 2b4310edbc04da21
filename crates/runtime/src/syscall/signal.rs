//! Signals: sending them by pid, resetting and masking dispositions before exec, and
//! waiting synchronously for blocked ones. Used by `container`, `process::finalize` and the
//! foreground loop of `berth-runc`'s attach.

use std::io;

use super::check;

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Restores every signal's default disposition and unblocks all signals, so the container
/// process does not inherit the runtime's choices (Rust ignores SIGPIPE, for one).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; invalid numbers just fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    set_signal_mask(&[], libc::SIG_SETMASK);
}

/// Blocks (`SIG_BLOCK`), unblocks or sets the listed signals; empty with SIG_SETMASK
/// unblocks all.
pub fn set_signal_mask(signals: &[libc::c_int], how: libc::c_int) {
    // SAFETY: `set` is initialised by sigemptyset before use; pointers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// Blocks every catchable signal; returns after one arrives, with its number.
pub fn block_all_signals() {
    // SAFETY: sigfillset initialises the set; pointers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for any blocked signal (see [`block_all_signals`]).
pub fn wait_signal() -> io::Result<libc::c_int> {
    // SAFETY: `set` is filled before use; the info pointer may be null.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        let r = libc::sigwaitinfo(&set, std::ptr::null_mut());
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

/// Waits up to `timeout_ms` for a blocked signal; `None` when none arrived.
pub fn wait_signal_timeout(timeout_ms: u64) -> io::Result<Option<libc::c_int>> {
    let ts = libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: `set` is filled before use; `ts` lives across the call; info may be null.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        let r = libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(r))
    }
}

/// Signal numbers the foreground commands act on.
pub use libc::{SIGCHLD, SIGKILL, SIGWINCH};
