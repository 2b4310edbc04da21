//! Files and fds: duplicating, close-on-exec (CVE-2024-21626), opening (`openat`,
//! `openat2`), fifos, sealed memfds and the raw working directory. Used by `process`,
//! `container` and `rootfs::secure`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{check, check_long, cstr};

pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes integers; replacing `new` is the caller's intent.
    check(unsafe { libc::dup2(old, new) }).map(drop)
}

/// Duplicates `fd` to the lowest free number at or above `min`, close-on-exec.
pub fn dup_at_least(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and returns a new fd we own.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: `new` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD take integers.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let flags = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// Marks every fd at or above `first` close-on-exec (CVE-2024-21626: nothing of the runtime
/// may reach the container process).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes integers; CLOEXEC mode closes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        let _ = set_cloexec(fd, true);
    }
    Ok(())
}

/// Wraps a raw fd number that the process was handed at exec time.
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process.
pub unsafe fn owned_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat(dirfd, name, flags)`, returning an owned fd.
pub fn openat(dirfd: BorrowedFd<'_>, name: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    loop {
        // SAFETY: `name` is a valid C string; the flags take no mode argument.
        let fd = unsafe { libc::openat(dirfd.as_raw_fd(), name.as_ptr(), flags) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: a new fd nobody else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// `openat2` with `RESOLVE_*` flags: path resolution the kernel keeps inside `dirfd`.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let path = cstr(path)?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags,
        mode,
        resolve,
    };
    // SAFETY: `path` and `how` live across the call; the size is the struct's.
    let fd = check_long(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The kernel's view of the working directory (`getcwd(2)` prefixes "(unreachable)" when
/// it lies outside the current root; glibc's wrapper hides that). Does not allocate.
pub fn getcwd_raw(buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`.
    let n = check_long(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })?;
    Ok((n as usize).saturating_sub(1))
}

pub fn mkfifo(path: &Path, mode: libc::mode_t) -> io::Result<()> {
    let path = cstr(path)?;
    // SAFETY: `path` is a valid C string.
    check(unsafe { libc::mkfifo(path.as_ptr(), mode) }).map(drop)
}

pub fn memfd_create(name: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), flags) })?;
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS takes an integer.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

pub fn get_seals(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GET_SEALS takes no argument.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
}
