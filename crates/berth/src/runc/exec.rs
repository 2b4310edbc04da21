//! `exec`: a new process in a running container, from `--process process.json` (what
//! containerd and conmon pass) or from the command line on top of the container's own
//! process settings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_runtime::spec::{Capabilities, Process};
use berth_runtime::{syscall, Container, ExecOptions};

use super::attach::{self, ConsoleReceiver};
use super::log::Log;

#[derive(clap::Args)]
pub struct ExecArgs {
    /// A process.json (runtime-spec "process") to run instead of the command line.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<String>,
    /// User as uid[:gid].
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Extra capabilities.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Do not wait for the process.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Pass fds 3..3+N to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Accepted for compatibility and ignored (no SELinux support).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Accepted for compatibility and ignored (no AppArmor support).
    #[arg(long)]
    apparmor: Option<String>,
    /// Container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn build_process(c: &Container, a: &ExecArgs) -> Result<Process> {
    if let Some(p) = &a.process {
        let data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
        let process: Process =
            serde_json::from_slice(&data).with_context(|| format!("parse {}", p.display()))?;
        if process.args.is_empty() {
            bail!("process args cannot be empty");
        }
        return Ok(process);
    }
    if a.command.is_empty() {
        bail!("exec args cannot be empty");
    }
    let mut p = c.spec().process.clone().unwrap_or_default();
    p.args = a.command.clone();
    p.terminal = a.tty;
    p.env.extend(a.env.iter().cloned());
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse()?, g.parse()?),
            None => (
                u.parse()
                    .with_context(|| format!("invalid --user {u:?}: want uid[:gid]"))?,
                0,
            ),
        };
        p.user.uid = uid;
        p.user.gid = gid;
    }
    if !a.additional_gids.is_empty() {
        p.user.additional_gids = a.additional_gids.clone();
    }
    if !a.cap.is_empty() {
        let caps = p.capabilities.get_or_insert_with(Capabilities::default);
        for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
            set.get_or_insert_with(Vec::new)
                .extend(a.cap.iter().cloned());
        }
    }
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    Ok(p)
}

pub fn exec(root: &Path, a: ExecArgs, _log: &Log) -> Result<ExitCode> {
    let _ = (&a.process_label, &a.apparmor);
    let c = Container::load(root, &a.id)?;
    let process = build_process(&c, &a)?;
    let tty = process.terminal;
    if a.detach && tty && a.console_socket.is_none() {
        bail!("cannot allocate tty if berth-runc will detach without setting console socket");
    }
    let mut opts = ExecOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    if a.detach {
        c.exec(process, opts).context("exec failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    syscall::set_child_subreaper().context("become a child subreaper")?;
    attach::block_signals();
    let receiver = if tty && a.console_socket.is_none() {
        let r = ConsoleReceiver::new()?;
        opts.console_socket = Some(r.path.clone());
        Some(r)
    } else {
        None
    };
    let handle = c.exec(process, opts).context("exec failed")?;
    let master = match &receiver {
        Some(r) => Some(r.receive()?),
        None => None,
    };
    let code = attach::wait(handle.pid, master)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
