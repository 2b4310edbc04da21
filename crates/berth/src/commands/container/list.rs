//! `berth ps`, `logs`, `port`.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use berth_engine::logs::{self, LogOptions};
use berth_engine::state::Status;
use serde_json::json;

use super::args::{LogsArgs, PortArgs, PsArgs};
use super::engine;
use crate::commands::Ctx;
use crate::format::{human_since, print_table, seconds_since};

fn since(t: &str) -> String {
    seconds_since(t).map_or_else(
        || "N/A".into(),
        |s| human_since(s).trim_end_matches(" ago").to_string(),
    )
}

fn quote_command(argv: &[String], no_trunc: bool) -> String {
    let s = argv.join(" ");
    if no_trunc || s.chars().count() <= 20 {
        format!("\"{s}\"")
    } else {
        format!("\"{}…\"", s.chars().take(19).collect::<String>())
    }
}

pub fn ps(ctx: &Ctx, args: PsArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let rows = engine.list(args.all)?;
    if args.quiet {
        for r in &rows {
            println!(
                "{}",
                if args.no_trunc {
                    r.config.id.as_str()
                } else {
                    r.config.short_id()
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for r in &rows {
                let line = json!({
                    "Command": quote_command(&r.config.argv(), args.no_trunc),
                    "CreatedAt": r.config.created,
                    "ID": if args.no_trunc { r.config.id.clone() } else { r.config.short_id().to_string() },
                    "Image": r.config.image,
                    "Labels": r.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                    "Names": r.config.name,
                    "Networks": r.config.network,
                    "Ports": r.ports_text(),
                    "RunningFor": since(&r.config.created),
                    "State": r.state.status.as_str(),
                    "Status": r.status_text(since),
                });
                println!("{line}");
            }
        }
        None | Some("table") => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        if args.no_trunc {
                            r.config.id.clone()
                        } else {
                            r.config.short_id().to_string()
                        },
                        r.config.image.clone(),
                        quote_command(&r.config.argv(), args.no_trunc),
                        format!("{} ago", since(&r.config.created)),
                        r.status_text(since),
                        r.ports_text(),
                        r.config.name.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES",
                ],
                &table,
            );
        }
        Some(other) => bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_since(s: &str) -> Result<SystemTime> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now() - d);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    }
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).with_context(|| {
        format!("invalid --since value {s:?}: use a duration (10m), a unix time or RFC 3339")
    })
}

pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = engine.containers.resolve(&args.container)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("invalid --tail value {n:?}"))?,
        ),
    };
    let options = LogOptions {
        tail,
        since: args.since.as_deref().map(parse_since).transpose()?,
        timestamps: args.timestamps,
        follow: args.follow,
    };
    let path = engine.containers.dir(&id).join("container.log");
    let mut running = || {
        engine
            .load(&id)
            .map(|(_, s)| {
                matches!(
                    s.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            })
            .unwrap_or(false)
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let result = logs::show(
        &path,
        &options,
        &mut stdout.lock(),
        &mut stderr.lock(),
        &mut running,
    );
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("logs"),
    }
}

pub fn port(ctx: &Ctx, args: PortArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let id = engine.containers.resolve(&args.container)?;
    let (_, state) = engine.load(&id)?;
    let wanted = args.port.as_deref().map(|p| {
        let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (n.to_string(), proto.to_string())
    });
    let mut any = false;
    for p in &state.published {
        let host = format!(
            "{}:{}",
            p.host_ip.as_deref().unwrap_or("0.0.0.0"),
            p.host_port
        );
        match &wanted {
            Some((n, proto)) => {
                if *n == p.container_port.to_string() && *proto == p.proto {
                    println!("{host}");
                    any = true;
                }
            }
            None => {
                println!("{}/{} -> {host}", p.container_port, p.proto);
                any = true;
            }
        }
    }
    if let (Some((n, proto)), false) = (&wanted, any) {
        bail!(
            "no public port '{n}/{proto}' published for {}",
            args.container
        );
    }
    Ok(ExitCode::SUCCESS)
}
