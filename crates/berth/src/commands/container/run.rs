//! `berth create` and `berth run`: pull the image if missing, create, and (for `run`)
//! start detached or attached.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::create::CreateOptions;
use berth_engine::{Engine, EngineError};

use super::args::{CreateArgs, RunArgs};
use super::{attach, engine, EXIT_ERROR};
use crate::commands::Ctx;

fn options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        tty: a.tty,
        interactive: a.interactive,
        labels: a.label.clone(),
        network: a.network.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        volumes: a.volume.clone(),
        mounts: a.mount.clone(),
        tmpfs: a.tmpfs.clone(),
        memory: a.memory.clone(),
        cpus: a.cpus.clone(),
        pids_limit: a.pids_limit.clone(),
        restart: a.restart.clone(),
        auto_remove: a.rm,
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        init: a.init,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
    }
}

/// Creates the container, pulling its image first when missing (`--pull missing`).
fn create_pulling(ctx: &Ctx, engine: &Engine, a: &CreateArgs) -> Result<String> {
    let opts = options(a);
    match (engine.create(&opts), a.pull.as_str()) {
        (Ok(c), "missing" | "never") => return Ok(c.id),
        (Err(EngineError::NoSuchImage(_)), "missing") | (_, "always") => {}
        (Err(e), _) => return Err(e.into()),
        (Ok(c), _) => return Ok(c.id),
    }
    if a.pull == "missing" {
        eprintln!("Unable to find image '{}' locally", a.image);
    }
    crate::commands::registry::pull_quietly(ctx, &a.image, a.platform.as_deref(), a.quiet)?;
    Ok(engine.create(&opts)?.id)
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    match create_pulling(ctx, &engine, &a) {
        Ok(id) => {
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail("create", e),
    }
}

fn fail(verb: &str, e: anyhow::Error) -> Result<ExitCode> {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    eprintln!("berth: {verb}: {}", chain.join(": "));
    Ok(ExitCode::from(EXIT_ERROR))
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = match create_pulling(ctx, &engine, &a.create) {
        Ok(id) => id,
        Err(e) => return fail("run", e),
    };
    let attached = !a.detach;
    // Raw mode before the supervisor starts copying, so the first keystrokes go through.
    let _raw = (attached && a.create.tty && a.create.interactive).then(attach::RawTerminal::enable);
    match engine.start(&id, attached).context("start") {
        Ok((id, handle, pid)) => {
            if a.detach {
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            Ok(attach::follow(handle, pid))
        }
        Err(e) => {
            if a.create.rm {
                let _ = engine.remove(&id, true, true);
            }
            fail("run", e)
        }
    }
}
