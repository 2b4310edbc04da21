//! `berth vm create` (alias `install`): virt-install. Defines the VM, starts it, and
//! then, like virt-install: attaches the serial console on a terminal; otherwise follows
//! the console log until the installation run ends (or `--wait` minutes pass). When the
//! install run ends, the guest is started again to boot its disk (unless `--noreboot`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use berth_virt::config::{
    parse_accel, parse_boot, parse_memory, parse_vcpus, CloudInitConfig, DiskConfig,
    GraphicsConfig, NicConfig, PortForward, VmConfig,
};
use berth_virt::vm::{Started, StorageRemoval};
use berth_virt::Vms;

use super::console::{self, Ended};
use super::CreateArgs;

pub fn run(vms: &Vms, a: &CreateArgs) -> Result<ExitCode> {
    let config = to_config(a)?;
    let created = vms.create(&config)?;
    let name = &config.name;
    for w in &created.warnings {
        eprintln!("berth: warning: {w}");
    }
    if let Some(pw) = &created.generated_password {
        println!("Generated password for first root login (it must be changed then): {pw}");
    }
    if a.no_start {
        println!("Domain '{name}' defined; start it with: berth vm start {name}");
        return Ok(ExitCode::SUCCESS);
    }
    let installs = created.state.install.is_some();
    if installs {
        println!("Starting install...");
    }
    let started = match vms.start(name) {
        Ok(s) => s,
        Err(e) => {
            // As virt-install: a domain that cannot start is not left defined.
            let _ = vms.undefine_with(name, StorageRemoval::Created);
            return Err(e.into());
        }
    };
    report_started(name, &started);
    if a.noautoconsole {
        if installs {
            println!("Domain is still running. Installation may be in progress.");
        }
        println!(
            "Console: berth vm console {name} (log: {})",
            started.console_log.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut started = started;
    loop {
        let ended = if interactive {
            console::attach_session(vms, name)?
        } else {
            let wait = match a.wait {
                Some(m) if m >= 0 => Some(Duration::from_secs(m as u64 * 60)),
                _ => None,
            };
            console::follow_log(vms, name, &started.console_log, wait)?
        };
        match ended {
            Ended::Detached => return Ok(ExitCode::SUCCESS),
            Ended::TimedOut => {
                eprintln!("berth: the --wait time limit passed; domain {name} is still running");
                return Ok(ExitCode::from(1));
            }
            Ended::GuestStopped => {}
        }
        if !started.install {
            println!("Domain '{name}' has shut off.");
            return Ok(ExitCode::SUCCESS);
        }
        println!("Domain creation completed.");
        if a.noreboot {
            println!("You can restart your domain by running: berth vm start {name}");
            return Ok(ExitCode::SUCCESS);
        }
        println!("Restarting guest.");
        started = vms.start(name)?;
        if !interactive {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

pub(super) fn report_started(name: &str, s: &Started) {
    if let Some(why) = &s.accel_notice {
        eprintln!(
            "berth: note: KVM is not usable on this host ({why}); VMs run under TCG, QEMU's \
             software emulation, which is much slower"
        );
    }
    println!("Domain '{name}' started (pid {}, {})", s.pid, s.accel);
    if let Some(v) = &s.vnc {
        println!("VNC display: {}", super::show::vnc_display(v));
    }
}

fn to_config(a: &CreateArgs) -> Result<VmConfig> {
    let mut c = VmConfig {
        name: a.name.clone(),
        memory_mib: a.memory.as_deref().map(parse_memory).transpose()?,
        vcpus: a.vcpus.as_deref().map(parse_vcpus).transpose()?,
        cdrom: a.cdrom.clone(),
        location: a.location.clone(),
        kernel: a.kernel.clone(),
        initrd: a.initrd.clone(),
        extra_args: a.extra_args.clone(),
        import: a.import,
        os_variant: a.os_variant.clone(),
        graphics: a
            .graphics
            .as_deref()
            .map(GraphicsConfig::parse)
            .transpose()?
            .unwrap_or_default(),
        cloud_init: a
            .cloud_init
            .as_deref()
            .map(CloudInitConfig::parse)
            .transpose()?,
        firmware: a.boot.as_deref().map(parse_boot).transpose()?,
        accel: a.accel.as_deref().map(parse_accel).transpose()?,
        autostart: a.autostart,
        ..Default::default()
    };
    berth_virt::config::check_name(&c.name)?;
    for d in &a.disk {
        match DiskConfig::parse(d)? {
            Some(d) => c.disks.push(d),
            None => c.no_disk = true,
        }
    }
    for n in &a.network {
        match NicConfig::parse(n)? {
            Some(n) => c.networks.push(n),
            None => c.no_network = true,
        }
    }
    for p in &a.port {
        c.ports.push(PortForward::parse(p)?);
    }
    Ok(c)
}
