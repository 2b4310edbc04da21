//! The container's filesystem view, built by the init process inside its new mount
//! namespace (runtime-spec config.md "Root", "Mounts"; config-linux.md "Devices",
//! "maskedPaths", "readonlyPaths", "rootfsPropagation").
//!
//! Order, as runc does it: make `/` a slave (or the requested propagation) so nothing leaks
//! to the host; bind the rootfs onto itself; the spec's mounts, each on a target resolved
//! inside the rootfs ([`secure`]); `/dev` devices and symlinks; (createRuntime and
//! createContainer hooks run here); `pivot_root` (or `MS_MOVE` + `chroot` with
//! `--no-pivot`); then, inside: sysctls, masked and read-only paths, the read-only root.

mod devices;
pub mod options;
pub mod secure;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::cgroups::CgroupState;
use crate::spec::{Mount, Spec};
use crate::syscall::{self, Syscall};
use options::MountOptions;
use secure::{create_file_in_root, fd_path, mkdir_all_in_root, open_in_root};

pub use devices::Device;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("invalid rootfs {}", path.display())]
    Rootfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("set propagation of / to {propagation}")]
    Propagation {
        propagation: String,
        #[source]
        source: io::Error,
    },
    #[error("unknown rootfsPropagation {0:?}")]
    UnknownPropagation(String),
    #[error("mount {source_desc} to {destination}")]
    Mount {
        source_desc: String,
        destination: String,
        #[source]
        source: io::Error,
    },
    #[error("create mount target {destination}")]
    Target {
        destination: String,
        #[source]
        source: io::Error,
    },
    #[error("mount source {} of {destination}", path.display())]
    Source {
        path: PathBuf,
        destination: String,
        #[source]
        source: io::Error,
    },
    #[error("create device {path}")]
    Device {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("pivot_root to {}", path.display())]
    Pivot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mask {path}")]
    Mask {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("make {path} read-only")]
    ReadOnly {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("sysctl {key}")]
    Sysctl {
        key: String,
        #[source]
        source: io::Error,
    },
    #[error("sysctl {key} is not allowed: {reason}")]
    SysctlNotAllowed { key: String, reason: &'static str },
    #[error("create working directory {path}")]
    Cwd {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// What rootfs setup needs besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: &'a CgroupState,
    pub new_cgroupns: bool,
    /// In a new user namespace devices cannot be created, only bound from the host.
    pub new_userns: bool,
}

/// Everything up to (not including) `pivot_root`.
pub fn prepare(sys: &dyn Syscall, ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    let linux = ctx.spec.linux_or_default();
    let (prop_name, prop) = match linux.rootfs_propagation.as_deref() {
        None | Some("") => ("rslave", libc::MS_SLAVE | libc::MS_REC),
        Some(p) => (
            p,
            options::propagation(p).ok_or_else(|| RootfsError::UnknownPropagation(p.into()))?,
        ),
    };
    // Shared is applied to the rootfs below; the host's `/` only becomes a slave.
    let root_prop = if prop & libc::MS_SHARED != 0 {
        libc::MS_SLAVE | libc::MS_REC
    } else {
        prop
    };
    sys.mount(None, Path::new("/"), None, root_prop, None)
        .map_err(|source| RootfsError::Propagation {
            propagation: prop_name.into(),
            source,
        })?;
    let rootfs_err = |source| RootfsError::Rootfs {
        path: ctx.rootfs.to_path_buf(),
        source,
    };
    // pivot_root needs the new root to be a mount point.
    sys.mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        Some("bind"),
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(rootfs_err)?;
    if prop & libc::MS_SHARED != 0 || prop & libc::MS_PRIVATE != 0 {
        sys.mount(None, ctx.rootfs, None, prop, None)
            .map_err(|source| RootfsError::Propagation {
                propagation: prop_name.into(),
                source,
            })?;
    }
    let root = File::open(ctx.rootfs).map_err(rootfs_err)?;
    let mut has_devpts = false;
    let mut dev_from_host = false;
    for m in &ctx.spec.mounts {
        mount_one(sys, &root, m, ctx)?;
        if m.destination == "/dev/pts" && m.kind.as_deref() == Some("devpts") {
            has_devpts = true;
        }
        if m.destination == "/dev" && m.source.as_deref() == Some("/dev") {
            dev_from_host = true;
        }
    }
    if !dev_from_host {
        let mut list = devices::defaults();
        list.extend(linux.devices.iter().map(Device::from_spec));
        devices::create(sys, root.as_fd(), &list, ctx.new_userns)?;
        devices::symlinks(root.as_fd(), has_devpts)?;
    }
    if let Some(p) = &ctx.spec.process {
        mkdir_all_in_root(root.as_fd(), Path::new(&p.cwd), 0o755).map_err(|source| {
            RootfsError::Cwd {
                path: p.cwd.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

fn mount_err(m: &Mount, source: io::Error) -> RootfsError {
    RootfsError::Mount {
        source_desc: m.source.clone().unwrap_or_else(|| "none".into()),
        destination: m.destination.clone(),
        source,
    }
}

fn target_err(m: &Mount, source: io::Error) -> RootfsError {
    RootfsError::Target {
        destination: m.destination.clone(),
        source,
    }
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locked on it (a bind of
/// a nosuid mount stays nosuid; in a user namespace dropping it is refused).
fn bind_remount(sys: &dyn Syscall, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match sys.mount(None, target, None, base | flags, None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let locked = syscall::mount_flags(target)?;
            sys.mount(None, target, None, base | flags | locked, None)
        }
        r => r,
    }
}

fn mount_one(
    sys: &dyn Syscall,
    root: &File,
    m: &Mount,
    ctx: &RootfsContext<'_>,
) -> Result<(), RootfsError> {
    let opts = MountOptions::parse(&m.options);
    let kind = m.kind.as_deref().unwrap_or("none");
    let dest = Path::new(&m.destination);
    if kind == "cgroup" || kind == "cgroup2" {
        return mount_cgroup(sys, root, m, &opts, ctx);
    }
    if kind == "bind" || opts.is_bind() {
        let source = ctx.bundle.join(m.source.as_deref().unwrap_or_default());
        let meta = std::fs::metadata(&source).map_err(|e| RootfsError::Source {
            path: source.clone(),
            destination: m.destination.clone(),
            source: e,
        })?;
        let target = if meta.is_dir() {
            mkdir_all_in_root(root.as_fd(), dest, 0o755)
        } else {
            create_file_in_root(root.as_fd(), dest)
        }
        .map_err(|e| target_err(m, e))?;
        let rec = opts.flags & libc::MS_REC;
        sys.mount(
            Some(&source),
            &fd_path(target.as_fd()),
            Some("bind"),
            libc::MS_BIND | rec,
            None,
        )
        .map_err(|e| mount_err(m, e))?;
        let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        let mounted = reopen(root, m)?;
        if extra != 0 {
            bind_remount(sys, &fd_path(mounted.as_fd()), extra | rec)
                .map_err(|e| mount_err(m, e))?;
        }
        propagate(sys, &mounted, m, &opts)?;
        return Ok(());
    }
    let target = mkdir_all_in_root(root.as_fd(), dest, 0o755).map_err(|e| target_err(m, e))?;
    let source = m.source.clone().unwrap_or_else(|| kind.to_string());
    let copy_from = opts.tmpcopyup.then(|| fd_path(target.as_fd()));
    let staged = match &copy_from {
        // Keep a handle on the directory's old contents before the tmpfs covers them.
        Some(p) => Some(File::open(p).map_err(|e| target_err(m, e))?),
        None => None,
    };
    let result = sys.mount(
        Some(Path::new(&source)),
        &fd_path(target.as_fd()),
        Some(kind),
        opts.flags,
        opts.data_string().as_deref(),
    );
    match result {
        Ok(()) => {}
        Err(e) if kind == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
            // Without its own network namespace (or in a user namespace) sysfs cannot be
            // mounted fresh: bind the host's, read-only as asked.
            sys.mount(
                Some(Path::new("/sys")),
                &fd_path(target.as_fd()),
                Some("bind"),
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(|e| mount_err(m, e))?;
            let mounted = reopen(root, m)?;
            bind_remount(sys, &fd_path(mounted.as_fd()), opts.flags | libc::MS_REC)
                .map_err(|e| mount_err(m, e))?;
        }
        Err(e) => return Err(mount_err(m, e)),
    }
    let mounted = reopen(root, m)?;
    if let Some(old) = staged {
        copy_tree(&fd_path(old.as_fd()), &fd_path(mounted.as_fd())).map_err(|e| mount_err(m, e))?;
    }
    propagate(sys, &mounted, m, &opts)
}

/// The mount now on top of a destination.
fn reopen(root: &File, m: &Mount) -> Result<OwnedFd, RootfsError> {
    open_in_root(root.as_fd(), Path::new(&m.destination)).map_err(|e| target_err(m, e))
}

fn propagate(
    sys: &dyn Syscall,
    mounted: &OwnedFd,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        sys.mount(None, &fd_path(mounted.as_fd()), None, *p, None)
            .map_err(|e| mount_err(m, e))?;
    }
    Ok(())
}

/// Copies a directory tree (tmpcopyup): regular files, directories and symlinks.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dst = to.join(e.file_name());
        if ft.is_dir() {
            std::fs::create_dir_all(&dst)?;
            std::fs::set_permissions(&dst, e.metadata()?.permissions())?;
            copy_tree(&e.path(), &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// `cgroup`/`cgroup2` mounts: the container's own cgroups, fresh in a cgroup namespace,
/// bound from the host otherwise; v1 gets a tmpfs with one directory per hierarchy.
fn mount_cgroup(
    sys: &dyn Syscall,
    root: &File,
    m: &Mount,
    opts: &MountOptions,
    ctx: &RootfsContext<'_>,
) -> Result<(), RootfsError> {
    let target = mkdir_all_in_root(root.as_fd(), Path::new(&m.destination), 0o755)
        .map_err(|e| target_err(m, e))?;
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC);
    let cg = ctx.cgroup;
    // Mounts on `dest` (a container path): fresh in a cgroup namespace, else a bind of the
    // host directory, remounted (through a new handle on the mount) with the flags.
    let bind_or_mount =
        |dest: &Path, dir: &Path, fstype: &str, data: Option<&str>| -> io::Result<()> {
            let target = mkdir_all_in_root(root.as_fd(), dest, 0o755)?;
            if ctx.new_cgroupns {
                sys.mount(
                    Some(Path::new(fstype)),
                    &fd_path(target.as_fd()),
                    Some(fstype),
                    flags,
                    data,
                )
            } else {
                sys.mount(
                    Some(dir),
                    &fd_path(target.as_fd()),
                    Some("bind"),
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                let mounted = open_in_root(root.as_fd(), dest)?;
                bind_remount(sys, &fd_path(mounted.as_fd()), flags | libc::MS_REC)
            }
        };
    if cg.is_unified() {
        let dir = cg.unified.as_deref().expect("unified checked");
        return bind_or_mount(Path::new(&m.destination), dir, "cgroup2", None)
            .map_err(|e| mount_err(m, e));
    }
    // v1: a tmpfs holding one directory per hierarchy, read-only at the end if asked.
    let tmpfs_flags = flags & !libc::MS_RDONLY;
    sys.mount(
        Some(Path::new("tmpfs")),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(|e| mount_err(m, e))?;
    let dest = Path::new(&m.destination);
    let mut entries: Vec<(String, &Path, String)> = cg
        .v1
        .iter()
        .map(|(key, dir)| {
            let name = key.strip_prefix("name=").unwrap_or(key).to_string();
            (name, dir.as_path(), key.clone())
        })
        .collect();
    if let Some(u) = &cg.unified {
        entries.push(("unified".into(), u.as_path(), String::new()));
    }
    for (name, dir, key) in entries {
        let (fstype, data) = if key.is_empty() {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(key.as_str()))
        };
        bind_or_mount(&dest.join(&name), dir, fstype, data).map_err(|e| mount_err(m, e))?;
        // Co-mounted controllers (cpu,cpuacct) are also reachable by each name.
        if key.contains(',') && !key.starts_with("name=") {
            for c in key.split(',') {
                let _ = std::os::unix::fs::symlink(&name, fd_path(target.as_fd()).join(c));
            }
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        let mounted = reopen(root, m)?;
        sys.mount(
            None,
            &fd_path(mounted.as_fd()),
            None,
            libc::MS_REMOUNT | tmpfs_flags | libc::MS_RDONLY,
            None,
        )
        .map_err(|e| mount_err(m, e))?;
    }
    Ok(())
}

/// Makes the rootfs `/`: `pivot_root(".", ".")` and a lazy unmount of the old root
/// stacked beneath, or with `no_pivot` a move mount and `chroot` (for ramfs roots).
pub fn pivot(sys: &dyn Syscall, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Pivot {
        path: rootfs.to_path_buf(),
        source,
    };
    std::env::set_current_dir(rootfs).map_err(err)?;
    if no_pivot {
        sys.mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
            .map_err(err)?;
        sys.chroot(Path::new(".")).map_err(err)?;
    } else {
        let old_root = File::open("/").map_err(err)?;
        sys.pivot_root(Path::new("."), Path::new("."))
            .map_err(err)?;
        // The old root is now stacked on "."; detach it without propagating the unmount
        // to the host.
        std::env::set_current_dir(fd_path(old_root.as_fd())).map_err(err)?;
        sys.mount(
            None,
            Path::new("."),
            None,
            libc::MS_SLAVE | libc::MS_REC,
            None,
        )
        .map_err(err)?;
        sys.umount2(Path::new("."), libc::MNT_DETACH).map_err(err)?;
    }
    std::env::set_current_dir("/").map_err(err)
}

/// sysctls a container may set: those of the namespaces it owns (runc's validation).
pub fn check_sysctl(key: &str, spec: &Spec) -> Result<(), RootfsError> {
    let has = |k: &str| spec.namespace(k).is_some();
    let deny = |reason| {
        Err(RootfsError::SysctlNotAllowed {
            key: key.to_string(),
            reason,
        })
    };
    let ipc = key.starts_with("fs.mqueue.")
        || matches!(
            key,
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        );
    if ipc {
        return if has("ipc") {
            Ok(())
        } else {
            deny("it needs a private ipc namespace")
        };
    }
    if key.starts_with("net.") {
        return if has("network") {
            Ok(())
        } else {
            deny("it needs a private network namespace")
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has("uts") {
            Ok(())
        } else {
            deny("it needs a private uts namespace")
        };
    }
    deny("it is not namespaced")
}

/// Everything after `pivot_root`: sysctls, masked and read-only paths, the read-only root.
pub fn finish(sys: &dyn Syscall, spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux_or_default();
    for (key, value) in &linux.sysctl {
        check_sysctl(key, spec)?;
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| RootfsError::Sysctl {
            key: key.clone(),
            source,
        })?;
    }
    let root = File::open("/").map_err(|source| RootfsError::Rootfs {
        path: "/".into(),
        source,
    })?;
    for p in &linux.readonly_paths {
        let fd = match open_in_root(root.as_fd(), Path::new(p)) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RootfsError::ReadOnly {
                    path: p.clone(),
                    source,
                })
            }
        };
        let target = fd_path(fd.as_fd());
        let ro_err = |source| RootfsError::ReadOnly {
            path: p.clone(),
            source,
        };
        sys.mount(
            Some(&target),
            &target,
            Some("bind"),
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(ro_err)?;
        let fd = open_in_root(root.as_fd(), Path::new(p)).map_err(ro_err)?;
        bind_remount(
            sys,
            &fd_path(fd.as_fd()),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_REC,
        )
        .map_err(ro_err)?;
    }
    for p in &linux.masked_paths {
        let fd = match open_in_root(root.as_fd(), Path::new(p)) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RootfsError::Mask {
                    path: p.clone(),
                    source,
                })
            }
        };
        let target = fd_path(fd.as_fd());
        let r = if secure::is_dir(fd.as_fd()) {
            sys.mount(
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                libc::MS_RDONLY,
                None,
            )
        } else {
            sys.mount(
                Some(Path::new("/dev/null")),
                &target,
                Some("bind"),
                libc::MS_BIND,
                None,
            )
        };
        r.map_err(|source| RootfsError::Mask {
            path: p.clone(),
            source,
        })?;
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        bind_remount(sys, Path::new("/"), libc::MS_RDONLY).map_err(|source| {
            RootfsError::ReadOnly {
                path: "/".into(),
                source,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// (source, resolved target, fstype, flags)
    type Call = (Option<String>, String, Option<String>, libc::c_ulong);

    /// Records mount calls, resolving `/proc/self/fd/N` targets to real paths.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<Call>>,
        nodes: RefCell<Vec<String>>,
    }

    fn resolve(p: &Path) -> String {
        std::fs::read_link(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: libc::c_ulong,
            _data: Option<&str>,
        ) -> io::Result<()> {
            self.calls.borrow_mut().push((
                source.map(|s| s.display().to_string()),
                resolve(target),
                fstype.map(str::to_string),
                flags,
            ));
            Ok(())
        }
        fn umount2(&self, _: &Path, _: libc::c_int) -> io::Result<()> {
            Ok(())
        }
        fn pivot_root(&self, _: &Path, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn chroot(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn lchown(&self, _: &Path, _: u32, _: u32) -> io::Result<()> {
            Ok(())
        }
        fn mknod(&self, path: &Path, _: libc::mode_t, _: libc::dev_t) -> io::Result<()> {
            std::fs::write(path, b"")?;
            self.nodes.borrow_mut().push(
                resolve(path.parent().unwrap())
                    + "/"
                    + &path.file_name().unwrap().to_string_lossy(),
            );
            Ok(())
        }
    }

    #[test]
    fn default_spec_mounts_land_inside_the_rootfs() {
        let base = std::env::temp_dir().join(format!("berth-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let rootfs = base.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        // A hostile image: /sys is a symlink to the host's /tmp.
        std::os::unix::fs::symlink("/tmp", rootfs.join("sys")).unwrap();
        let mut spec = crate::spec::default_spec();
        spec.mounts.retain(|m| m.kind.as_deref() != Some("cgroup"));
        let sys = Recorder::default();
        let ctx = RootfsContext {
            spec: &spec,
            rootfs: &rootfs,
            bundle: &base,
            cgroup: &CgroupState::default(),
            new_cgroupns: false,
            new_userns: false,
        };
        prepare(&sys, &ctx).unwrap();
        let real_root = rootfs.canonicalize().unwrap().display().to_string();
        let calls = sys.calls.borrow();
        assert_eq!(calls[0].1, "/");
        assert_eq!(calls[0].3, libc::MS_SLAVE | libc::MS_REC);
        for (_, target, fstype, _) in calls.iter().skip(1) {
            assert!(
                target.starts_with(&real_root),
                "{fstype:?} mounted at {target}"
            );
        }
        let sysfs = calls
            .iter()
            .find(|c| c.2.as_deref() == Some("sysfs"))
            .unwrap();
        assert_eq!(sysfs.1, format!("{real_root}/tmp"));
        assert!(sys
            .nodes
            .borrow()
            .contains(&format!("{real_root}/dev/null")));
        assert_eq!(
            std::fs::read_link(rootfs.join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn host_sysctls_are_refused() {
        let spec = crate::spec::default_spec();
        assert!(check_sysctl("kernel.panic", &spec).is_err());
        assert!(check_sysctl("net.ipv4.ip_forward", &spec).is_ok());
        assert!(check_sysctl("kernel.shmmax", &spec).is_ok());
        let mut no_net = spec.clone();
        no_net
            .linux
            .as_mut()
            .unwrap()
            .namespaces
            .retain(|n| n.kind != "network");
        assert!(check_sysctl("net.ipv4.ip_forward", &no_net).is_err());
    }
}
