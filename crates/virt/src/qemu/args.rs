//! A typed builder for `qemu-system-x86_64` command lines.
//!
//! Every option is a method taking typed values; the builder renders them as separate argv
//! entries (never a shell string) and escapes commas inside option values the way QEMU's
//! option parser expects (`,,` is a literal comma: see "Options" in qemu(1)). `plan.rs`
//! turns a VM definition into one of these; the accelerator probe builds a tiny one too.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's portable software emulation.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The disk image formats berth handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Qcow2,
    Raw,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "raw",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `-drive cache=`: how the host page cache is used for a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    None,
    Writeback,
    Writethrough,
    Directsync,
    Unsafe,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::Writeback => "writeback",
            CacheMode::Writethrough => "writethrough",
            CacheMode::Directsync => "directsync",
            CacheMode::Unsafe => "unsafe",
        }
    }
}

/// A backend block device (`-drive if=none,...`), attached by a [`Device`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub id: String,
    pub file: PathBuf,
    pub format: ImageFormat,
    pub cdrom: bool,
    pub readonly: bool,
    pub cache: Option<CacheMode>,
}

/// A host port forwarded into the guest by user-mode networking (`hostfwd=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostForward {
    pub udp: bool,
    /// Host address to bind; all addresses when `None`.
    pub host_addr: Option<std::net::IpAddr>,
    pub host_port: u16,
    pub guest_port: u16,
}

/// A network backend (`-netdev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netdev {
    /// User-mode (slirp) networking: NAT and DHCP inside QEMU, no host privileges.
    User {
        id: String,
        hostname: Option<String>,
        forwards: Vec<HostForward>,
    },
    /// An existing tap device, opened by name.
    Tap { id: String, ifname: String },
}

/// A guest device (`-device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A virtio block device on PCI.
    VirtioBlk {
        id: String,
        drive: String,
        bootindex: Option<u32>,
    },
    /// A hard disk on the q35 AHCI controller (`ide.<port>`).
    SataDisk {
        id: String,
        drive: String,
        port: u32,
        bootindex: Option<u32>,
    },
    /// A CD-ROM on the q35 AHCI controller (`ide.<port>`).
    SataCdrom {
        id: String,
        drive: String,
        port: u32,
        bootindex: Option<u32>,
    },
    VirtioNet {
        id: String,
        netdev: String,
        mac: String,
    },
    E1000e {
        id: String,
        netdev: String,
        mac: String,
    },
    /// Entropy for the guest from the host's /dev/urandom.
    VirtioRng,
    /// Standard VGA, for a VNC display.
    Vga,
    /// An xHCI controller and a tablet, so a VNC pointer tracks absolutely.
    UsbTablet,
    /// Writing a byte to `iobase` ends QEMU with exit status `(byte << 1) | 1`.
    IsaDebugExit { iobase: u16 },
}

/// A character device backend (`-chardev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chardev {
    /// A listening unix socket; QEMU does not wait for a client.
    SocketServer {
        id: String,
        path: PathBuf,
        logfile: Option<PathBuf>,
    },
}

/// The display: none, or VNC on an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    None,
    /// VNC listening on `addr`, display `display` (port 5900 + display); with `auto`,
    /// QEMU takes the first free display from `display` to 99.
    Vnc {
        addr: std::net::IpAddr,
        display: u16,
        auto: bool,
    },
}

/// A UEFI flash pair: read-only code and the VM's own variable store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pflash {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// A QEMU command line under construction.
#[derive(Debug, Clone, Default)]
pub struct QemuArgs {
    args: Vec<OsString>,
}

/// Joins `key=value` pairs into one option string, escaping commas in values.
#[derive(Debug, Default)]
struct Opts(Vec<u8>);

impl Opts {
    fn new(first: &str) -> Self {
        Opts(first.as_bytes().to_vec())
    }

    fn kv(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.sep();
        self.0.extend_from_slice(key.as_bytes());
        self.0.push(b'=');
        for &b in value.as_ref().as_bytes() {
            self.0.push(b);
            if b == b',' {
                self.0.push(b',');
            }
        }
        self
    }

