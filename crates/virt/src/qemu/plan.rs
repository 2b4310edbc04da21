//! Turns a VM definition into the QEMU command line of one run. Pure: the caller resolves
//! the accelerator, the firmware and the tap devices first, so this is unit-tested as is.
//!
//! The machine is always q35 (PCIe, an AHCI controller for SATA disks and CD-ROMs), with
//! `-nodefaults` so that every device is one berth asked for. The serial console and QMP
//! are unix sockets in the run directory; the console is also logged to a file.

use std::path::{Path, PathBuf};

use super::args::{Accel, Chardev, Device, Display, Drive, HostForward, Netdev, Pflash, QemuArgs};
use crate::config::{DiskBus, DiskDevice, GraphicsConfig, NicKind, NicModel};
use crate::runtime::RunPaths;
use crate::state::VmState;

/// Everything about one run that is not in the definition.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub vm: &'a VmState,
    pub paths: &'a RunPaths,
    pub console_log: &'a Path,
    pub accel: Accel,
    /// This run boots the install media.
    pub install: bool,
    pub uefi: Option<Pflash>,
    /// The tap device of each NIC that needs one, by NIC index.
    pub taps: &'a [(usize, String)],
    /// Restore this internal snapshot (with machine state) at start.
    pub loadvm: Option<&'a str>,
}

/// The drive id QEMU knows a disk by (for `block_resize`).
pub fn drive_id(target: &str) -> String {
    format!("drive-{target}")
}

