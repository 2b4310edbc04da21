//! Device nodes in the container's `/dev` (config-linux.md "Default Devices" and
//! "Devices") and the symlinks every Linux userland expects there.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::secure::{create_file_in_root, fd_path, mkdir_all_in_root, open_in_root};
use super::RootfsError;
use crate::spec;
use crate::syscall::{self, Syscall};

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `c`, `b`, `u` (unbuffered char) or `p` (fifo).
    pub kind: char,
    pub path: String,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Device {
    fn char(path: &str, major: u64, minor: u64) -> Self {
        Device {
            kind: 'c',
            path: path.into(),
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        }
    }

    pub fn from_spec(d: &spec::Device) -> Self {
        Device {
            kind: d.kind.chars().next().unwrap_or('c'),
            path: d.path.clone(),
            major: d.major.max(0) as u64,
            minor: d.minor.max(0) as u64,
            mode: d.file_mode.unwrap_or(0o666) & 0o7777,
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
        }
    }

    fn type_bits(&self) -> libc::mode_t {
        match self.kind {
            'b' => libc::S_IFBLK,
            'p' => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        }
    }
}

/// The devices every container gets.
pub fn defaults() -> Vec<Device> {
    vec![
        Device::char("/dev/null", 1, 3),
        Device::char("/dev/zero", 1, 5),
        Device::char("/dev/full", 1, 7),
        Device::char("/dev/random", 1, 8),
        Device::char("/dev/urandom", 1, 9),
        Device::char("/dev/tty", 5, 0),
    ]
}

/// Creates the nodes (or, in a user namespace, bind-mounts the host's). An existing node
/// is kept, as runc does.
pub fn create(
    sys: &dyn Syscall,
    root: BorrowedFd<'_>,
    devices: &[Device],
    bind: bool,
) -> Result<(), RootfsError> {
    for d in devices {
        let err = |source| RootfsError::Device {
            path: d.path.clone(),
            source,
        };
        let path = Path::new(&d.path);
        if bind {
            let target = create_file_in_root(root, path).map_err(err)?;
            sys.mount(
                Some(path),
                &fd_path(target.as_fd()),
                Some("bind"),
                libc::MS_BIND,
                None,
            )
            .map_err(err)?;
            continue;
        }
        match open_in_root(root, path) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let parent =
            mkdir_all_in_root(root, path.parent().unwrap_or(Path::new("/")), 0o755).map_err(err)?;
        let name = path
            .file_name()
            .ok_or_else(|| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        let node = fd_path(parent.as_fd()).join(name);
        let dev = if d.kind == 'p' {
            0
        } else {
            syscall::makedev(d.major, d.minor)
        };
        match sys.mknod(&node, d.type_bits() | d.mode, dev) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(e)),
        }
        sys.lchown(&node, d.uid, d.gid).map_err(err)?;
    }
    Ok(())
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core`, and `/dev/ptmx` pointing at the
/// container's own devpts instance.
pub fn symlinks(root: BorrowedFd<'_>, has_devpts: bool) -> Result<(), RootfsError> {
    let dev = mkdir_all_in_root(root, Path::new("/dev"), 0o755).map_err(|source| {
        RootfsError::Device {
            path: "/dev".into(),
            source,
        }
    })?;
    let dir = fd_path(dev.as_fd());
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if has_devpts {
        let ptmx = dir.join("ptmx");
        if std::fs::symlink_metadata(&ptmx).is_ok() {
            std::fs::remove_file(&ptmx).map_err(|source| RootfsError::Device {
                path: "/dev/ptmx".into(),
                source,
            })?;
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match std::os::unix::fs::symlink(target, dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(RootfsError::Device {
                    path: format!("/dev/{name}"),
                    source,
                })
            }
        }
    }
    Ok(())
}
