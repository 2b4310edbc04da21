//! The changing verbs (virsh's names and messages): start, shutdown, reboot, reset,
//! destroy, suspend, resume, undefine, autostart, snapshots and disks.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use berth_virt::config::parse_size;
use berth_virt::qemu::args::ImageFormat;
use berth_virt::Vms;

use super::create::report_started;
use super::{AutostartArgs, DiskCommand, ShutdownArgs, SnapshotCommand, StartArgs, UndefineArgs};

pub fn start(vms: &Vms, a: &StartArgs) -> Result<ExitCode> {
    if a.autostart {
        let mut failed = false;
        for (name, r) in vms.start_autostart()? {
            match r {
                Ok(s) => report_started(&name, &s),
                Err(e) => {
                    failed = true;
                    eprintln!("berth: start {name}: {}", chain(&e));
                }
            }
        }
        return Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let name = a
        .name
        .as_deref()
        .expect("clap requires a name without --autostart");
    let s = vms.start(name)?;
    report_started(name, &s);
    if a.console {
        super::console::attach(vms, name)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub fn shutdown(vms: &Vms, a: &ShutdownArgs) -> Result<ExitCode> {
    if a.no_wait {
        vms.request_shutdown(&a.name)?;
        println!("Domain '{}' is being shutdown", a.name);
        return Ok(ExitCode::SUCCESS);
    }
    vms.shutdown(&a.name, Duration::from_secs(a.timeout))?;
    println!("Domain '{}' has been shut down", a.name);
    Ok(ExitCode::SUCCESS)
}

pub fn reboot(vms: &Vms, a: &ShutdownArgs) -> Result<ExitCode> {
    let s = vms.reboot(&a.name, Duration::from_secs(a.timeout))?;
    println!("Domain '{}' is being rebooted", a.name);
    report_started(&a.name, &s);
    Ok(ExitCode::SUCCESS)
}

pub fn reset(vms: &Vms, name: &str) -> Result<ExitCode> {
    vms.reset(name)?;
    println!("Domain '{name}' was reset");
    Ok(ExitCode::SUCCESS)
}

pub fn destroy(vms: &Vms, name: &str) -> Result<ExitCode> {
    vms.destroy(name)?;
    println!("Domain '{name}' destroyed");
    Ok(ExitCode::SUCCESS)
}

pub fn suspend(vms: &Vms, name: &str) -> Result<ExitCode> {
    vms.suspend(name)?;
    println!("Domain '{name}' suspended");
    Ok(ExitCode::SUCCESS)
}

pub fn resume(vms: &Vms, name: &str) -> Result<ExitCode> {
    vms.resume(name)?;
    println!("Domain '{name}' resumed");
    Ok(ExitCode::SUCCESS)
}

pub fn undefine(vms: &Vms, a: &UndefineArgs) -> Result<ExitCode> {
    let u = vms.undefine(&a.name, a.remove_all_storage)?;
    println!("Domain '{}' has been undefined", a.name);
    for (target, path) in &u.removed {
        println!("Volume '{target}'({}) removed.", path.display());
    }
    for (target, path) in &u.kept {
        println!("Volume '{target}'({}) kept.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn autostart(vms: &Vms, a: &AutostartArgs) -> Result<ExitCode> {
    vms.set_autostart(&a.name, !a.disable)?;
    if a.disable {
        println!("Domain '{}' unmarked as autostarted", a.name);
    } else {
        println!("Domain '{}' marked as autostarted", a.name);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn snapshot(vms: &Vms, c: SnapshotCommand) -> Result<ExitCode> {
    match c {
        SnapshotCommand::Create { name, snapshot } => {
            let s = vms.snapshot_create(&name, snapshot.as_deref())?;
            println!("Domain snapshot {} created", s.name);
        }
        SnapshotCommand::List { name } => super::show::snapshots(&vms.snapshot_list(&name)?),
        SnapshotCommand::Revert { name, snapshot } => {
            let state = vms.snapshot_revert(&name, &snapshot)?;
            println!("Domain '{name}' reverted to snapshot {snapshot} ({state})");
        }
        SnapshotCommand::Delete { name, snapshot } => {
            vms.snapshot_delete(&name, &snapshot)?;
            println!("Domain snapshot {snapshot} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn size(value: &str) -> Result<u64> {
    parse_size(value).ok_or_else(|| {
        anyhow!("--size {value}: expected a number of GiB, or one with a unit (512M, 20G)")
    })
}

pub fn disk(vms: &Vms, c: DiskCommand) -> Result<ExitCode> {
    match c {
        DiskCommand::Create {
            path,
            size: s,
            format,
        } => {
            let bytes = size(&s)?;
            let format = match format.as_str() {
                "qcow2" => ImageFormat::Qcow2,
                "raw" => ImageFormat::Raw,
                other => return Err(anyhow!("--format {other}: expected qcow2 or raw")),
            };
            vms.disk_create(&path, bytes, format)?;
            println!("Disk {} created ({format}, {bytes} bytes)", path.display());
        }
        DiskCommand::Resize {
            target,
            size: s,
            disk,
        } => {
            let bytes = size(&s)?;
            let r = vms.disk_resize(&target, disk.as_deref(), bytes)?;
            println!(
                "Disk {} resized from {} to {} bytes{}",
                r.path.display(),
                r.old,
                r.new,
                if r.live { " (live)" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
