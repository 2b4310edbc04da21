//! Calling the OCI runtime. By default the supervisor calls berth's runtime library in
//! process (it is single-threaded, so the runtime may fork from it); with `BERTH_RUNTIME`
//! set, it drives that runc-compatible binary through its command line instead, as conmon
//! drives runc. Either way the container's init ends up a child of the supervisor (a
//! child subreaper) once the runtime's intermediate process is gone.

use std::ffi::OsStr;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("run the OCI runtime {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime {verb} {id}: {message}")]
    Failed {
        verb: &'static str,
        id: String,
        message: String,
    },
    #[error("runtime create {id}: no pid in {path}")]
    NoPid { id: String, path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Runtime {
    /// `None`: berth's own runtime, in process.
    binary: Option<PathBuf>,
    /// `argv[0]` for the binary.
    argv0: String,
    root: PathBuf,
}

/// The container's standard streams for `create`; `None` is /dev/null.
pub struct CreateStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

fn to_stdio(fd: Option<OwnedFd>) -> Stdio {
    fd.map_or_else(Stdio::null, Stdio::from)
}

/// The library error's whole chain, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// runc prints `time=... level=error msg="..."` (or plain text): keep the message.
pub fn message_of(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Some(i) = line.find("msg=\"") {
        let rest = &line[i + 5..];
        let end = rest.rfind('"').unwrap_or(rest.len());
        return rest[..end].replace("\\\"", "\"");
    }
    line.to_string()
}

impl Runtime {
    /// The runtime for containers whose runtime state lives under `run_root`.
    pub fn new(run_root: &Path) -> Self {
        let root = run_root.join("runtime");
        match std::env::var_os("BERTH_RUNTIME").filter(|v| !v.is_empty()) {
            Some(bin) => Self {
                argv0: Path::new(&bin)
                    .file_name()
                    .map_or_else(|| "runc".into(), |n| n.to_string_lossy().into_owned()),
                binary: Some(PathBuf::from(bin)),
                root,
            },
            None => Self {
                binary: None,
                argv0: "berth-runc".into(),
                root,
            },
        }
    }

    /// The runtime's binary for command-line calls (berth itself as `berth-runc` when the
    /// library serves the supervisor).
    fn binary(&self) -> PathBuf {
        self.binary.clone().unwrap_or_else(|| {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
        })
    }

    fn library_error(
        verb: &'static str,
        id: &str,
        e: &berth_runtime::ContainerError,
    ) -> RuntimeError {
        RuntimeError::Failed {
            verb,
            id: id.into(),
            message: chain(e),
        }
    }

    /// Runs `f` on the loaded container, in process.
    fn with_container<T>(
        &self,
        verb: &'static str,
        id: &str,
        f: impl FnOnce(berth_runtime::Container) -> Result<T, berth_runtime::ContainerError>,
    ) -> Result<T, RuntimeError> {
        berth_runtime::Container::load(&self.root, id)
            .and_then(f)
            .map_err(|e| Self::library_error(verb, id, &e))
    }

    /// `create` in process: the runtime gives the container this process's standard
    /// streams, so the container's are put there for the call and ours restored after.
    fn create_in_process(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<i32, RuntimeError> {
        let spawn_err = |source: std::io::Error| RuntimeError::Spawn {
            binary: "berth runtime".into(),
            source,
        };
        let null = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(spawn_err)?;
        let or_null = |fd: Option<OwnedFd>| -> Result<OwnedFd, RuntimeError> {
            match fd {
                Some(fd) => Ok(fd),
                None => null.try_clone().map(OwnedFd::from).map_err(spawn_err),
            }
        };
        let streams = [
            or_null(stdio.stdin)?,
            or_null(stdio.stdout)?,
            or_null(stdio.stderr)?,
        ];
        let mut saved = Vec::with_capacity(3);
        for fd in 0..3 {
            // SAFETY: 0, 1 and 2 are open for the whole life of the supervisor (it is
            // started with them); the borrow ends within this statement.
            let current = unsafe { BorrowedFd::borrow_raw(fd) };
            saved.push(
                rustix::io::fcntl_dupfd_cloexec(current, 3).map_err(|e| spawn_err(e.into()))?,
            );
        }
        let put = |fds: &[OwnedFd]| {
            for (target, fd) in fds.iter().enumerate() {
                // SAFETY: `target` is 0, 1 or 2, open as above; the OwnedFd is forgotten
                // right after the dup2, so it never closes the standard stream.
                let mut target_fd = unsafe { OwnedFd::from_raw_fd(target as i32) };
                let _ = rustix::io::dup2(fd, &mut target_fd);
                std::mem::forget(target_fd);
            }
        };
        put(&streams);
        let result = berth_runtime::Container::create(
            &self.root,
            id,
            bundle,
            berth_runtime::CreateOptions {
                console_socket: console_socket.map(Path::to_path_buf),
                pid_file: None,
                preserve_fds: 0,
                no_pivot: false,
                spec: None,
            },
        );
        put(&saved);
        result
            .map(|c| c.pid())
            .map_err(|e| Self::library_error("create", id, &e))
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(self.binary());
        c.arg0(&self.argv0).arg("--root").arg(&self.root).args(args);
        c
    }

    fn run(&self, verb: &'static str, id: &str, mut c: Command) -> Result<(), RuntimeError> {
        let out = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::Spawn {
                binary: self.binary().display().to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Failed {
                verb,
                id: id.into(),
                message: message_of(&out.stderr),
            })
        }
    }

    /// `create`: the container's init waits for `start`. Returns its pid.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<i32, RuntimeError> {
        if self.binary.is_none() {
            return self.create_in_process(id, bundle, console_socket, stdio);
        }
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        // Errors also go to a log file (a global option): the runtime's stderr is the
        // container's.
        let err_path = bundle.join("create.err");
        let _ = std::fs::remove_file(&err_path);
        let mut c = self.command([
            OsStr::new("--log"),
            err_path.as_os_str(),
            OsStr::new("--log-format"),
            OsStr::new("text"),
            OsStr::new("create"),
        ]);
        c.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console_socket {
            c.arg("--console-socket").arg(sock);
        }
        c.arg(id);
        let status = c
            .stdin(to_stdio(stdio.stdin))
            .stdout(to_stdio(stdio.stdout))
            .stderr(to_stdio(stdio.stderr))
            .status()
            .map_err(|source| RuntimeError::Spawn {
                binary: self.binary().display().to_string(),
                source,
            })?;
        if !status.success() {
            let log = std::fs::read(&err_path).unwrap_or_default();
            return Err(RuntimeError::Failed {
                verb: "create",
                id: id.into(),
                message: message_of(&log),
            });
        }
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| RuntimeError::NoPid {
                id: id.into(),
                path: pid_file,
            })
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        if self.binary.is_none() {
            // Poststart hook failures are warnings; the container runs.
            return self.with_container("start", id, |c| c.start()).map(drop);
        }
        self.run("start", id, self.command(["start", id]))
    }

    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        let mut c = self.command(["kill"]);
        if all {
            c.arg("--all");
        }
        c.args([id, signal]);
        self.run("kill", id, c)
    }

    /// `delete --force`: a container that does not exist is fine.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if self.binary.is_none() {
            return match berth_runtime::Container::load(&self.root, id) {
                Ok(c) => c
                    .delete(true)
                    .map(drop)
                    .map_err(|e| Self::library_error("delete", id, &e)),
                Err(berth_runtime::ContainerError::NotExist { .. }) => Ok(()),
                Err(e) => Err(Self::library_error("delete", id, &e)),
            };
        }
        self.run("delete", id, self.command(["delete", "--force", id]))
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        if self.binary.is_none() {
            return self.with_container("pause", id, |c| c.pause());
        }
        self.run("pause", id, self.command(["pause", id]))
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        if self.binary.is_none() {
            return self.with_container("resume", id, |c| c.resume());
        }
        self.run("resume", id, self.command(["resume", id]))
    }

    /// `exec`: a command for `berth exec`, with the process JSON in `process_file`.
    pub fn exec_command(
        &self,
        id: &str,
        process_file: &Path,
        tty_socket: Option<&Path>,
        detach: bool,
    ) -> Command {
        let mut c = self.command(["exec"]);
        c.arg("--process").arg(process_file);
        if let Some(s) = tty_socket {
            c.arg("--console-socket").arg(s);
        }
        if detach {
            c.arg("--detach");
        }
        c.arg(id);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_messages_are_extracted() {
        assert_eq!(
            message_of(b"time=\"2024\" level=error msg=\"container \\\"x\\\" does not exist\"\n"),
            "container \"x\" does not exist"
        );
        assert_eq!(message_of(b"plain failure\n\n"), "plain failure");
    }
}
