//! `berth volume create/ls/rm/inspect/prune`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::options::parse_label;

use super::container::engine;
use super::Ctx;
use crate::cli::VolumeCommand;
use crate::format::print_table;

pub fn run(ctx: &Ctx, command: VolumeCommand) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let vols = &engine.volumes;
    match command {
        VolumeCommand::Create { name, label } => {
            let mut labels = BTreeMap::new();
            for l in &label {
                let (k, v) = parse_label(l)?;
                labels.insert(k, v);
            }
            let anonymous = name.is_none();
            let name = name.unwrap_or_else(berth_engine::id::new_id);
            let v = vols.create(&name, labels, anonymous, false)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet } => {
            let list = vols.list();
            if quiet {
                for v in list {
                    println!("{}", v.name);
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|v| vec!["local".into(), v.name.clone()])
                    .collect();
                print_table(&["DRIVER", "VOLUME NAME"], &rows);
            }
        }
        VolumeCommand::Rm { names, .. } => {
            let mut failed = false;
            for n in &names {
                match vols.remove(n, &|name| engine.volume_user(name)) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: volume rm {n}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match vols.get(n) {
                    Ok(v) => out.push(vols.inspect_json(&v)),
                    Err(e) => {
                        eprintln!("berth: volume inspect {n}: {e}");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        VolumeCommand::Prune { all, .. } => {
            println!("Deleted Volumes:");
            for v in vols.list() {
                if (all || v.anonymous)
                    && engine.volume_user(&v.name).is_none()
                    && vols.remove(&v.name, &|_| None).is_ok()
                {
                    println!("{}", v.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
