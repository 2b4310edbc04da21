//! A copy of the running binary that a container cannot write to (CVE-2019-5736: a
//! container that reached `/proc/<runtime pid>/exe` could overwrite the host's runtime).
//!
//! Preferred: a detached, read-only bind mount of `/proc/self/exe` (`open_tree` +
//! `mount_setattr`): no copy, and any open for writing through `/proc/<pid>/exe` fails
//! with EROFS because the file is reached through that read-only mount. Fallback for
//! kernels without the new mount API: a sealed memfd copy, as runc 1.1 does.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::syscall;

/// The binary to re-execute as `berth-runc init`.
pub struct SealedExe {
    fd: OwnedFd,
    /// How it was sealed, for `--debug` logs and tests.
    pub method: &'static str,
}

impl SealedExe {
    pub fn new() -> io::Result<Self> {
        let exe = Path::new("/proc/self/exe");
        if let Ok(fd) = syscall::open_tree_clone(exe) {
            if syscall::mount_setattr_rdonly(fd.as_fd()).is_ok() {
                return Ok(Self {
                    fd,
                    method: "read-only bind mount",
                });
            }
        }
        Self::memfd(exe)
    }

    fn memfd(exe: &Path) -> io::Result<Self> {
        const MFD_EXEC: libc::c_uint = 0x10;
        let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let fd = syscall::memfd_create(c"berth-runc", base | MFD_EXEC)
            .or_else(|_| syscall::memfd_create(c"berth-runc", base))?;
        let mut out = File::from(fd);
        io::copy(&mut File::open(exe)?, &mut out)?;
        let fd = OwnedFd::from(out);
        syscall::add_seals(
            fd.as_fd(),
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
        )?;
        Ok(Self {
            fd,
            method: "sealed memfd",
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfd_copy_is_sealed_against_writes() {
        let s = SealedExe::memfd(Path::new("/proc/self/exe")).unwrap();
        let seals = syscall::get_seals(s.fd()).unwrap();
        assert_ne!(seals & libc::F_SEAL_WRITE, 0);
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&s.fd()));
        // The seal refuses writes even through a reopened, writable descriptor.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        assert_eq!(f.write(b"x").unwrap_err().raw_os_error(), Some(libc::EPERM));
    }
}
