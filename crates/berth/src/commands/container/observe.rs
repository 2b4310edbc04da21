//! `berth top`, `stats --no-stream`, `cp`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_engine::cp::CopyDirection;
use berth_engine::state::Status;
use berth_engine::stats;

use super::args::{CpArgs, StatsArgs, TopArgs};
use super::engine;
use crate::commands::Ctx;
use crate::format::{human_size, print_table};

pub fn top(ctx: &Ctx, args: TopArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = engine.containers.resolve(&args.container)?;
    let (config, state) = engine.load(&id)?;
    if state.status != Status::Running && state.status != Status::Paused {
        bail!(
            "top {}: container {} is not running",
            args.container,
            config.name
        );
    }
    let pids: Vec<String> = stats::processes(&id).iter().map(i32::to_string).collect();
    if pids.is_empty() {
        bail!("top {}: no processes found", args.container);
    }
    let mut ps = std::process::Command::new("ps");
    if args.ps_args.is_empty() {
        ps.arg("-f");
    } else {
        ps.args(&args.ps_args);
    }
    let status = ps
        .arg("-p")
        .arg(pids.join(","))
        .status()
        .context("run ps")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn stats_cmd(ctx: &Ctx, args: StatsArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let ids: Vec<String> = if args.containers.is_empty() {
        engine
            .list(false)?
            .into_iter()
            .map(|s| s.config.id)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|c| engine.containers.resolve(c))
            .collect::<Result<_, _>>()?
    };
    // CPU % needs two samples, as docker stats takes them; streaming keeps sampling
    // every second until interrupted, redrawing the table on a terminal.
    let interval = Duration::from_millis(if args.no_stream { 500 } else { 1000 });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut before: Vec<u64> = ids.iter().map(|id| stats::read(id).cpu_ns).collect();
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(interval);
        let mut rows = Vec::new();
        for (id, prev) in ids.iter().zip(before.iter_mut()) {
            let (config, state) = engine.load(id)?;
            let s = stats::read(id);
            let cpu = (s.cpu_ns.saturating_sub(*prev)) as f64 / interval.as_nanos() as f64 * 100.0;
            *prev = s.cpu_ns;
            let limit = s.memory_limit.unwrap_or_else(host_memory);
            let (rx, tx) = state.pid.map_or((0, 0), stats::network_io);
            rows.push(vec![
                config.short_id().to_string(),
                config.name.clone(),
                format!("{:.2}%", cpu.min(cpus * 100.0)),
                format!("{} / {}", human_binary(s.memory), human_binary(limit)),
                format!("{:.2}%", s.memory as f64 / limit.max(1) as f64 * 100.0),
                format!("{} / {}", human_size(rx), human_size(tx)),
                s.pids.to_string(),
            ]);
        }
        if tty && !args.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        print_table(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "PIDS",
            ],
            &rows,
        );
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::io::stdout().flush()?;
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `1.5MiB`: docker stats shows memory in binary units.
fn human_binary(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + UNITS[u]
}

pub fn cp(ctx: &Ctx, args: CpArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let split = |s: &str| -> Option<(String, String)> {
        let (c, p) = s.split_once(':')?;
        (!c.is_empty() && !c.contains('/')).then(|| (c.to_string(), p.to_string()))
    };
    let (container, direction) = match (split(&args.source), split(&args.dest)) {
        (Some((c, path)), None) => (
            c,
            CopyDirection::FromContainer {
                path,
                host: args.dest.clone().into(),
            },
        ),
        (None, Some((c, path))) => (
            c,
            CopyDirection::ToContainer {
                host: args.source.clone().into(),
                path,
            },
        ),
        (Some(_), Some(_)) => bail!("cp: copying between containers is not supported"),
        (None, None) => bail!("cp: one of source and destination must be CONTAINER:PATH"),
    };
    engine
        .copy(&container, direction)
        .with_context(|| format!("cp {} {}", args.source, args.dest))?;
    Ok(ExitCode::SUCCESS)
}
