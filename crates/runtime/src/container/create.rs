//! `create`: everything up to the point where the container init waits on `exec.fifo`.
//! On any failure the init is killed and the cgroups and state directory are removed, so a
//! failed create leaves nothing behind.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{io_err, validate_id, Container, ContainerError};
use crate::cgroups::{self, CgroupState, Layout};
use crate::hooks;
use crate::process::channel::Channel;
use crate::process::sealed::SealedExe;
use crate::process::{fork, plan_namespaces, Bootstrap, FromChild, Kind, ToChild};
use crate::spec::{IdMapping, Spec};
use crate::state::{self, ContainerState};
use crate::syscall;

/// Options of `create`, as runc's flags.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// A unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3..3+N to the container process.
    pub preserve_fds: u32,
    /// Use `MS_MOVE` + `chroot` instead of `pivot_root` (roots on ramfs).
    pub no_pivot: bool,
    /// A spec to use instead of `<bundle>/config.json` (the engine builds its own).
    pub spec: Option<Spec>,
}

/// Undoes a create that did not finish.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<CgroupState>,
    children: Vec<libc::pid_t>,
    init: Option<libc::pid_t>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.children {
            let _ = syscall::kill(pid, libc::SIGKILL);
            let _ = syscall::waitpid(pid, false);
        }
        if let Some(pid) = self.init {
            if let Ok(fd) = syscall::pidfd_open(pid) {
                let _ = syscall::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                let _ = super::wait_exit(&fd, Duration::from_secs(5));
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves an fd to a number at or above `min`, so it cannot land among the preserved fds.
fn above(fd: OwnedFd, min: RawFd) -> Result<OwnedFd, ContainerError> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    syscall::dup_at_least(fd.as_raw_fd(), min).map_err(io_err("duplicate a descriptor"))
}

fn write_mappings(pid: i32, file: &str, maps: &[IdMapping]) -> Result<(), ContainerError> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect();
    std::fs::write(format!("/proc/{pid}/{file}"), text)
        .map_err(io_err(format!("write /proc/{pid}/{file}")))
}

/// Writes a pid file the way runc does: a temp file renamed into place.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io_err(format!("write pid file {}", path.display())))
}

