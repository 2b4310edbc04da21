//! Path resolution that cannot leave the container's root (CVE-2021-30465): every mount
//! target is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)`, held as an `O_PATH`
//! fd, and mounted on through `/proc/self/fd/N`, so swapping a path component for a
//! symlink between the check and the mount changes nothing.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::syscall;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// The `/proc/self/fd/N` path of an fd: what `mount(2)` is given as target.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The path's components below the root, with `.` and `..` resolved lexically.
fn components(path: &Path) -> Vec<&std::ffi::OsStr> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Opens `path` (absolute in container terms) as an `O_PATH` fd, resolving symlinks as if
/// `root` were `/`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel: PathBuf = components(path).iter().collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    syscall::openat2(
        root,
        &rel,
        (libc::O_PATH | libc::O_CLOEXEC) as u64,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// Creates `path` and its missing parents as directories inside `root`; returns the
/// directory as an `O_PATH` fd. A dangling symlink on the way is followed inside `root`
/// and its target created there.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    mkdir_all_hops(root, path, mode, 40)
}

fn mkdir_all_hops(root: BorrowedFd<'_>, path: &Path, mode: u32, hops: u32) -> io::Result<OwnedFd> {
    match open_in_root(root, path) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let comps = components(path);
    let mut parent: Option<OwnedFd> = None;
    for i in 0..comps.len() {
        let prefix: PathBuf = comps[..=i].iter().collect();
        match open_in_root(root, &prefix) {
            Ok(fd) => {
                parent = Some(fd);
                continue;
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        let dir = match &parent {
            Some(p) => fd_path(p.as_fd()),
            None => fd_path(root),
        };
        let entry = dir.join(comps[i]);
        if let Ok(target) = std::fs::read_link(&entry) {
            // A dangling symlink: continue from its target, resolved inside the root.
            if hops == 0 {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let base: PathBuf = if target.is_absolute() {
                PathBuf::from("/")
            } else {
                Path::new("/").join(comps[..i].iter().collect::<PathBuf>())
            };
            let mut next = base.join(target);
            for c in &comps[i + 1..] {
                next.push(c);
            }
            return mkdir_all_hops(root, &next, mode, hops - 1);
        }
        match std::fs::DirBuilder::new().mode(mode).create(&entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        parent = Some(open_in_root(root, &prefix)?);
    }
    match parent {
        Some(p) => Ok(p),
        None => open_in_root(root, path),
    }
}

/// Creates an empty file at `path` inside `root` (parents included) unless something is
/// there already; returns it as an `O_PATH` fd. Bind mounts of files land on it.
pub fn create_file_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    match open_in_root(root, path) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let comps = components(path);
    let (name, parents) = comps
        .split_last()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent_path: PathBuf = parents.iter().collect();
    let parent = mkdir_all_in_root(root, &parent_path, 0o755)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(fd_path(parent.as_fd()).join(name))
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path)
}

/// True when the fd is a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> bool {
    std::fs::metadata(fd_path(fd)).is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("berth-secure-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn symlink_mount_target_cannot_escape_the_root() {
        let base = tmp("escape");
        let root = base.join("rootfs");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An image whose /data points at the host.
        std::os::unix::fs::symlink(&outside, root.join("data")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", root.join("up")).unwrap();
        let rootfd = File::open(&root).unwrap();
        let fd = mkdir_all_in_root(rootfd.as_fd(), Path::new("/data/sub"), 0o755).unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert!(real.starts_with(root.canonicalize().unwrap()), "{real:?}");
        assert!(!outside.join("sub").exists());
        let fd = create_file_in_root(rootfd.as_fd(), Path::new("/up/etc/x")).unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert_eq!(real, root.canonicalize().unwrap().join("etc/x"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn dotdot_is_resolved_below_the_root() {
        let base = tmp("dotdot");
        let rootfd = File::open(&base).unwrap();
        let fd = mkdir_all_in_root(rootfd.as_fd(), Path::new("/../../a/./b/../c"), 0o755).unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(fd.as_fd())).unwrap(),
            base.canonicalize().unwrap().join("a/c")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