pub fn build(l: &Launch<'_>) -> QemuArgs {
    let vm = l.vm;
    let mut a = QemuArgs::new();
    a.name(&vm.name)
        .uuid(&vm.uuid)
        .no_defaults()
        .machine("q35")
        .accel(l.accel)
        .cpu(match l.accel {
            Accel::Kvm => "host",
            Accel::Tcg => "max",
        })
        .memory_mib(vm.memory_mib)
        .smp(vm.vcpus);
    if let Some(fw) = &l.uefi {
        a.pflash(fw);
    }
    a.rtc_localtime(vm.rtc_localtime);
    match &vm.graphics {
        GraphicsConfig::None => {
            a.display(&Display::None);
        }
        GraphicsConfig::Vnc { listen, display } => {
            a.display(&Display::Vnc {
                addr: *listen,
                display: display.unwrap_or(0),
                auto: display.is_none(),
            })
            .device(&Device::Vga)
            .device(&Device::UsbTablet);
        }
    }
    a.chardev(&Chardev::SocketServer {
        id: "serial0".into(),
        path: l.paths.console.clone(),
        logfile: Some(l.console_log.to_path_buf()),
    })
    .serial("serial0")
    .chardev(&Chardev::SocketServer {
        id: "qmp".into(),
        path: l.paths.qmp.clone(),
        logfile: None,
    })
    .qmp("qmp");

    // Boot order: the install CD-ROM during the install, then disks, then CD-ROMs.
    let disks: Vec<_> = vm
        .disks
        .iter()
        .filter(|d| l.install || !d.install_only)
        .collect();
    let mut order: Vec<&str> = Vec::new();
    if l.install {
        order.extend(
            disks
                .iter()
                .filter(|d| d.install_boot)
                .map(|d| d.target.as_str()),
        );
    }
    order.extend(
        disks
            .iter()
            .filter(|d| d.device == DiskDevice::Disk)
            .map(|d| d.target.as_str()),
    );
    order.extend(
        disks
            .iter()
            .filter(|d| d.device == DiskDevice::Cdrom && !(l.install && d.install_boot))
            .map(|d| d.target.as_str()),
    );
    // From 1: with -kernel, QEMU gives bootindex 0 to its own linuxboot option ROM.
    let bootindex = |t: &str| order.iter().position(|o| *o == t).map(|i| i as u32 + 1);
    let mut sata_port = 0u32;
    for d in &disks {
        let id = drive_id(&d.target);
        a.drive(&Drive {
            id: id.clone(),
            file: d.path.clone(),
            format: d.format,
            cdrom: d.device == DiskDevice::Cdrom,
            readonly: d.readonly,
            cache: d.cache,
        });
        let dev = match (d.bus, d.device) {
            (DiskBus::Virtio, _) => Device::VirtioBlk {
                id: d.target.clone(),
                drive: id,
                bootindex: bootindex(&d.target),
            },
            (DiskBus::Sata, DiskDevice::Disk) => Device::SataDisk {
                id: d.target.clone(),
                drive: id,
                port: sata_port,
                bootindex: bootindex(&d.target),
            },
            (DiskBus::Sata, DiskDevice::Cdrom) => Device::SataCdrom {
                id: d.target.clone(),
                drive: id,
                port: sata_port,
                bootindex: bootindex(&d.target),
            },
        };
        if d.bus == DiskBus::Sata {
            sata_port += 1;
        }
        a.device(&dev);
    }

    let mut forwards_given = false;
    for (i, nic) in vm.nics.iter().enumerate() {
        let id = format!("net{i}");
        let netdev = match &nic.kind {
            NicKind::User => {
                // Ports go to the first user-mode NIC.
                let forwards = if forwards_given {
                    Vec::new()
                } else {
                    forwards_given = true;
                    vm.ports
                        .iter()
                        .map(|p| HostForward {
                            udp: p.udp,
                            host_addr: p.host_addr,
                            host_port: p.host_port,
                            guest_port: p.guest_port,
                        })
                        .collect()
                };
                Netdev::User {
                    id: id.clone(),
                    hostname: Some(vm.name.clone()),
                    forwards,
                }
            }
            NicKind::Bridge { .. } | NicKind::Network { .. } => Netdev::Tap {
                id: id.clone(),
                ifname: l
                    .taps
                    .iter()
                    .find(|(n, _)| *n == i)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default(),
            },
        };
        a.netdev(&netdev);
        let dev_id = format!("nic{i}");
        a.device(&match nic.model {
            NicModel::Virtio => Device::VirtioNet {
                id: dev_id,
                netdev: id,
                mac: nic.mac.clone(),
            },
            NicModel::E1000e => Device::E1000e {
                id: dev_id,
                netdev: id,
                mac: nic.mac.clone(),
            },
        });
    }
    a.device(&Device::VirtioRng);

    let direct = if l.install {
        vm.install.as_ref().and_then(|i| i.direct.as_ref())
    } else {
        None
    }
    .or(vm.boot.as_ref());
    if let Some(b) = direct {
        a.kernel(&b.kernel, b.initrd.as_deref(), &b.cmdline);
    }
    if l.install {
        // The installer's final reboot ends this run; the next start boots the disk.
        a.no_reboot();
    }
    if let Some(name) = l.loadvm {
        a.loadvm(name);
    }
    a.daemonize(&l.paths.pidfile);
    a
}

