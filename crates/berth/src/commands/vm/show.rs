//! Output of the reading verbs, laid out as virsh lays it out: `list`, `dominfo`,
//! `domstate`, `vncdisplay`, `snapshot-list`.

use std::process::ExitCode;

use anyhow::Result;
use berth_virt::config::{GraphicsConfig, NicKind};
use berth_virt::state::SnapshotState;
use berth_virt::Vms;

use super::ListArgs;

/// ` Id   Name   State` with a rule under the header, as `virsh list`. The id is QEMU's
/// pid; `-` for a VM that is shut off.
pub fn list(vms: &Vms, a: &ListArgs) -> Result<ExitCode> {
    let rows: Vec<_> = vms
        .list()?
        .into_iter()
        .filter(|v| a.all || v.state.is_active())
        .collect();
    if a.name {
        for v in rows {
            println!("{}", v.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 3]> = rows
        .iter()
        .map(|v| {
            [
                v.pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
                v.name.clone(),
                v.state.to_string(),
            ]
        })
        .collect();
    let w0 = table.iter().map(|r| r[0].len()).max().unwrap_or(0).max(2);
    let w1 = table.iter().map(|r| r[1].len()).max().unwrap_or(0).max(4);
    let header = format!(" {:<w0$}   {:<w1$}   State", "Id", "Name");
    println!("{header}");
    println!("{}", "-".repeat(header.len() + 4));
    for r in table {
        println!(" {:<w0$}   {:<w1$}   {}", r[0], r[1], r[2]);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn domstate(vms: &Vms, name: &str) -> Result<ExitCode> {
    println!("{}", vms.domstate(name)?);
    Ok(ExitCode::SUCCESS)
}

/// `127.0.0.1:5901` as virsh shows a display: `127.0.0.1:1`.
pub fn vnc_display(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u32>() {
            Ok(p) if p >= 5900 => format!("{host}:{}", p - 5900),
            _ => addr.to_string(),
        },
        None => addr.to_string(),
    }
}

pub fn vnc(vms: &Vms, name: &str) -> Result<ExitCode> {
    println!("{}", vnc_display(&vms.vnc_address(name)?));
    Ok(ExitCode::SUCCESS)
}

pub fn dominfo(vms: &Vms, name: &str) -> Result<ExitCode> {
    let i = vms.info(name)?;
    let vm = &i.vm;
    let mut rows: Vec<(&str, String)> = vec![
        ("Id", i.pid.map_or_else(|| "-".into(), |p| p.to_string())),
        ("Name", vm.name.clone()),
        ("UUID", vm.uuid.clone()),
        ("OS Type", "hvm".into()),
        ("OS variant", vm.os_variant.clone()),
        ("State", i.state.to_string()),
        ("CPU(s)", vm.vcpus.to_string()),
        ("Max memory", format!("{} KiB", vm.memory_mib * 1024)),
        ("Used memory", format!("{} KiB", vm.memory_mib * 1024)),
        ("Persistent", "yes".into()),
        (
            "Autostart",
            if vm.autostart { "enable" } else { "disable" }.into(),
        ),
        ("Firmware", vm.firmware.to_string()),
    ];
    if let Some(rt) = &i.runtime {
        rows.push(("Accelerator", rt.accel.to_string()));
        if rt.install {
            rows.push(("Boot", "install media (first boot)".into()));
        }
    } else if vm.install.is_some() {
        rows.push(("Boot", "install media at next start".into()));
    }
    for d in &vm.disks {
        rows.push((
            "Disk",
            format!(
                "{} {} ({}, {}{}{})",
                d.target,
                d.path.display(),
                d.format,
                d.bus,
                match d.device {
                    berth_virt::config::DiskDevice::Cdrom => ", cdrom",
                    berth_virt::config::DiskDevice::Disk => "",
                },
                if d.install_only { ", install only" } else { "" }
            ),
        ));
    }
    if let Some(b) = &vm.boot {
        rows.push(("Kernel", b.kernel.display().to_string()));
        if let Some(initrd) = &b.initrd {
            rows.push(("Initrd", initrd.display().to_string()));
        }
        rows.push(("Cmdline", b.cmdline.clone()));
    }
    let taps = i
        .runtime
        .as_ref()
        .map(|r| r.taps.clone())
        .unwrap_or_default();
    for (n, nic) in vm.nics.iter().enumerate() {
        let kind = match &nic.kind {
            NicKind::User => "user (NAT, DHCP)".to_string(),
            NicKind::Bridge { bridge } => format!("bridge {bridge}"),
            NicKind::Network { network } => format!("network {network}"),
        };
        let tap = taps
            .iter()
            .find(|t| t.name.ends_with(&format!("n{n}")))
            .map(|t| match &t.ip {
                Some(ip) => format!(", tap {}, address {ip}", t.name),
                None => format!(", tap {}", t.name),
            })
            .unwrap_or_default();
        rows.push(("Interface", format!("{} {kind}{tap}", nic.mac)));
    }
    for p in &vm.ports {
        let host = p.host_addr.map(|a| format!("{a}:")).unwrap_or_default();
        let proto = if p.udp { "udp" } else { "tcp" };
        rows.push((
            "Port",
            format!("{host}{} -> {}/{proto}", p.host_port, p.guest_port),
        ));
    }
    let graphics = match (
        &vm.graphics,
        i.runtime.as_ref().and_then(|r| r.vnc.as_ref()),
    ) {
        (GraphicsConfig::None, _) => "none".to_string(),
        (GraphicsConfig::Vnc { .. }, Some(addr)) => format!("vnc {}", vnc_display(addr)),
        (GraphicsConfig::Vnc { listen, .. }, None) => format!("vnc on {listen}"),
    };
    rows.push(("Graphics", graphics));
    rows.push(("Console log", i.console_log.display().to_string()));
    rows.push(("Snapshots", vm.snapshots.len().to_string()));
    for (k, v) in rows {
        println!("{:<16}{v}", format!("{k}:"));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn snapshots(list: &[SnapshotState]) {
    let w = list.iter().map(|s| s.name.len()).max().unwrap_or(0).max(4);
    let header = format!(" {:<w$}   {:<25}   State", "Name", "Creation Time");
    println!("{header}");
    println!("{}", "-".repeat(header.len() + 4));
    for s in list {
        let t = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.created),
        );
        println!(" {:<w$}   {:<25}   {}", s.name, t.to_string(), s.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnc_displays() {
        assert_eq!(vnc_display("127.0.0.1:5901"), "127.0.0.1:1");
        assert_eq!(vnc_display("127.0.0.1:80"), "127.0.0.1:80");
    }
}
