//! Thin, typed wrappers over the raw Linux system calls the runtime needs. All of the
//! runtime's `unsafe` lives here and in `process::fork`: callers get `io::Result`s and
//! Rust types, never raw pointers.
//!
//! The [`Syscall`] trait covers the calls that change the mount tree, so the rootfs code
//! can be unit-tested unprivileged with a recording fake.
//!
//! The wrappers are grouped by concern in the submodules below and re-exported here, so
//! callers always name them `syscall::name`. This file keeps the helpers they share.

mod creds;
mod fd;
mod mount;
mod namespace;
mod pidfd;
mod process;
mod resources;
mod signal;
mod socket;
mod tty;

pub use self::creds::{
    ambient_clear_all, ambient_raise, capbset_drop, capset, getgid, getuid, seccomp_set_filter,
    set_keepcaps, set_no_new_privs, setgroups, setresgid, setresuid,
};
pub use self::fd::{
    add_seals, cloexec_from, dup2, dup_at_least, get_seals, getcwd_raw, memfd_create, mkfifo,
    openat, openat2, owned_fd, set_cloexec,
};
pub use self::mount::{
    makedev, mount_flags, mount_setattr_rdonly, open_tree_clone, LinuxSyscall, Syscall,
};
pub use self::namespace::{setdomainname, sethostname, setns, unshare};
pub use self::pidfd::{pidfd_open, pidfd_send_signal, poll_read};
pub use self::process::{
    execve, execveat_fd, exit_immediately, fork, fork_into_cgroup, gettid, set_child_subreaper,
    set_dumpable, set_pdeathsig, setsid, waitpid, Fork, WaitStatus,
};
pub use self::resources::{getrlimit, ioprio_set, personality, sched_setattr, setrlimit, umask};
pub use self::signal::{
    block_all_signals, kill, reset_signals, set_signal_mask, wait_signal, wait_signal_timeout,
    SIGCHLD, SIGKILL, SIGWINCH,
};
pub use self::socket::{peek_len, recv_fds, send_fds, seqpacket_pair};
pub use self::tty::{
    isatty, make_raw, open_pty, open_pty_peer, restore_termios, set_controlling_terminal,
    set_window_size, window_size,
};

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;

/// Converts a path to a C string (paths with NUL bytes cannot name a file).
pub fn cstr(p: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn prctl(option: libc::c_int, a2: libc::c_ulong, a3: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the options used by this module take integer arguments only.
    check(unsafe { libc::prctl(option, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}
