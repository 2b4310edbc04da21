//! `berth exec`: a new process in a running container, through the runtime's `exec` with
//! a process description derived from the container's own (capabilities, environment,
//! user), as `docker exec` does.

use std::path::PathBuf;
use std::process::Command;

use crate::runtime::Runtime;
use crate::state::Status;
use crate::{Engine, EngineError};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub detach: bool,
}

/// A prepared `exec`: run `command`; with a tty, accept the pty on `console_socket`.
pub struct PreparedExec {
    pub command: Command,
    pub console_socket: Option<PathBuf>,
    /// Removed by the caller when done.
    pub scratch: PathBuf,
}

impl Engine {
    pub fn prepare_exec(&self, key: &str, opts: &ExecOptions) -> Result<PreparedExec, EngineError> {
        let id = self.containers.resolve(key)?;
        let (config, state) = self.load(&id)?;
        if state.status != Status::Running {
            return Err(EngineError::NotRunning { name: config.name });
        }
        let dir = self.containers.dir(&id);
        let bundle_config = dir.join("bundle/config.json");
        let spec: berth_runtime::spec::Spec =
            serde_json::from_slice(&std::fs::read(&bundle_config).map_err(|source| {
                EngineError::Io {
                    op: "read",
                    path: bundle_config.clone(),
                    source,
                }
            })?)
            .map_err(|e| EngineError::Io {
                op: "parse",
                path: bundle_config.clone(),
                source: std::io::Error::other(e),
            })?;
        let mut process = spec.process.unwrap_or_default();
        process.args = opts.cmd.clone();
        process.terminal = opts.tty;
        process.console_size = None;
        for e in opts.env.iter().filter_map(|e| crate::options::parse_env(e)) {
            let key = e.split('=').next().unwrap_or("").to_string();
            process
                .env
                .retain(|x| x.split('=').next() != Some(key.as_str()));
            process.env.push(e);
        }
        if let Some(w) = &opts.workdir {
            process.cwd = w.clone();
        }
        if let Some(u) = &opts.user {
            let resolved = crate::user::resolve(u, &self.overlay(&id).merged)?;
            process.user.uid = resolved.uid;
            process.user.gid = resolved.gid;
            process.user.additional_gids = resolved.additional_gids;
        }
        // A short name: the console socket's path must fit in 108 bytes.
        let scratch = self.run_root.join("exec").join(&crate::id::new_id()[..12]);
        std::fs::create_dir_all(&scratch).map_err(|source| EngineError::Io {
            op: "create",
            path: scratch.clone(),
            source,
        })?;
        let process_file = scratch.join("process.json");
        crate::store::write_atomic(
            &process_file,
            &serde_json::to_vec(&process).expect("process serializes"),
        )?;
        let console_socket = opts.tty.then(|| scratch.join("console.sock"));
        let runtime = Runtime::new(&self.run_root);
        let command =
            runtime.exec_command(&id, &process_file, console_socket.as_deref(), opts.detach);
        Ok(PreparedExec {
            command,
            console_socket,
            scratch,
        })
    }
}
