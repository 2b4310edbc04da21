//! `berth network create/ls/rm/inspect/prune`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::network::net_err;
use berth_engine::options::parse_label;
use berth_net::NetworkConfig;

use super::container::engine;
use super::Ctx;
use crate::cli::NetworkCommand;
use crate::format::print_table;

pub fn run(ctx: &Ctx, command: NetworkCommand) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let net = engine.net()?;
    match command {
        NetworkCommand::Create {
            name,
            subnet,
            gateway,
            internal,
            label,
            driver,
        } => {
            if driver != "bridge" {
                anyhow::bail!(
                    "network create {name}: driver {driver:?} is not supported: use bridge"
                );
            }
            let mut labels = BTreeMap::new();
            for l in &label {
                let (k, v) = parse_label(l)?;
                labels.insert(k, v);
            }
            let config =
                NetworkConfig {
                    name: name.clone(),
                    subnet: subnet.as_deref().map(str::parse).transpose().map_err(|e| {
                        anyhow::anyhow!("network create {name}: invalid --subnet: {e}")
                    })?,
                    gateway: gateway
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .with_context(|| format!("network create {name}: invalid --gateway"))?,
                    internal,
                    labels,
                    bridge: None,
                };
            let state = net
                .create(config)
                .map_err(net_err)
                .with_context(|| format!("network create {name}"))?;
            println!("{}", state.id);
        }
        NetworkCommand::Ls { quiet } => {
            let list = net.list().map_err(net_err)?;
            if quiet {
                for n in list {
                    println!("{}", n.short_id());
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![
                            n.short_id().to_string(),
                            n.name.clone(),
                            n.driver.as_str().to_string(),
                            "local".into(),
                        ]
                    })
                    .collect();
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
        }
        NetworkCommand::Rm { names } => {
            let mut failed = false;
            for n in &names {
                match net.remove(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: network rm {n}: {}", net_err(e));
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        NetworkCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match net.get(n) {
                    Ok(state) => out.push(state.inspect_json(state.endpoints.values())),
                    Err(e) => {
                        eprintln!("berth: network inspect {n}: {}", net_err(e));
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        NetworkCommand::Prune { .. } => {
            let removed = net.prune().map_err(net_err)?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
