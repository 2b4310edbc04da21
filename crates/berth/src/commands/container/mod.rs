//! `berth run`, `create`, `start`, `stop`, `restart`, `kill`, `rm`, `ps`, `logs`, `wait`,
//! `rename`, `port`, `container prune`, and the hidden `container-supervise` the CLI starts
//! for each running container.

pub mod args;
mod attach;
mod exec;
mod list;
mod observe;
mod run;

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::Engine;

use super::Ctx;
use args::*;
pub use exec::exec;
pub use list::{logs, port, ps};
pub use observe::{cp, stats_cmd as stats, top};
pub use run::{create, run};

/// Docker's exit status for errors of the CLI itself (as opposed to the container's).
pub const EXIT_ERROR: u8 = 125;

pub fn engine(ctx: &Ctx) -> Result<Engine> {
    Engine::open(&ctx.root, &ctx.run_root)
        .with_context(|| format!("open state in {}", ctx.root.display()))
}

/// Runs `f` for each named container, printing what it returns (Docker prints the name as
/// given), reporting failures one per line, and failing if any failed.
fn each(names: &[String], verb: &str, mut f: impl FnMut(&str) -> Result<()>) -> Result<ExitCode> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                eprintln!("berth: {verb} {n}: {}", chain.join(": "));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn start(ctx: &Ctx, args: StartArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    if args.attach {
        let [name] = args.containers.as_slice() else {
            anyhow::bail!("start: you cannot start and attach multiple containers at once");
        };
        let (_, handle, pid) = engine.start(name, true)?;
        return Ok(attach::follow(handle, pid));
    }
    each(&args.containers, "start", |n| {
        engine.start(n, false)?;
        Ok(())
    })
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    each(&args.containers, "stop", |n| {
        engine.stop(n, args.time, args.signal.as_deref())?;
        Ok(())
    })
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    each(&args.containers, "restart", |n| {
        engine.stop(n, args.time, args.signal.as_deref())?;
        engine.start(n, false)?;
        Ok(())
    })
}

/// `attach`: the running container's output (and its exit code), with signals forwarded.
pub fn attach(ctx: &Ctx, args: ContainerArg) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = engine.containers.resolve(&args.container)?;
    let (config, state) = engine.load(&id)?;
    let (berth_engine::state::Status::Running, Some(pid)) = (state.status, state.pid) else {
        anyhow::bail!(
            "attach {}: you cannot attach to a stopped container, start it first",
            config.name
        );
    };
    attach::forward_signals_to(pid);
    let path = berth_engine::attach::socket_path(&engine.run_root, &id);
    let code = berth_engine::attach::follow(&path, &mut std::io::stdout(), &mut std::io::stderr())
        .with_context(|| format!("attach {}", config.name))?;
    match code {
        Some(c) => Ok(ExitCode::from(c.clamp(0, 255) as u8)),
        None => {
            // The supervisor went away: report what the state says.
            let (_, after) = engine.load(&id)?;
            Ok(ExitCode::from(
                after.exit_code.unwrap_or(0).clamp(0, 255) as u8
            ))
        }
    }
}

pub fn pause(ctx: &Ctx, args: ContainersArgs, pause: bool) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    each(
        &args.containers,
        if pause { "pause" } else { "unpause" },
        |n| {
            engine.pause(n, pause)?;
            Ok(())
        },
    )
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    each(&args.containers, "kill", |n| {
        engine.kill(n, &args.signal)?;
        Ok(())
    })
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    each(&args.containers, "rm", |n| {
        engine.remove(n, args.force, args.volumes)?;
        Ok(())
    })
}

pub fn wait(ctx: &Ctx, args: ContainersArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let mut failed = false;
    for n in &args.containers {
        match engine.wait(n) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("berth: wait {n}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn rename(ctx: &Ctx, args: RenameArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = engine.containers.resolve(&args.container)?;
    let _lock = engine.containers.lock(&id)?;
    let mut config = engine.containers.config(&id)?;
    engine
        .containers
        .rename(&mut config, &args.new_name)
        .with_context(|| format!("rename {}", args.container))?;
    Ok(ExitCode::SUCCESS)
}

pub fn prune(ctx: &Ctx) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let mut freed = Vec::new();
    for s in engine.list(true)? {
        if matches!(
            s.state.status,
            berth_engine::state::Status::Exited
                | berth_engine::state::Status::Created
                | berth_engine::state::Status::Dead
        ) {
            engine.remove(&s.config.id, false, false)?;
            freed.push(s.config.id);
        }
    }
    if !freed.is_empty() {
        println!("Deleted Containers:");
        for id in &freed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(ExitCode::SUCCESS)
}

/// The hidden verb the CLI re-executes itself as, one per running container.
pub fn supervise(ctx: &Ctx, id: &str, status_fd: Option<i32>, attached: bool) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let status = match status_fd {
        // SAFETY: the parent passed this descriptor for our exclusive use (see
        // Engine::start); nothing else in this process refers to it.
        Some(fd) => unsafe { berth_engine::supervisor::StatusPipe::from_raw(fd) },
        None => berth_engine::supervisor::StatusPipe::none(),
    };
    let code = engine.supervise(
        id,
        berth_engine::supervisor::SuperviseOptions { attached },
        status,
    );
    Ok(ExitCode::from(code as u8))
}