/// The NVRAM file of a UEFI VM.
pub fn nvram_path(vm_dir: &Path) -> PathBuf {
    vm_dir.join("OVMF_VARS.fd")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Firmware, PortForward};
    use crate::qemu::args::ImageFormat;
    use crate::state::{DirectBoot, DiskState, InstallState, NicState};

    fn vm() -> VmState {
        VmState {
            version: VmState::VERSION,
            name: "myvm".into(),
            uuid: "6f1b1f7a-0000-4000-8000-000000000001".into(),
            created: 0,
            memory_mib: 2048,
            vcpus: 2,
            os_variant: "ubuntu20.04".into(),
            firmware: Firmware::Bios,
            accel: None,
            disks: vec![
                DiskState {
                    target: "vda".into(),
                    path: "/var/lib/berth/vms/myvm/myvm.qcow2".into(),
                    format: ImageFormat::Qcow2,
                    bus: DiskBus::Virtio,
                    device: DiskDevice::Disk,
                    readonly: false,
                    cache: None,
                    created: true,
                    install_only: false,
                    install_boot: false,
                },
                DiskState {
                    target: "sda".into(),
                    path: "/isos/ubuntu.iso".into(),
                    format: ImageFormat::Raw,
                    bus: DiskBus::Sata,
                    device: DiskDevice::Cdrom,
                    readonly: true,
                    cache: None,
                    created: false,
                    install_only: false,
                    install_boot: true,
                },
            ],
            boot: None,
            install: Some(InstallState { direct: None }),
            nics: vec![NicState {
                kind: NicKind::User,
                model: NicModel::Virtio,
                mac: "52:54:00:00:00:01".into(),
            }],
            ports: vec![PortForward {
                host_addr: None,
                host_port: 2222,
                guest_port: 22,
                udp: false,
            }],
            graphics: GraphicsConfig::None,
            nvram: None,
            rtc_localtime: false,
            autostart: false,
            snapshots: vec![],
        }
    }

    fn render(vm: &VmState, install: bool) -> String {
        let paths = RunPaths::new("/run/berth/vms/myvm".into());
        build(&Launch {
            vm,
            paths: &paths,
            console_log: Path::new("/var/lib/berth/vms/myvm/console.log"),
            accel: Accel::Tcg,
            install,
            uefi: None,
            taps: &[],
            loadvm: None,
        })
        .display_string()
    }

    #[test]
    fn cdrom_install_boots_the_cd_first_once() {
        let s = render(&vm(), true);
        assert!(s.starts_with("-name guest=myvm -uuid 6f1b1f7a-0000-4000-8000-000000000001 -nodefaults -no-user-config -machine q35 -accel tcg -cpu max -m 2048M -smp 2"), "{s}");
        assert!(
            s.contains("-device virtio-blk-pci,drive=drive-vda,id=vda,bootindex=2"),
            "{s}"
        );
        assert!(
            s.contains("-device ide-cd,bus=ide.0,drive=drive-sda,id=sda,bootindex=1"),
            "{s}"
        );
        assert!(
            s.contains("-netdev user,id=net0,hostname=myvm,hostfwd=tcp::2222-:22"),
            "{s}"
        );
        assert!(s.contains("-no-reboot"), "{s}");
        assert!(
            s.ends_with("-pidfile /run/berth/vms/myvm/qemu.pid -daemonize"),
            "{s}"
        );
        // After the install: the disk first, the CD still attached, reboots allowed.
        let s = render(&vm(), false);
        assert!(s.contains("id=vda,bootindex=1"), "{s}");
        assert!(s.contains("id=sda,bootindex=2"), "{s}");
        assert!(!s.contains("-no-reboot"), "{s}");
    }

    #[test]
    fn location_install_boots_the_tree_kernel_then_the_disk() {
        let mut v = vm();
        v.disks[1].install_only = true;
        v.disks[1].install_boot = false;
        v.install = Some(InstallState {
            direct: Some(DirectBoot {
                kernel: "/var/lib/berth/vms/myvm/boot/vmlinuz".into(),
                initrd: Some("/var/lib/berth/vms/myvm/boot/initrd".into()),
                cmdline: "console=ttyS0".into(),
            }),
        });
        let s = render(&v, true);
        assert!(s.contains("-kernel /var/lib/berth/vms/myvm/boot/vmlinuz -initrd /var/lib/berth/vms/myvm/boot/initrd -append console=ttyS0"), "{s}");
        assert!(s.contains("id=sda"), "{s}");
        let s = render(&v, false);
        assert!(!s.contains("-kernel"), "{s}");
        assert!(!s.contains("id=sda"), "{s}");
    }

    #[test]
    fn vnc_graphics_and_windows_devices() {
        let mut v = vm();
        v.graphics = GraphicsConfig::default();
        v.nics[0].model = NicModel::E1000e;
        v.disks[0].bus = DiskBus::Sata;
        v.disks[0].target = "sda".into();
        v.disks[1].target = "sdb".into();
        v.rtc_localtime = true;
        let s = render(&v, false);
        assert!(s.contains("-vnc 127.0.0.1:0,to=99 -device VGA"), "{s}");
        assert!(
            s.contains("-device ide-hd,bus=ide.0,drive=drive-sda,id=sda"),
            "{s}"
        );
        assert!(
            s.contains("-device ide-cd,bus=ide.1,drive=drive-sdb,id=sdb"),
            "{s}"
        );
        assert!(s.contains("-device e1000e,netdev=net0"), "{s}");
        assert!(s.contains("-rtc base=localtime"), "{s}");
    }
}
