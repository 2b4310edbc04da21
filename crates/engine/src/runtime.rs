//! Calling the OCI runtime. The supervisor drives the runtime through its runc-compatible
//! command line, as conmon drives runc: by default berth's own runtime (this binary invoked
//! as `berth-runc`), or any runc-compatible binary named by `BERTH_RUNTIME`. Keeping the
//! runtime in its own short-lived process keeps the supervisor small and single-threaded
//! and lets the container's init be reparented to the supervisor (a child subreaper).

use std::ffi::OsStr;
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
    binary: PathBuf,
    /// `argv[0]`: `berth-runc` when the binary is berth itself.
    argv0: String,
    root: PathBuf,
}

/// The container's standard streams for `create`.
pub struct CreateStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
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
                binary: PathBuf::from(bin),
                root,
            },
            None => Self {
                binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
                argv0: "berth-runc".into(),
                root,
            },
        }
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.binary);
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
                binary: self.binary.display().to_string(),
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
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .status()
            .map_err(|source| RuntimeError::Spawn {
                binary: self.binary.display().to_string(),
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

    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("delete", id, self.command(["delete", "--force", id]))
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("pause", id, self.command(["pause", id]))
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
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
