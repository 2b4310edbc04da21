//! `berth vm ...`: virt-install and virsh verbs over the `virt` crate. Option names are
//! virt-install's (`create`) and virsh's (the rest) wherever those tools have one.

mod console;
mod create;
mod manage;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use berth_virt::Vms;
use clap::{Args, Subcommand};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Define a VM, create its disks and start the installation (virt-install)
    #[command(alias = "install")]
    Create(Box<CreateArgs>),
    /// List virtual machines (running ones; --all for every one)
    #[command(alias = "ls")]
    List(ListArgs),
    /// Start a defined VM (or with --autostart, every VM marked autostart)
    Start(StartArgs),
    /// Shut a VM down gracefully (ACPI power button), waiting until it is off
    Shutdown(ShutdownArgs),
    /// Shut a VM down gracefully and start it again
    Reboot(ShutdownArgs),
    /// Reset a VM at once, like its reset button
    Reset(NameArgs),
    /// Stop a VM at once, whatever the guest does
    Destroy(NameArgs),
    /// Pause a running VM
    Suspend(NameArgs),
    /// Resume a paused VM
    Resume(NameArgs),
    /// Attach to a VM's serial console (detach with Ctrl-])
    Console(NameArgs),
    /// Print the loopback VNC display of a running VM
    #[command(alias = "vncdisplay")]
    Vnc(NameArgs),
    /// Show a VM's definition and state
    Dominfo(NameArgs),
    /// Print a VM's state
    Domstate(NameArgs),
    /// Remove a VM's definition (and with --remove-all-storage, its disks)
    Undefine(UndefineArgs),
    /// Mark a VM to be started by `berth vm start --autostart` (at boot)
    Autostart(AutostartArgs),
    /// Internal snapshots of a VM's qcow2 disks (and of its running state)
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Create or grow disk images
    #[command(subcommand)]
    Disk(DiskCommand),
}

/// `vm create`'s options. Values are taken as text and checked by berth_virt, so that
/// every mistake is one line naming the option.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the VM
    #[arg(short, long)]
    pub name: String,
    /// Memory in MiB (default: the OS variant's minimum, else 1024)
    #[arg(long, visible_alias = "ram")]
    pub memory: Option<String>,
    /// Number of virtual CPUs (default: the OS variant's minimum, else 1)
    #[arg(long)]
    pub vcpus: Option<String>,
    /// size=GiB | path=FILE[,format=qcow2|raw][,bus=virtio|sata][,size=GiB] | none (repeatable)
    #[arg(long)]
    pub disk: Vec<String>,
    /// Install from this ISO, booted from a CD-ROM
    #[arg(short, long)]
    pub cdrom: Option<PathBuf>,
    /// Install from this tree (an ISO or a directory): boot its kernel and initrd
    #[arg(short, long)]
    pub location: Option<PathBuf>,
    /// Boot this kernel directly, at every start
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// The initrd for --kernel
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line for --kernel or --location
    #[arg(short = 'x', long, allow_hyphen_values = true)]
    pub extra_args: Option<String>,
    /// Boot an existing disk image (the first --disk), such as a cloud image
    #[arg(long)]
    pub import: bool,
    /// The guest OS (e.g. ubuntu20.04, debian12, win11, generic): sets defaults
    #[arg(long, visible_alias = "osinfo")]
    pub os_variant: Option<String>,
    /// default | none | bridge=DEV | network=NAME, with ,model=virtio|e1000e ,mac=MAC (repeatable)
    #[arg(short = 'w', long)]
    pub network: Vec<String>,
    /// Forward a host port to the guest: [IP:]HOST:GUEST[/tcp|udp] (repeatable)
    #[arg(short, long)]
    pub port: Vec<String>,
    /// none | vnc[,port=5900+N][,listen=ADDR] (default: vnc on 127.0.0.1)
    #[arg(long)]
    pub graphics: Option<String>,
    /// NoCloud seed: user-data=FILE,meta-data=FILE,network-config=FILE,
    /// root-password-generate=on,root-password-file=FILE,ssh-key=FILE,disable=on
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub cloud_init: Option<String>,
    /// Do not attach to the console after starting
    #[arg(long, visible_alias = "no-autoconsole")]
    pub noautoconsole: bool,
    /// Firmware: bios (SeaBIOS, the default) or uefi (OVMF)
    #[arg(long)]
    pub boot: Option<String>,
    /// Define the VM but do not start it
    #[arg(long)]
    pub no_start: bool,
    /// Do not start the guest again when the installation ends
    #[arg(long)]
    pub noreboot: bool,
    /// Minutes to wait for the installation to end when not attached to a terminal
    /// (negative: forever)
    #[arg(long, allow_hyphen_values = true)]
    pub wait: Option<i64>,
    /// Accelerator: kvm or tcg (default: kvm when the host can run it)
    #[arg(long)]
    pub accel: Option<String>,
    /// Mark the VM to start with `berth vm start --autostart`
    #[arg(long)]
    pub autostart: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Name of the VM
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every VM, not only active ones
    #[arg(short, long)]
    pub all: bool,
    /// Print names only
    #[arg(long)]
    pub name: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Name of the VM
    #[arg(required_unless_present = "autostart")]
    pub name: Option<String>,
    /// Attach to the console once started
    #[arg(long)]
    pub console: bool,
    /// Start every VM marked autostart that is shut off
    #[arg(long, conflicts_with_all = ["name", "console"])]
    pub autostart: bool,
}

