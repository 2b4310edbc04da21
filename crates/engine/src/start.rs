//! `berth start` (and the second half of `run`): launch the container's supervisor and
//! wait for its word that the container runs (or why it does not).

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

use crate::state::Status;
use crate::{Engine, EngineError};

/// A supervisor this process started, and the pipe it reports on.
pub struct SupervisorHandle {
    child: Child,
    status: BufReader<std::fs::File>,
}

/// What the supervisor said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Started(i32),
    Exited(i32),
    Error(String),
    /// The supervisor closed the pipe without a word (it died).
    Gone,
}

impl SupervisorHandle {
    pub fn next_report(&mut self) -> Report {
        let mut line = String::new();
        match self.status.read_line(&mut line) {
            Ok(0) | Err(_) => Report::Gone,
            Ok(_) => {
                let line = line.trim_end();
                let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                match word {
                    "started" => Report::Started(rest.parse().unwrap_or(0)),
                    "exited" => Report::Exited(rest.parse().unwrap_or(255)),
                    _ => Report::Error(rest.to_string()),
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        // The supervisor is its own session leader and outlives us; reap it if it already
        // exited so it does not linger as a zombie while this process runs on.
        let _ = self.child.try_wait();
    }
}

impl Engine {
    /// Starts container `key`. With `attached`, the supervisor inherits this process's
    /// stdio and forwards the container's output (and input, with `-i`) through it.
    pub fn start(
        &self,
        key: &str,
        attached: bool,
    ) -> Result<(String, SupervisorHandle, i32), EngineError> {
        let id = self.containers.resolve(key)?;
        let _lock = self.containers.lock(&id)?;
        let (config, mut state) = self.load(&id)?;
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return Err(EngineError::AlreadyRunning { name: config.name });
        }
        state.stopped_by_user = false;
        state.error.clear();
        self.containers.save_state(&id, &state)?;

        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
                EngineError::Io {
                    op: "create status pipe for",
                    path: self.containers.dir(&id),
                    source: e.into(),
                }
            })?;
        // The write end must survive exec into the supervisor; this process is
        // single-threaded here, so no other child can inherit it meanwhile.
        rustix::io::fcntl_setfd(&write, rustix::io::FdFlags::empty()).map_err(|e| {
            EngineError::Io {
                op: "pass status pipe for",
                path: self.containers.dir(&id),
                source: e.into(),
            }
        })?;
        let exe = std::env::current_exe().map_err(|source| EngineError::Io {
            op: "find",
            path: "/proc/self/exe".into(),
            source,
        })?;
        let mut cmd = Command::new(exe);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .arg("container-supervise")
            .arg("--status-fd")
            .arg(write.as_raw_fd().to_string())
            .arg(&id);
        if attached {
            cmd.arg("--attached");
        } else {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let child = cmd.spawn().map_err(|source| EngineError::Io {
            op: "start the supervisor for",
            path: self.containers.dir(&id),
            source,
        })?;
        drop(write);
        let mut handle = SupervisorHandle {
            child,
            status: BufReader::new(std::fs::File::from(read)),
        };
        match handle.next_report() {
            Report::Started(pid) => Ok((id, handle, pid)),
            Report::Error(message) => Err(EngineError::StartFailed {
                name: config.name,
                message,
            }),
            Report::Exited(code) => Err(EngineError::StartFailed {
                name: config.name,
                message: format!("exited with {code} before it was reported running"),
            }),
            Report::Gone => Err(EngineError::StartFailed {
                name: config.name,
                message: "the supervisor exited without reporting".into(),
            }),
        }
    }
}
