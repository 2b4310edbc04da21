//! `berth-runc`: the runc-compatible command line over the `runtime` crate, for Podman,
//! containerd and CRI-O. Flags, exit codes, JSON shapes and error lines follow runc's so
//! those tools need no changes; every verb is a thin call into `berth_runtime::Container`.

mod attach;
mod create;
mod exec;
mod log;
mod manage;
mod query;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use log::Log;

#[derive(Parser)]
#[command(
    name = "berth-runc",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.0"),
    about = "berth's OCI runtime, compatible with runc's command line"
)]
struct Cli {
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = "/run/berth-runc")]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for compatibility: cgroups are always driven through cgroupfs, and
    /// `slice:prefix:name` paths are translated.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility and ignored.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    /// Accepted for compatibility and ignored.
    #[arg(long, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when the process has a terminal.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass fds 3..3+N to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for compatibility: no session keyring is created.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Container id.
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Create and start a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
        /// Accepted for compatibility.
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// Start the process of a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        /// Send to every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// Name (TERM, SIGTERM) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a process in a container.
    Exec(exec::ExecArgs),
    /// List a container's processes.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options for ps(1) (default: -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Only print ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze a container's processes.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print resource usage (and notices) of a container.
    Events {
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change a container's resource limits.
    Update(manage::UpdateArgs),
    /// Write an example config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root.
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports, as JSON.
    Features,
}

pub fn main() -> ExitCode {
    // The runtime re-executes itself as `berth-runc init` for every container process.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        berth_runtime::init_main();
    }
    let cli = Cli::parse();
    let log = match Log::open(cli.log.as_deref(), &cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "berth-runc: open log {}: {e}",
                cli.log.unwrap_or_default().display()
            );
            return ExitCode::from(1);
        }
    };
    let _ = (cli.systemd_cgroup, &cli.rootless, &cli.criu);
    match run(&cli.root, cli.cmd, &log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&chain(&e));
            ExitCode::from(1)
        }
    }
}

/// An error chain on one line, a cause dropped when its parent already ends with it.
pub fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let text = c.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(root: &std::path::Path, cmd: Cmd, log: &Log) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Create(a) => create::create(root, a, log),
        Cmd::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => create::run(root, create, detach, keep, log),
        Cmd::Start { id } => manage::start(root, &id, log),
        Cmd::State { id } => query::state(root, &id),
        Cmd::Kill { all, id, signal } => manage::kill(root, &id, &signal, all),
        Cmd::Delete { force, id } => manage::delete(root, &id, force, log),
        Cmd::Exec(a) => exec::exec(root, a, log),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => query::ps(root, &id, &format, &ps_args),
        Cmd::List { format, quiet } => query::list(root, &format, quiet),
        Cmd::Pause { id } => manage::pause(root, &id),
        Cmd::Resume { id } => manage::resume(root, &id),
        Cmd::Events {
            stats,
            interval,
            id,
        } => query::events(root, &id, stats, &interval),
        Cmd::Update(a) => manage::update(root, a),
        Cmd::Spec { bundle, rootless } => spec::spec(&bundle, rootless),
        Cmd::Features => spec::features(),
    }
}
