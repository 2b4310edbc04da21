//! One module per noun; each verb is a thin call into a library crate.

mod image;
mod registry;
pub mod vm;

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_image::registry::{RegistryClient, RegistryOptions};
use berth_image::store::Store;

use crate::cli::{Cli, Command, ImageCommand};

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
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => image::inspect(&ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(&ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(&ctx, a),
        Command::Vm(c) => vm::run(&ctx, c),
    }
}