impl Container {
    /// Creates a container from a bundle: on success its init is waiting for `start`.
    pub fn create(
        root: &Path,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<Container, ContainerError> {
        validate_id(id)?;
        let bundle = bundle
            .canonicalize()
            .map_err(|source| ContainerError::Bundle {
                path: bundle.to_path_buf(),
                source,
            })?;
        let spec = match opts.spec {
            Some(s) => {
                s.validate()?;
                s
            }
            None => Spec::load(&bundle)?,
        };
        if spec.process.is_none() {
            return Err(ContainerError::NoProcess);
        }
        let rootfs_path = spec.rootfs(&bundle);
        let rootfs = rootfs_path
            .canonicalize()
            .map_err(|source| ContainerError::Rootfs {
                path: rootfs_path.clone(),
                source,
            })?;
        let linux = spec.linux_or_default();
        let (join, new) = plan_namespaces(&spec);
        if new.iter().any(|n| n == "user")
            && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty())
        {
            return Err(ContainerError::Spec(crate::spec::SpecError::Invalid(
                "a new user namespace needs uidMappings and gidMappings",
            )));
        }

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(io_err(format!("create state root {}", root.display())))?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ContainerError::Exists { id: id.into() })
            }
            Err(e) => return Err(io_err(format!("create {}", dir.display()))(e)),
        }
        let mut cleanup = Cleanup {
            dir: dir.clone(),
            cgroup: None,
            children: Vec::new(),
            init: None,
            armed: true,
        };

        // Opening a fifo for reading blocks until a writer appears: hold it O_PATH; the
        // init reopens it for writing through /proc/self/fd.
        let fifo_path = dir.join(state::FIFO_FILE);
        syscall::mkfifo(&fifo_path, 0o622).map_err(io_err("create exec fifo"))?;
        // Writable by any container user (the init opens it after its user switch),
        // whatever our umask.
        std::fs::set_permissions(&fifo_path, std::fs::Permissions::from_mode(0o622))
            .map_err(io_err("create exec fifo"))?;
        let min_fd = 3 + opts.preserve_fds as RawFd;
        let fifo: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&fifo_path)
            .map_err(io_err("open exec fifo"))?
            .into();
        let fifo = above(fifo, min_fd)?;
        let console = match &opts.console_socket {
            Some(p) => {
                let s = UnixStream::connect(p)
                    .map_err(io_err(format!("connect to console socket {}", p.display())))?;
                Some(above(OwnedFd::from(s), min_fd)?)
            }
            None => None,
        };

        let layout = Layout::detect()?;
        let mut cgroup = CgroupState::plan(
            &layout,
            linux.cgroups_path.as_deref().unwrap_or(""),
            id,
            &cgroups::own_cgroups(),
        )?;
        cleanup.cgroup = Some(cgroup.clone());
        cgroup.create()?;
        cleanup.cgroup = Some(cgroup.clone());
        let mut resources = linux.resources.clone().unwrap_or_default();
        resources.devices = cgroups::device_rules(&resources.devices, &linux.devices);
        cgroup.apply(&resources)?;

        let exe = SealedExe::new().map_err(io_err("seal the runtime binary"))?;
        let (parent_end, child_end) = Channel::pair("the container init", "the runtime")
            .map_err(io_err("create a socket pair"))?;
        let parent_end =
            Channel::from_fd(above(parent_end.into_fd(), min_fd)?, "the container init");
        let child_end = Channel::from_fd(above(child_end.into_fd(), min_fd)?, "the runtime");
        let mut inherit = vec![fifo.as_raw_fd()];
        inherit.extend(console.as_ref().map(|c| c.as_raw_fd()));
        let stage1 = fork::spawn_init(&exe, child_end, &inherit, opts.preserve_fds)
            .map_err(io_err("fork the container init"))?;
        cleanup.children.push(stage1);
        drop(exe);

        let hooks = spec.hooks.clone().unwrap_or_default();
        let runtime_hooks = !hooks.prestart.is_empty() || !hooks.create_runtime.is_empty();
        parent_end.send(&ToChild::Bootstrap(Box::new(Bootstrap {
            kind: Kind::Create,
            id: id.to_string(),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            spec: spec.clone(),
            join,
            new,
            no_pivot: opts.no_pivot,
            fifo_fd: Some(fifo.as_raw_fd()),
            console_fd: console.as_ref().map(|c| c.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            cgroup: cgroup.clone(),
            runtime_hooks,
        })))?;

        let mut init_pid = None;
        loop {
            match parent_end.recv::<FromChild>()? {
                Some(FromChild::WriteMappings { pid }) => {
                    write_mappings(pid, "uid_map", &linux.uid_mappings)?;
                    write_mappings(pid, "gid_map", &linux.gid_mappings)?;
                    parent_end.send(&ToChild::MappingsWritten)?;
                }
                Some(FromChild::Pid { pid, joined }) => {
                    init_pid = Some(pid);
                    cleanup.init = Some(pid);
                    let _ = syscall::waitpid(stage1, false);
                    cleanup.children.clear();
                    if !joined {
                        cgroup.add_pid(pid)?;
                    }
                    parent_end.send(&ToChild::CgroupJoined)?;
                }
                Some(FromChild::RunHooks) => {
                    let pid = init_pid.unwrap_or(0);
                    let st = serde_json::to_vec(&serde_json::json!({
                        "ociVersion": crate::spec::OCI_VERSION, "id": id, "status": "creating",
                        "pid": pid, "bundle": bundle, "annotations": spec.annotations,
                    }))
                    .expect("state serializes");
                    hooks::run("prestart", &hooks.prestart, &st)?;
                    hooks::run("createRuntime", &hooks.create_runtime, &st)?;
                    parent_end.send(&ToChild::HooksDone)?;
                }
                Some(FromChild::Ready) => break,
                Some(FromChild::Error { message }) => return Err(ContainerError::Init { message }),
                None => return Err(ContainerError::InitDied),
            }
        }
        let pid = init_pid.ok_or(ContainerError::InitDied)?;
        let pid_start = state::proc_stat(pid)
            .map(|(_, t)| t)
            .ok_or(ContainerError::InitDied)?;
        let st = ContainerState {
            id: id.to_string(),
            pid,
            pid_start,
            bundle,
            rootfs,
            created: state::rfc3339_nano(SystemTime::now()),
            owner: String::new(),
            spec,
            cgroup,
        };
        st.write(&dir).map_err(io_err("write state.json"))?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, pid)?;
        }
        cleanup.armed = false;
        Ok(Container { dir, state: st })
    }
}
