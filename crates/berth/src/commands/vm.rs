//! `berth vm ...`: virt-install and virsh verbs over the `virt` crate.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// List virtual machines
    #[command(alias = "ls")]
    List,
}

pub fn run(_ctx: &Ctx, command: VmCommand) -> Result<ExitCode> {
    match command {
        VmCommand::List => anyhow::bail!("vm list: virtual machines are not built yet"),
    }
}
