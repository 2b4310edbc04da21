//! One module per noun; each verb is a thin call into a library crate.

pub mod container;
mod image;
mod network;
pub mod registry;
pub mod vm;
mod volume;

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_image::registry::{RegistryClient, RegistryOptions};
use berth_image::store::Store;

use crate::cli::{Cli, Command, ContainerCommand, ImageCommand};

/// What every command may need, built lazily from the global flags.
pub struct Ctx {
    /// Persistent state (`--root`).
    pub root: std::path::PathBuf,
    /// Runtime state (`--run-root`).
    pub run_root: std::path::PathBuf,
    pub insecure: Vec<String>,
}

impl Ctx {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root)
            .with_context(|| format!("open image store in {}", self.root.display()))
    }

    pub fn registry(&self) -> Result<RegistryClient> {
        Ok(RegistryClient::new(RegistryOptions {
            insecure: self.insecure.clone(),
            auth_file: None,
        })?)
    }
}

/// A runtime for the commands that talk to registries.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start async runtime")?;
    Ok(rt.block_on(f))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx {
        root: cli.root,
        run_root: cli.run_root,
        insecure: cli.insecure_registries,
    };
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&ctx, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&ctx, a),
        Command::Login(a) => registry::login(&ctx, a),
        Command::Logout(a) => registry::logout(a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::list(&ctx, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::remove(&ctx, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&ctx, a),
        Command::Inspect(a) => image::inspect(&ctx, a),
        Command::Image(ImageCommand::Inspect(a)) => image::inspect_images(&ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(&ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(&ctx, a),
        Command::Vm(c) => vm::run(&ctx, c),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => container::run(&ctx, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::create(&ctx, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start(&ctx, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(&ctx, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::restart(&ctx, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(&ctx, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(&ctx, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => container::ps(&ctx, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(&ctx, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            container::exec(&ctx, a)
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            container::attach(&ctx, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(&ctx, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::rename(&ctx, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            container::port(&ctx, a)
        }
        Command::Container(ContainerCommand::Prune(_)) => container::prune(&ctx),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => container::top(&ctx, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            container::stats(&ctx, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => container::cp(&ctx, a),
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            container::pause(&ctx, a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            container::pause(&ctx, a, false)
        }
        Command::Container(ContainerCommand::Inspect(a)) => image::inspect_containers(&ctx, a),
        Command::Volume(c) => volume::run(&ctx, c),
        Command::Network(c) => network::run(&ctx, c),
        Command::ContainerSupervise {
            status_fd,
            attached,
            id,
        } => container::supervise(&ctx, &id, status_fd, attached),
    }
}