#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// Name of the VM
    pub name: String,
    /// Seconds to wait for the guest to power off
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Only press the power button; do not wait
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct UndefineArgs {
    /// Name of the VM
    pub name: String,
    /// Also remove the VM's disk images (never its CD-ROM images)
    #[arg(long)]
    pub remove_all_storage: bool,
}

#[derive(Debug, Args)]
pub struct AutostartArgs {
    /// Name of the VM
    pub name: String,
    /// Unmark it
    #[arg(long)]
    pub disable: bool,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot (with the machine state when the VM runs)
    Create {
        name: String,
        /// Snapshot name (default: the time in seconds)
        snapshot: Option<String>,
    },
    /// List a VM's snapshots
    #[command(alias = "ls")]
    List { name: String },
    /// Return to a snapshot
    Revert { name: String, snapshot: String },
    /// Delete a snapshot
    #[command(alias = "rm")]
    Delete { name: String, snapshot: String },
}

#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Create a new disk image
    Create {
        path: PathBuf,
        /// Size in GiB, or with a unit: 512M, 20G, 1T
        #[arg(long)]
        size: String,
        /// qcow2 (default) or raw
        #[arg(long, default_value = "qcow2")]
        format: String,
    },
    /// Grow a VM's disk (live when it runs) or an image file
    Resize {
        /// A VM name or an image path
        target: String,
        /// New size in GiB, or with a unit: 512M, 20G, 1T
        #[arg(long)]
        size: String,
        /// Which disk of the VM (vda, sdb, ...; default: the first)
        #[arg(long)]
        disk: Option<String>,
    },
}

pub fn run(ctx: &Ctx, command: VmCommand) -> Result<ExitCode> {
    let vms = Vms::open(&ctx.root, &ctx.run_root)?;
    match command {
        VmCommand::Create(a) => create::run(&vms, &a),
        VmCommand::List(a) => show::list(&vms, &a),
        VmCommand::Start(a) => manage::start(&vms, &a),
        VmCommand::Shutdown(a) => manage::shutdown(&vms, &a),
        VmCommand::Reboot(a) => manage::reboot(&vms, &a),
        VmCommand::Reset(a) => manage::reset(&vms, &a.name),
        VmCommand::Destroy(a) => manage::destroy(&vms, &a.name),
        VmCommand::Suspend(a) => manage::suspend(&vms, &a.name),
        VmCommand::Resume(a) => manage::resume(&vms, &a.name),
        VmCommand::Console(a) => console::attach(&vms, &a.name),
        VmCommand::Vnc(a) => show::vnc(&vms, &a.name),
        VmCommand::Dominfo(a) => show::dominfo(&vms, &a.name),
        VmCommand::Domstate(a) => show::domstate(&vms, &a.name),
        VmCommand::Undefine(a) => manage::undefine(&vms, &a),
        VmCommand::Autostart(a) => manage::autostart(&vms, &a),
        VmCommand::Snapshot(c) => manage::snapshot(&vms, c),
        VmCommand::Disk(c) => manage::disk(&vms, c),
    }
}
