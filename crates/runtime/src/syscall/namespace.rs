//! Namespaces: joining (`setns`) and creating (`unshare`) them, and naming the UTS
//! namespace. Used by `process::init`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is an open namespace file descriptor for the duration of the call.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes no pointers; callers are single-threaded.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}