    fn kv_opt(self, key: &str, value: Option<impl AsRef<OsStr>>) -> Self {
        match value {
            Some(v) => self.kv(key, v),
            None => self,
        }
    }

    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(b',');
        }
    }

    fn build(self) -> OsString {
        OsString::from_vec(self.0)
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

impl QemuArgs {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, option: &str, value: impl Into<OsString>) -> &mut Self {
        self.args.push(option.into());
        self.args.push(value.into());
        self
    }

    fn push_flag(&mut self, option: &str) -> &mut Self {
        self.args.push(option.into());
        self
    }

    /// `-name guest=NAME`: shown in `ps` and in QEMU's messages.
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.push("-name", Opts::new("").kv("guest", name).build())
    }

    pub fn uuid(&mut self, uuid: &str) -> &mut Self {
        self.push("-uuid", uuid)
    }

    /// No default devices and no system configuration files: every device is explicit.
    pub fn no_defaults(&mut self) -> &mut Self {
        self.push_flag("-nodefaults").push_flag("-no-user-config")
    }

    /// `-machine TYPE`, e.g. `q35`, `pc`, `none`.
    pub fn machine(&mut self, kind: &str) -> &mut Self {
        self.push("-machine", kind)
    }

    pub fn accel(&mut self, accel: Accel) -> &mut Self {
        self.push("-accel", accel.as_str())
    }

    /// `-cpu MODEL`: `host` passes the host CPU through (KVM), `max` enables everything TCG
    /// can emulate.
    pub fn cpu(&mut self, model: &str) -> &mut Self {
        self.push("-cpu", model)
    }

    pub fn memory_mib(&mut self, mib: u64) -> &mut Self {
        self.push("-m", format!("{mib}M"))
    }

    pub fn smp(&mut self, vcpus: u32) -> &mut Self {
        self.push("-smp", vcpus.to_string())
    }

    /// `-bios FILE`: a firmware image instead of SeaBIOS.
    pub fn bios(&mut self, file: &Path) -> &mut Self {
        self.push("-bios", file)
    }

    pub fn pflash(&mut self, flash: &Pflash) -> &mut Self {
        let code = Opts::new("")
            .kv("if", "pflash")
            .kv("format", "raw")
            .kv("unit", "0")
            .kv("readonly", "on")
            .kv("file", &flash.code)
            .build();
        let vars = Opts::new("")
            .kv("if", "pflash")
            .kv("format", "raw")
            .kv("unit", "1")
            .kv("file", &flash.vars)
            .build();
        self.push("-drive", code).push("-drive", vars)
    }

    pub fn drive(&mut self, d: &Drive) -> &mut Self {
        let mut o = Opts::new("")
            .kv("if", "none")
            .kv("id", &d.id)
            .kv("file", &d.file)
            .kv("format", d.format.as_str());
        if d.cdrom {
            o = o.kv("media", "cdrom");
        }
        if d.readonly {
            o = o.kv("readonly", "on");
        }
        o = o.kv_opt("cache", d.cache.map(CacheMode::as_str));
        if !d.readonly {
            o = o.kv("discard", "unmap");
        }
        self.push("-drive", o.build())
    }

    pub fn netdev(&mut self, n: &Netdev) -> &mut Self {
        let o = match n {
            Netdev::User {
                id,
                hostname,
                forwards,
            } => {
                let mut o = Opts::new("user")
                    .kv("id", id)
                    .kv_opt("hostname", hostname.as_ref());
                for f in forwards {
                    let addr = f.host_addr.map(|a| a.to_string()).unwrap_or_default();
                    let proto = if f.udp { "udp" } else { "tcp" };
                    o = o.kv(
                        "hostfwd",
                        format!("{proto}:{addr}:{}-:{}", f.host_port, f.guest_port),
                    );
                }
                o
            }
            Netdev::Tap { id, ifname } => Opts::new("tap")
                .kv("id", id)
                .kv("ifname", ifname)
                .kv("script", "no")
                .kv("downscript", "no"),
        };
        self.push("-netdev", o.build())
    }

    pub fn device(&mut self, d: &Device) -> &mut Self {
        let bootindex = |o: Opts, b: &Option<u32>| o.kv_opt("bootindex", b.map(|b| b.to_string()));
        let o = match d {
            Device::VirtioBlk {
                id,
                drive,
                bootindex: b,
            } => bootindex(
                Opts::new("virtio-blk-pci").kv("drive", drive).kv("id", id),
                b,
            ),
            Device::SataDisk {
                id,
                drive,
                port,
                bootindex: b,
            } => bootindex(
                Opts::new("ide-hd")
                    .kv("bus", format!("ide.{port}"))
                    .kv("drive", drive)
                    .kv("id", id),
                b,
            ),
            Device::SataCdrom {
                id,
                drive,
                port,
                bootindex: b,
            } => bootindex(
                Opts::new("ide-cd")
                    .kv("bus", format!("ide.{port}"))
                    .kv("drive", drive)
                    .kv("id", id),
                b,
            ),
            Device::VirtioNet { id, netdev, mac } => Opts::new("virtio-net-pci")
                .kv("netdev", netdev)
                .kv("mac", mac)
                .kv("id", id),
            Device::E1000e { id, netdev, mac } => Opts::new("e1000e")
                .kv("netdev", netdev)
                .kv("mac", mac)
                .kv("id", id),
            Device::VirtioRng => {
                self.push(
                    "-object",
                    Opts::new("rng-random")
                        .kv("id", "rng0")
                        .kv("filename", "/dev/urandom")
                        .build(),
                );
                Opts::new("virtio-rng-pci").kv("rng", "rng0")
            }
            Device::Vga => Opts::new("VGA"),
            Device::UsbTablet => {
                self.push("-device", Opts::new("qemu-xhci").kv("id", "usb").build());
                Opts::new("usb-tablet").kv("bus", "usb.0")
            }
            Device::IsaDebugExit { iobase } => Opts::new("isa-debug-exit")
                .kv("iobase", format!("{iobase:#x}"))
                .kv("iosize", "0x4"),
        };
        self.push("-device", o.build())
    }

    pub fn chardev(&mut self, c: &Chardev) -> &mut Self {
        let o = match c {
            Chardev::SocketServer { id, path, logfile } => Opts::new("socket")
                .kv("id", id)
                .kv("path", path)
                .kv("server", "on")
                .kv("wait", "off")
                .kv_opt("logfile", logfile.as_ref())
                .kv_opt("logappend", logfile.as_ref().map(|_| on_off(false))),
        };
        self.push("-chardev", o.build())
    }

    /// The first serial port (the guest's ttyS0), backed by chardev `id`.
    pub fn serial(&mut self, chardev_id: &str) -> &mut Self {
        self.push("-serial", format!("chardev:{chardev_id}"))
    }

    /// A QMP monitor on chardev `id`.
    pub fn qmp(&mut self, chardev_id: &str) -> &mut Self {
        self.push(
            "-mon",
            Opts::new("")
                .kv("chardev", chardev_id)
                .kv("mode", "control")
                .build(),
        )
    }

    pub fn display(&mut self, d: &Display) -> &mut Self {
        match d {
            Display::None => self.push("-display", "none"),
            Display::Vnc {
                addr,
                display,
                auto,
            } => {
                let host = match addr {
                    std::net::IpAddr::V4(a) => a.to_string(),
                    std::net::IpAddr::V6(a) => format!("[{a}]"),
                };
                let mut o = Opts::new(&format!("{host}:{display}"));
                if *auto {
                    o = o.kv("to", "99");
                }
                self.push("-vnc", o.build())
            }
        }
    }

    /// Direct kernel boot.
    pub fn kernel(&mut self, kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> &mut Self {
        self.push("-kernel", kernel);
        if let Some(i) = initrd {
            self.push("-initrd", i);
        }
        if !cmdline.is_empty() {
            self.push("-append", cmdline);
        }
        self
    }

    /// `-rtc base=localtime` (Windows expects it) or UTC.
    pub fn rtc_localtime(&mut self, localtime: bool) -> &mut Self {
        self.push(
            "-rtc",
            if localtime {
                "base=localtime"
            } else {
                "base=utc"
            },
        )
    }

    /// A guest reboot ends QEMU instead of resetting the machine.
    pub fn no_reboot(&mut self) -> &mut Self {
        self.push_flag("-no-reboot")
    }

    /// Restores the internal snapshot `name` of every disk, with the machine state, at start.
    pub fn loadvm(&mut self, name: &str) -> &mut Self {
        self.push("-loadvm", name)
    }

    /// Detach from the terminal once the machine is set up; the parent exits then, with a
    /// non-zero status if setting up failed.
    pub fn daemonize(&mut self, pidfile: &Path) -> &mut Self {
        self.push("-pidfile", pidfile).push_flag("-daemonize")
    }

    /// The rendered argv, without the binary.
    pub fn to_args(&self) -> Vec<OsString> {
        self.args.clone()
    }

    /// The rendered argv for humans (logs, `dominfo`); paths are shown lossily.
    pub fn display_string(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(a: &QemuArgs) -> Vec<String> {
        a.to_args()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        let mut a = QemuArgs::new();
        a.drive(&Drive {
            id: "drive0".into(),
            file: "/var/lib/a,b/disk.qcow2".into(),
            format: ImageFormat::Qcow2,
            cdrom: false,
            readonly: false,
            cache: None,
        });
        assert_eq!(
            strs(&a),
            [
                "-drive",
                "if=none,id=drive0,file=/var/lib/a,,b/disk.qcow2,format=qcow2,discard=unmap"
            ]
        );
    }

    #[test]
    fn cdrom_drive_is_read_only_media() {
        let mut a = QemuArgs::new();
        a.drive(&Drive {
            id: "cd0".into(),
            file: "/isos/x.iso".into(),
            format: ImageFormat::Raw,
            cdrom: true,
            readonly: true,
            cache: Some(CacheMode::Unsafe),
        })
        .device(&Device::SataCdrom {
            id: "sda".into(),
            drive: "cd0".into(),
            port: 0,
            bootindex: Some(0),
        });
        assert_eq!(
            strs(&a),
            [
                "-drive",
                "if=none,id=cd0,file=/isos/x.iso,format=raw,media=cdrom,readonly=on,cache=unsafe",
                "-device",
                "ide-cd,bus=ide.0,drive=cd0,id=sda,bootindex=0"
            ]
        );
    }

    #[test]
    fn user_network_with_forwards() {
        let mut a = QemuArgs::new();
        a.netdev(&Netdev::User {
            id: "net0".into(),
            hostname: Some("vm1".into()),
            forwards: vec![
                HostForward {
                    udp: false,
                    host_addr: None,
                    host_port: 8080,
                    guest_port: 80,
                },
                HostForward {
                    udp: true,
                    host_addr: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    guest_port: 53,
                },
            ],
        })
        .device(&Device::VirtioNet {
            id: "net0dev".into(),
            netdev: "net0".into(),
            mac: "52:54:00:01:02:03".into(),
        });
        assert_eq!(
            strs(&a),
            [
                "-netdev",
                "user,id=net0,hostname=vm1,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53",
                "-device",
                "virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03,id=net0dev"
            ]
        );
    }

    #[test]
    fn console_qmp_and_daemon() {
        let mut a = QemuArgs::new();
        a.chardev(&Chardev::SocketServer {
            id: "serial0".into(),
            path: "/run/berth/vms/a/console.sock".into(),
            logfile: Some("/var/lib/berth/vms/a/console.log".into()),
        })
        .serial("serial0")
        .chardev(&Chardev::SocketServer {
            id: "qmp".into(),
            path: "/run/berth/vms/a/qmp.sock".into(),
            logfile: None,
        })
        .qmp("qmp")
        .daemonize(Path::new("/run/berth/vms/a/qemu.pid"));
        assert_eq!(
            strs(&a),
            [
                "-chardev",
                "socket,id=serial0,path=/run/berth/vms/a/console.sock,server=on,wait=off,logfile=/var/lib/berth/vms/a/console.log,logappend=off",
                "-serial",
                "chardev:serial0",
                "-chardev",
                "socket,id=qmp,path=/run/berth/vms/a/qmp.sock,server=on,wait=off",
                "-mon",
                "chardev=qmp,mode=control",
                "-pidfile",
                "/run/berth/vms/a/qemu.pid",
                "-daemonize"
            ]
        );
    }

    #[test]
    fn machine_memory_cpus_and_kernel() {
        let mut a = QemuArgs::new();
        a.name("web,1")
            .no_defaults()
            .machine("q35")
            .accel(Accel::Tcg)
            .cpu("max")
            .memory_mib(2048)
            .smp(2)
            .kernel(
                Path::new("/k/vmlinuz"),
                Some(Path::new("/k/initrd")),
                "console=ttyS0 quiet",
            )
            .display(&Display::Vnc {
                addr: "127.0.0.1".parse().unwrap(),
                display: 0,
                auto: true,
            });
        assert_eq!(
            strs(&a),
            [
                "-name",
                "guest=web,,1",
                "-nodefaults",
                "-no-user-config",
                "-machine",
                "q35",
                "-accel",
                "tcg",
                "-cpu",
                "max",
                "-m",
                "2048M",
                "-smp",
                "2",
                "-kernel",
                "/k/vmlinuz",
                "-initrd",
                "/k/initrd",
                "-append",
                "console=ttyS0 quiet",
                "-vnc",
                "127.0.0.1:0,to=99"
            ]
        );
    }

    #[test]
    fn uefi_flash_pair() {
        let mut a = QemuArgs::new();
        a.pflash(&Pflash {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: "/var/lib/berth/vms/a/OVMF_VARS.fd".into(),
        });
        assert_eq!(
            strs(&a),
            [
                "-drive",
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                "-drive",
                "if=pflash,format=raw,unit=1,file=/var/lib/berth/vms/a/OVMF_VARS.fd"
            ]
        );
    }

    #[test]
    fn non_utf8_paths_survive() {
        let mut a = QemuArgs::new();
        let p = PathBuf::from(OsString::from_vec(b"/d/\xff.img".to_vec()));
        a.kernel(&p, None, "");
        assert_eq!(a.to_args()[1].as_bytes(), b"/d/\xff.img");
    }
}
