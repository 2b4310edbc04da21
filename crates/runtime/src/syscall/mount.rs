//! The mount tree: the [`Syscall`] trait that rootfs setup mounts, pivots and makes device
//! nodes through (so `rootfs` can be tested with a recording fake) and [`LinuxSyscall`], the
//! real kernel behind it; detached bind mounts (`open_tree`, `mount_setattr`) for
//! `process::sealed`; and the flags of an existing mount, which `rootfs` keeps on a remount.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{check, check_long, cstr};

/// The mount-tree operations of rootfs setup, behind a trait so tests can record them.
pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()>;
    fn umount2(&self, target: &Path, flags: libc::c_int) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chroot(&self, path: &Path) -> io::Result<()>;
    fn mknod(&self, path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()>;
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
}

/// The real kernel.
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let source = source.map(cstr).transpose()?;
        let target = cstr(target)?;
        let fstype = fstype.map(cstr).transpose()?;
        let data = data.map(cstr).transpose()?;
        let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: every pointer is either null or a NUL-terminated string that outlives the
        // call; mount(2) reads them and keeps no reference.
        check(unsafe {
            libc::mount(
                ptr(&source),
                target.as_ptr(),
                ptr(&fstype),
                flags,
                ptr(&data).cast(),
            )
        })
        .map(drop)
    }

    fn umount2(&self, target: &Path, flags: libc::c_int) -> io::Result<()> {
        let target = cstr(target)?;
        // SAFETY: `target` is a valid C string for the duration of the call.
        check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        let new_root = cstr(new_root)?;
        let put_old = cstr(put_old)?;
        // SAFETY: both arguments are valid C strings; pivot_root has no libc wrapper.
        check_long(unsafe {
            libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr())
        })
        .map(drop)
    }

    fn chroot(&self, path: &Path) -> io::Result<()> {
        let path = cstr(path)?;
        // SAFETY: `path` is a valid C string.
        check(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
    }

    fn mknod(&self, path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
        let path = cstr(path)?;
        // SAFETY: `path` is a valid C string.
        check(unsafe { libc::mknod(path.as_ptr(), mode, dev) }).map(drop)
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE)`: a detached bind mount of `path`.
pub fn open_tree_clone(path: &Path) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let path = cstr(path)?;
    // SAFETY: `path` is a valid C string.
    let fd = check_long(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })?;
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes a (detached) mount read-only with `mount_setattr`.
pub fn mount_setattr_rdonly(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` lives across the call; the empty path with AT_EMPTY_PATH names `fd`.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// The mount flags (`MS_RDONLY`, `MS_NOSUID`, ...) of the mount holding `path`, as
/// `statvfs` reports them: a bind remount must keep the ones the kernel locked.
pub fn mount_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let p = cstr(path)?;
    // SAFETY: statvfs is plain data filled by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is a valid C string and `st` a valid out-pointer.
    check(unsafe { libc::statvfs(p.as_ptr(), &mut st) })?;
    let map = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    Ok(map
        .iter()
        .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
        .fold(0, |acc, (_, ms)| acc | ms))
}

pub fn makedev(major: u64, minor: u64) -> libc::dev_t {
    libc::makedev(major as u32, minor as u32)
}
