//! `start`, `kill`, `delete`, `pause`, `resume` and `update`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_runtime::spec::{BlockIo, Cpu, Memory, Pids, Resources};
use berth_runtime::{signal, Container, ContainerError};

use super::log::Log;

pub fn start(root: &Path, id: &str, log: &Log) -> Result<ExitCode> {
    let c = Container::load(root, id)?;
    for w in c.start()? {
        log.warn(&w);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(root: &Path, id: &str, sig: &str, all: bool) -> Result<ExitCode> {
    let c = Container::load(root, id)?;
    let n = signal::parse(sig)?;
    c.kill(n, all)?;
    Ok(ExitCode::SUCCESS)
}

pub fn delete(root: &Path, id: &str, force: bool, log: &Log) -> Result<ExitCode> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        // runc: deleting what is not there is fine with --force.
        Err(ContainerError::NotExist { .. }) if force => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    };
    for w in c.delete(force)? {
        log.warn(&w);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pause(root: &Path, id: &str) -> Result<ExitCode> {
    Container::load(root, id)?.pause()?;
    Ok(ExitCode::SUCCESS)
}

pub fn resume(root: &Path, id: &str) -> Result<ExitCode> {
    Container::load(root, id)?.resume()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// JSON file with linux.resources (`-` for stdin).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Memory reservation in bytes.
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes.
    #[arg(long = "memory-swap")]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds.
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    id: String,
}

pub fn update(root: &Path, a: UpdateArgs) -> Result<ExitCode> {
    let mut c = Container::load(root, &a.id)?;
    let mut r: Resources = match &a.resources {
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read(p).with_context(|| format!("read {}", p.display()))?
            };
            serde_json::from_slice(&data).context("parse resources")?
        }
        None => Resources::default(),
    };
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let m = r.memory.get_or_insert_with(Memory::default);
        m.limit = a.memory.or(m.limit);
        m.reservation = a.memory_reservation.or(m.reservation);
        m.swap = a.memory_swap.or(m.swap);
    }
    if a.cpu_shares.is_some()
        || a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let cpu = r.cpu.get_or_insert_with(Cpu::default);
        cpu.shares = a.cpu_shares.or(cpu.shares);
        cpu.period = a.cpu_period.or(cpu.period);
        cpu.quota = a.cpu_quota.or(cpu.quota);
        cpu.cpus = a.cpuset_cpus.clone().or(cpu.cpus.take());
        cpu.mems = a.cpuset_mems.clone().or(cpu.mems.take());
    }
    if let Some(l) = a.pids_limit {
        r.pids = Some(Pids { limit: l });
    }
    if let Some(w) = a.blkio_weight {
        r.block_io.get_or_insert_with(BlockIo::default).weight = Some(w);
    }
    c.update(&r)?;
    Ok(ExitCode::SUCCESS)
}
