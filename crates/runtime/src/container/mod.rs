//! Containers and their lifecycle (runtime-spec runtime.md "Lifecycle"), one file per
//! verb. The state of every container lives in `<root>/<id>/`: `state.json` and, until
//! `start`, `exec.fifo`. `berth-runc` and the container engine both call this API; the
//! caller must be single-threaded when it calls [`Container::create`] and
//! [`Container::exec`] (they fork), and the container inherits its stdio.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod start;
mod update;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroups::CgroupError;
use crate::hooks::HookError;
use crate::process::channel::ChannelError;
use crate::spec::{Spec, SpecError};
use crate::state::{self, ContainerState, OciState, Status};
use crate::syscall;

pub use create::CreateOptions;
pub use exec::{ExecHandle, ExecOptions};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("container with given ID already exists")]
    Exists { id: String },
    #[error("container does not exist")]
    NotExist { id: String },
    #[error("container not running")]
    NotRunning { id: String },
    #[error("container not paused")]
    NotPaused { id: String },
    #[error("cannot start a container that has stopped")]
    StartStopped { id: String },
    #[error("cannot start an already running container")]
    StartRunning { id: String },
    #[error("cannot delete container {id} that is not stopped: {status}")]
    DeleteNotStopped { id: String, status: Status },
    #[error("cannot exec in a {status} container")]
    ExecState { id: String, status: Status },
    #[error("bundle {}", path.display())]
    Bundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid rootfs: stat {}", path.display())]
    Rootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config has no process to run")]
    NoProcess,
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cgroups")]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("talk to the container process")]
    Channel(#[from] ChannelError),
    #[error("unable to start container process: {message}")]
    Init { message: String },
    #[error("unable to start container process: the init process exited before it was ready")]
    InitDied,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read state of container {id}")]
    State {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container init did not exit within {0:?}")]
    KillTimeout(Duration),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// runc's rule: `^[\w+-\.]+$`, and not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidId(id.to_string()))
    }
}

/// One container, as recorded in its state directory.
#[derive(Debug, Clone)]
pub struct Container {
    dir: PathBuf,
    state: ContainerState,
}

impl Container {
    /// Reads a container's state from `<root>/<id>`.
    pub fn load(root: &Path, id: &str) -> Result<Self, ContainerError> {
        validate_id(id).map_err(|_| ContainerError::NotExist { id: id.into() })?;
        let dir = root.join(id);
        let state = match ContainerState::read(&dir) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotExist { id: id.into() })
            }
            Err(source) => {
                return Err(ContainerError::State {
                    id: id.into(),
                    source,
                })
            }
        };
        Ok(Self { dir, state })
    }

    /// Every container under `root`, sorted by id. Directories without a readable state
    /// (a create in progress) are skipped.
    pub fn list(root: &Path) -> Result<Vec<Self>, ContainerError> {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ContainerError::Io {
                    what: format!("list {}", root.display()),
                    source,
                })
            }
        };
        let mut out: Vec<Self> = entries
            .flatten()
            .filter_map(|e| Self::load(root, e.file_name().to_str()?).ok())
            .collect();
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    pub fn state(&self) -> &ContainerState {
        &self.state
    }

    pub fn spec(&self) -> &Spec {
        &self.state.spec
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current status, derived from the process, the fifo and the freezer.
    pub fn status(&self) -> Status {
        if !state::is_alive(self.state.pid, self.state.pid_start) {
            Status::Stopped
        } else if self.dir.join(state::FIFO_FILE).exists() {
            Status::Created
        } else if self.state.cgroup.is_frozen() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The state JSON (`berth-runc state`).
    pub fn oci_state(&self) -> OciState {
        self.state.oci_state(self.status())
    }

    /// Processes in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, ContainerError> {
        Ok(self.state.cgroup.pids()?)
    }

    /// Resource usage in runc's `events --stats` shape.
    pub fn stats(&self) -> serde_json::Value {
        crate::cgroups::stats(&self.state.cgroup)
    }

    /// A pidfd for the init, checked against its recorded start time so a recycled pid
    /// is never signalled.
    pub(crate) fn init_pidfd(&self) -> Option<OwnedFd> {
        let fd = syscall::pidfd_open(self.state.pid).ok()?;
        state::is_alive(self.state.pid, self.state.pid_start).then_some(fd)
    }
}

/// Waits until the process behind `pidfd` has exited.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> Result<(), ContainerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ContainerError::KillTimeout(timeout));
        }
        let r = syscall::poll_read(
            &[pidfd.as_fd()],
            left.as_millis().min(i32::MAX as u128) as i32,
        )
        .map_err(io_err("wait for the container to exit"))?;
        if r[0] != 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "abc-123_x.y+z", "A"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_container_is_reported_in_runc_words() {
        let err = Container::load(Path::new("/nonexistent-root"), "nope").unwrap_err();
        assert_eq!(err.to_string(), "container does not exist");
    }
}
