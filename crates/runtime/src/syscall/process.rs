//! Process lifecycle: fork (plain, or `clone3` straight into a cgroup), exec, immediate
//! exit, session and parent-death settings, and waiting for children. Used by `process`
//! (fork, init, finalize), `container` and the supervisors in `berth` and the engine.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{check, prctl};

/// The outcome of `fork` on each side.
pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// Forks the calling process.
///
/// # Safety
/// The caller must be single-threaded (the child of a multi-threaded process may only call
/// async-signal-safe functions), which the runtime's callers guarantee: `berth-runc` and
/// the engine's supervisor never start threads before they fork.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller guarantees a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// `clone3` with `CLONE_INTO_CGROUP`: a fork whose child starts in the cgroup v2 directory
/// `cgroup` (no migration afterwards, so no wait on the kernel's threadgroup lock).
///
/// # Safety
/// As for [`fork`]: the caller must be single-threaded.
pub unsafe fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<Fork> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: without CLONE_VM and with no stack the child runs on a copy of our stack,
    // like fork(2); `args` is valid for the call; the caller is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid as libc::pid_t)),
    }
}

/// Builds a NULL-terminated array of pointers into `strings`.
fn ptr_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: runs the program an fd refers to. Returns
/// only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_p = ptr_array(argv);
    let envp_p = ptr_array(envp);
    let empty = c"";
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call;
    // on success the call does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `execve(path, argv, envp)`. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_p = ptr_array(argv);
    let envp_p = ptr_array(envp);
    // SAFETY: as for `execveat_fd`.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// Leaves the process at once with `code`, without running destructors or atexit
/// handlers (a forked child must not flush the parent's buffers twice).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

pub fn set_pdeathsig(sig: libc::c_int) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0).map(drop)
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0).map(drop)
}

pub fn set_child_subreaper() -> io::Result<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).map(drop)
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() }).map(drop)
}

/// How a waited-for child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

impl WaitStatus {
    /// The shell's convention: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => c,
            WaitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// Waits for a child (`pid` as in waitpid(2)); `None` with WNOHANG when nothing is ready.
pub fn waitpid(pid: libc::pid_t, nohang: bool) -> io::Result<Option<(libc::pid_t, WaitStatus)>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        let ws = if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            continue;
        };
        return Ok(Some((r, ws)));
    }
}

pub fn gettid() -> libc::pid_t {
    // SAFETY: no arguments; cannot fail.
    unsafe { libc::getpid() }
}
