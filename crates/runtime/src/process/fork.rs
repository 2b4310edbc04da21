//! Forking the `berth-runc init` child. With `syscall`, the only place the runtime forks.
//!
//! The caller must be single-threaded (`berth-runc` is; the engine's supervisor must be):
//! the child runs ordinary Rust code between `fork` and `execve`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::channel::Channel;
use super::sealed::SealedExe;
use super::{FromChild, INIT_FD_ENV};
use crate::syscall::{self, Fork};

/// Forks and re-executes the sealed binary as `berth-runc init`, with `child` as its
/// channel. `inherit` fds (already numbered at or above 3+`preserve_fds`) and the
/// preserved fds 3..3+N stay open across the exec; everything else is close-on-exec.
pub fn spawn_init(
    exe: &SealedExe,
    child: Channel,
    inherit: &[RawFd],
    preserve_fds: u32,
) -> io::Result<libc::pid_t> {
    let argv = [CString::from(c"berth-runc"), CString::from(c"init")];
    let env_var =
        CString::new(format!("{INIT_FD_ENV}={}", child.as_raw_fd())).expect("no NUL in an integer");
    let envp = [env_var];
    // SAFETY: the runtime is single-threaded (module docs), so the child may run any code.
    match unsafe { syscall::fork() }? {
        Fork::Parent(pid) => Ok(pid),
        Fork::Child => {
            let setup = || -> io::Result<()> {
                syscall::set_cloexec(child.as_raw_fd(), false)?;
                for &fd in inherit {
                    syscall::set_cloexec(fd, false)?;
                }
                for fd in 3..3 + preserve_fds as RawFd {
                    let _ = syscall::set_cloexec(fd, false);
                }
                Ok(())
            };
            let err = match setup() {
                Ok(()) => syscall::execveat_fd(exe.fd(), &argv, &envp),
                Err(e) => e,
            };
            let _ = child.send(&FromChild::Error {
                message: format!("execute berth-runc init: {err}"),
            });
            syscall::exit_immediately(127)
        }
    }
}

/// Runs `f` in a forked child and returns its exit status (tests only: the child of the
/// multi-threaded test harness must not allocate, so `f` should make raw syscalls only).
#[cfg(test)]
pub fn run_in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f`, which the caller keeps to raw syscalls, then _exit.
    match unsafe { syscall::fork() }.expect("fork") {
        Fork::Child => syscall::exit_immediately(f()),
        Fork::Parent(pid) => syscall::waitpid(pid, false)
            .expect("waitpid")
            .map(|(_, s)| s.code())
            .unwrap_or(-1),
    }
}
