//! `exec`: another process in a running (or created) container, entering the init's
//! namespaces through `/proc/<pid>/ns/*`, its cgroups, and the container's seccomp profile.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::create::write_pid_file;
use super::{io_err, Container, ContainerError};
use crate::process::channel::Channel;
use crate::process::sealed::SealedExe;
use crate::process::{fork, namespace_flag, Bootstrap, FromChild, Kind, ToChild};
use crate::spec::{Process, NAMESPACE_TYPES};
use crate::state::Status;
use crate::syscall::{self, WaitStatus};

#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// A process started by `exec`.
#[derive(Debug)]
pub struct ExecHandle {
    pub pid: i32,
}

impl ExecHandle {
    /// Waits for the process. It is a grandchild of the caller: the caller must have made
    /// itself a child subreaper (`PR_SET_CHILD_SUBREAPER`) before `exec`.
    pub fn wait(&self) -> Result<WaitStatus, ContainerError> {
        loop {
            match syscall::waitpid(self.pid, false).map_err(io_err("wait for the process"))? {
                Some((_, status)) => return Ok(status),
                None => continue,
            }
        }
    }
}

fn same_namespace(a: &str, b: &str) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl Container {
    pub fn exec(&self, process: Process, opts: ExecOptions) -> Result<ExecHandle, ContainerError> {
        let status = self.status();
        if !matches!(status, Status::Running | Status::Created) {
            return Err(ContainerError::ExecState {
                id: self.id().into(),
                status,
            });
        }
        let init = self.state.pid;
        let mut join = Vec::new();
        for kind in NAMESPACE_TYPES {
            if self.spec().namespace(kind).is_none() {
                continue;
            }
            let (_, name) = namespace_flag(kind).expect("known namespace types");
            let theirs = format!("/proc/{init}/ns/{name}");
            // Joining our own user namespace fails with EINVAL; any other is a no-op.
            if same_namespace(&theirs, &format!("/proc/self/ns/{name}")) {
                continue;
            }
            join.push((kind.to_string(), PathBuf::from(theirs)));
        }
        let mut spec = self.spec().clone();
        spec.process = Some(process);

        let min_fd = 3 + opts.preserve_fds as RawFd;
        let above = |fd: OwnedFd| -> Result<OwnedFd, ContainerError> {
            if fd.as_raw_fd() >= min_fd {
                Ok(fd)
            } else {
                syscall::dup_at_least(fd.as_raw_fd(), min_fd)
                    .map_err(io_err("duplicate a descriptor"))
            }
        };
        let console = match &opts.console_socket {
            Some(p) => Some(above(OwnedFd::from(UnixStream::connect(p).map_err(
                io_err(format!("connect to console socket {}", p.display())),
            )?))?),
            None => None,
        };
        let exe = SealedExe::new().map_err(io_err("seal the runtime binary"))?;
        let (parent_end, child_end) = Channel::pair("the exec process", "the runtime")
            .map_err(io_err("create a socket pair"))?;
        let parent_end = Channel::from_fd(above(parent_end.into_fd())?, "the exec process");
        let child_end = Channel::from_fd(above(child_end.into_fd())?, "the runtime");
        let inherit: Vec<RawFd> = console.iter().map(|c| c.as_raw_fd()).collect();
        let stage1 = fork::spawn_init(&exe, child_end, &inherit, opts.preserve_fds)
            .map_err(io_err("fork the exec process"))?;
        drop(exe);
        parent_end.send(&ToChild::Bootstrap(Box::new(Bootstrap {
            kind: Kind::Exec,
            id: self.id().to_string(),
            bundle: self.state.bundle.clone(),
            rootfs: self.state.rootfs.clone(),
            spec,
            join,
            new: Vec::new(),
            no_pivot: false,
            fifo_fd: None,
            console_fd: console.as_ref().map(|c| c.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            cgroup: self.state.cgroup.clone(),
            runtime_hooks: false,
        })))?;
        let mut pid = None;
        let result = loop {
            match parent_end.recv::<FromChild>() {
                Ok(Some(FromChild::Pid { pid: p, joined })) => {
                    pid = Some(p);
                    let _ = syscall::waitpid(stage1, false);
                    if !joined {
                        if let Err(e) = self.state.cgroup.add_pid(p) {
                            break Err(e.into());
                        }
                    }
                    if let Err(e) = parent_end.send(&ToChild::CgroupJoined) {
                        break Err(e.into());
                    }
                }
                // End of file once the process executed (the channel is close-on-exec).
                Ok(None) => break pid.ok_or(ContainerError::InitDied),
                Ok(Some(FromChild::Error { message })) => {
                    break Err(ContainerError::Init { message })
                }
                Ok(Some(other)) => {
                    break Err(ContainerError::Init {
                        message: format!("unexpected message {other:?}"),
                    })
                }
                Err(e) => break Err(e.into()),
            }
        };
        let pid = match result {
            Ok(p) => p,
            Err(e) => {
                if let Some(p) = pid {
                    let _ = syscall::kill(p, libc::SIGKILL);
                    let _ = syscall::waitpid(p, true);
                } else {
                    let _ = syscall::kill(stage1, libc::SIGKILL);
                    let _ = syscall::waitpid(stage1, false);
                }
                return Err(e);
            }
        };
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, pid)?;
        }
        Ok(ExecHandle { pid })
    }
}
