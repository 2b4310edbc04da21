//! `vm create` (virt-install): checks everything first — names, files, memory, the OS
//! variant, the accelerator, firmware, networks — and only then makes the VM's directory,
//! its disks, UEFI variables, install kernel and cloud-init seed, and writes the
//! definition last. A failure on the way removes what was made: bad input leaves nothing.

use std::fs;
use std::path::{Path, PathBuf};

use super::{now, taps, VmError, Vms};
use crate::cloudinit::{self, Seed};
use crate::config::{
    check_name, DiskBus, DiskConfig, DiskDevice, Firmware, GraphicsConfig, NicKind, NicModel,
    VmConfig,
};
use crate::host::{self, accel, firmware};
use crate::location;
use crate::osinfo::{self, OsFamily, OsVariant};
use crate::qemu::args::{Accel, CacheMode, ImageFormat};
use crate::qemu::{img, plan};
use crate::random;
use crate::state::{DirectBoot, DiskState, InstallState, NicState, VmState};

/// The size of the disk berth adds for an install when no `--disk` is given (or the OS
/// variant's minimum, if larger).
pub const DEFAULT_DISK_BYTES: u64 = 20 << 30;
/// Memory when neither `--memory` nor the OS variant says.
pub const DEFAULT_MEMORY_MIB: u64 = 1024;
/// q35's AHCI controller has six ports.
const SATA_PORTS: usize = 6;

/// A defined VM, and what the user should hear about it.
#[derive(Debug, Clone)]
pub struct Created {
    pub state: VmState,
    pub os: OsVariant,
    /// Things that work but may not be what the user wants (low memory, ...).
    pub warnings: Vec<String>,
    /// The root password `--cloud-init root-password-generate=on` made.
    pub generated_password: Option<String>,
}

/// How the first boot installs the guest.
#[derive(Debug, Clone)]
enum Install {
    Cdrom,
    Location { tree: PathBuf, iso: bool },
    Import,
    Kernel(DirectBoot),
}

#[derive(Debug, Clone)]
enum Image {
    /// A new image; `None`: named after the VM in its directory.
    New {
        path: Option<PathBuf>,
        bytes: u64,
        preallocate: bool,
    },
    Existing(PathBuf),
    /// The cloud-init seed, written once the VM's directory exists.
    Seed,
}

#[derive(Debug, Clone)]
struct PlannedDisk {
    image: Image,
    format: ImageFormat,
    bus: DiskBus,
    device: DiskDevice,
    readonly: bool,
    cache: Option<CacheMode>,
    install_boot: bool,
    install_only: bool,
}

/// Everything checked, nothing made yet.
struct Plan {
    os: OsVariant,
    uuid: String,
    memory_mib: u64,
    vcpus: u32,
    firmware: Firmware,
    uefi: Option<firmware::UefiFirmware>,
    install: Install,
    extra_args: Option<String>,
    disks: Vec<PlannedDisk>,
    nics: Vec<NicState>,
    seed: Option<Seed>,
    warnings: Vec<String>,
}

impl Vms {
    /// Defines a VM (it does not start it).
    pub fn create(&self, c: &VmConfig) -> Result<Created, VmError> {
        check_name(&c.name)?;
        if self.store.exists(&c.name) {
            return Err(VmError::Exists(c.name.clone()));
        }
        let plan = self.plan(c)?;
        let mut lock = self.store.lock(&c.name)?;
        if self.store.exists(&c.name) {
            return Err(VmError::Exists(c.name.clone()));
        }
        let mut made = Made::default();
        match self.make(c, &plan, &mut made) {
            Ok(state) => Ok(Created {
                state,
                os: plan.os,
                warnings: plan.warnings,
                generated_password: plan.seed.and_then(|s| s.generated_password),
            }),
            Err(e) => {
                made.undo();
                lock.remove_on_release();
                Err(e)
            }
        }
    }

    fn plan(&self, c: &VmConfig) -> Result<Plan, VmError> {
        let os = match &c.os_variant {
            Some(name) => osinfo::lookup(name, &self.osinfo_dir)?,
            None => OsVariant::generic(),
        };
        let mut warnings = Vec::new();

        let install = install_method(c)?;
        let extra_args = c.extra_args.clone();

        // Memory and vCPUs: the OS variant's minimums are the defaults.
        let memory_mib = c
            .memory_mib
            .or(os.min_memory_mib)
            .unwrap_or(DEFAULT_MEMORY_MIB);
        if memory_mib == 0 {
            return Err(crate::config::ConfigError::Invalid {
                flag: "--memory",
                value: "0".into(),
                what: "memory must be at least 1 MiB",
            }
            .into());
        }
        if let Some(host) = host::memory_mib() {
            if memory_mib > host {
                return Err(VmError::MemoryTooLarge {
                    requested: memory_mib,
                    host,
                });
            }
        }
        if let Some(min) = os.min_memory_mib.filter(|m| memory_mib < *m) {
            warnings.push(format!(
                "{memory_mib} MiB of memory is less than the {min} MiB {} needs",
                os.short_id
            ));
        }
        let vcpus = c.vcpus.or(os.min_vcpus).unwrap_or(1);
        if vcpus > host::cpus() {
            warnings.push(format!(
                "{vcpus} vCPUs is more than the host's {} CPUs; the guest will run slower",
                host::cpus()
            ));
        }

        let firmware = match c.firmware {
            Some(Firmware::Bios) if os.requires_uefi => {
                return Err(VmError::NeedsUefi(os.short_id.clone()))
            }
            Some(f) => f,
            None if os.requires_uefi => Firmware::Uefi,
            None => Firmware::Bios,
        };
        let uefi = match firmware {
            Firmware::Uefi => Some(firmware::find_uefi().ok_or(VmError::NoUefi)?),
            Firmware::Bios => None,
        };
        if c.accel == Some(Accel::Kvm) {
            let qemu =
                crate::qemu::find_binary(crate::qemu::SYSTEM_BINARY).ok_or(VmError::QemuMissing)?;
            let (d, _) = accel::detect(&qemu, self.store.run_vms_dir());
            if let Some(why) = d.kvm_unusable {
                return Err(VmError::KvmUnusable(why));
            }
        }

        let disks = self.plan_disks(c, &os, &install, &mut warnings)?;
        let nics = plan_nics(c, &os, &self.state_root)?;
        let uuid = random::uuid_v4().map_err(|source| VmError::Access {
            what: "read random bytes for",
            path: "the VM's uuid".into(),
            source,
        })?;
        let seed = match &c.cloud_init {
            Some(ci) => {
                let seed = cloudinit::build_seed(ci, &c.name, &uuid)?;
                for opt in &seed.ignored {
                    warnings.push(format!(
                        "--cloud-init {opt} is ignored: the given user-data is used as it is"
                    ));
                }
                Some(seed)
            }
            None => None,
        };
        Ok(Plan {
            os,
            uuid,
            memory_mib,
            vcpus,
            firmware,
            uefi,
            install,
            extra_args,
            disks,
            nics,
            seed,
            warnings,
        })
    }

    fn plan_disks(
        &self,
        c: &VmConfig,
        os: &OsVariant,
        install: &Install,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PlannedDisk>, VmError> {
        let preferred = if os.virtio {
            DiskBus::Virtio
        } else {
            DiskBus::Sata
        };
        if c.no_disk && !c.disks.is_empty() {
            return Err(VmError::Conflict("--disk none", "--disk"));
        }
        let mut disks = Vec::new();
        for d in &c.disks {
            disks.push(plan_disk(d, preferred, warnings)?);
        }
        let installs = matches!(install, Install::Cdrom | Install::Location { .. });
        if c.disks.is_empty() && !c.no_disk && installs {
            let bytes = os.min_storage_bytes.unwrap_or(0).max(DEFAULT_DISK_BYTES);
            disks.push(PlannedDisk {
                image: Image::New {
                    path: None,
                    bytes,
                    preallocate: false,
                },
                format: ImageFormat::Qcow2,
                bus: preferred,
                device: DiskDevice::Disk,
                readonly: false,
                cache: None,
                install_boot: false,
                install_only: false,
            });
        }
        if let Some(min) = os.min_storage_bytes {
            for d in &disks {
                if let Image::New { bytes, .. } = d.image {
                    if bytes < min && d.device == DiskDevice::Disk {
                        warnings.push(format!(
                            "a {} GiB disk is smaller than the {} GiB {} needs",
                            gib(bytes),
                            gib(min),
                            os.short_id
                        ));
                        break;
                    }
                }
            }
        }
        if matches!(install, Install::Import)
            && !disks
                .iter()
                .any(|d| matches!(d.image, Image::Existing(_)) && d.device == DiskDevice::Disk)
        {
            return Err(VmError::Needs("--import", "a --disk path=IMAGE to boot"));
        }
        let cd = |image: Image| PlannedDisk {
            image,
            format: ImageFormat::Raw,
            bus: DiskBus::Sata,
            device: DiskDevice::Cdrom,
            readonly: true,
            cache: None,
            install_boot: false,
            install_only: false,
        };
        match install {
            Install::Cdrom => {
                let iso = existing_file(
                    "cdrom",
                    c.cdrom.as_deref().expect("checked by install_method"),
                )?;
                disks.push(PlannedDisk {
                    install_boot: true,
                    ..cd(Image::Existing(iso))
                });
            }
            Install::Location { tree, iso: true } => disks.push(PlannedDisk {
                install_only: true,
                ..cd(Image::Existing(tree.clone()))
            }),
            _ => {}
        }
        if c.cloud_init.is_some() {
            disks.push(cd(Image::Seed));
        }
        let sata = disks.iter().filter(|d| d.bus == DiskBus::Sata).count();
        if sata > SATA_PORTS {
            return Err(VmError::TooManySata {
                count: sata,
                ports: SATA_PORTS,
            });
        }
        Ok(disks)
    }

    fn make(&self, c: &VmConfig, p: &Plan, made: &mut Made) -> Result<VmState, VmError> {
        let dir = self.store.vm_dir(&c.name);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|source| VmError::Access {
                what: "create",
                path: dir.clone(),
                source,
            })?;
            made.dirs.push(dir.clone());
        }

        let mut disks = Vec::new();
        let (mut virtio, mut sata) = (0usize, 0usize);
        for d in &p.disks {
            let (path, created) = match &d.image {
                Image::Seed => {
                    let path = dir.join("seed.iso");
                    let seed = p
                        .seed
                        .as_ref()
                        .expect("a seed disk is planned only with a seed");
                    made.files.push(path.clone());
                    cloudinit::write_seed(seed, &path)?;
                    (path, true)
                }
                Image::New {
                    path,
                    bytes,
                    preallocate,
                } => {
                    let path = match path {
                        Some(p) => p.clone(),
                        None => unused_image_name(&dir, &c.name, d.format),
                    };
                    if path.exists() {
                        return Err(VmError::FileExists(path));
                    }
                    made.files.push(path.clone());
                    img::create(&path, d.format, *bytes, *preallocate)?;
                    (path, true)
                }
                Image::Existing(p) => (p.clone(), false),
            };
            let target = match d.bus {
                DiskBus::Virtio => {
                    virtio += 1;
                    target_name("vd", virtio - 1)
                }
                DiskBus::Sata => {
                    sata += 1;
                    target_name("sd", sata - 1)
                }
            };
            disks.push(DiskState {
                target,
                path,
                format: d.format,
                bus: d.bus,
                device: d.device,
                readonly: d.readonly,
                cache: d.cache,
                created,
                install_only: d.install_only,
                install_boot: d.install_boot,
            });
        }

        let nvram = match &p.uefi {
            Some(fw) => {
                let path = plan::nvram_path(&dir);
                made.files.push(path.clone());
                fs::copy(&fw.vars_template, &path).map_err(|source| VmError::Access {
                    what: "copy the UEFI variable store to",
                    path: path.clone(),
                    source,
                })?;
                Some(path)
            }
            None => None,
        };

        let console_args = matches!(c.graphics, GraphicsConfig::None);
        let (boot, install) = match &p.install {
            Install::Kernel(b) => (Some(b.clone()), None),
            Install::Import => (None, None),
            Install::Cdrom => (None, Some(InstallState { direct: None })),
            Install::Location { tree, .. } => {
                let boot_dir = dir.join("boot");
                fs::create_dir_all(&boot_dir).map_err(|source| VmError::Access {
                    what: "create",
                    path: boot_dir.clone(),
                    source,
                })?;
                made.dirs.push(boot_dir.clone());
                let e = location::extract(tree, &boot_dir)?;
                let mut args: Vec<String> = p.extra_args.iter().cloned().collect();
                args.extend(location::install_args(&e));
                let cmdline = kernel_cmdline(&args.join(" "), console_args);
                (
                    None,
                    Some(InstallState {
                        direct: Some(DirectBoot {
                            kernel: e.kernel,
                            initrd: Some(e.initrd),
                            cmdline,
                        }),
                    }),
                )
            }
        };

        let state = VmState {
            version: VmState::VERSION,
            name: c.name.clone(),
            uuid: p.uuid.clone(),
            created: now(),
            memory_mib: p.memory_mib,
            vcpus: p.vcpus,
            os_variant: p.os.short_id.clone(),
            firmware: p.firmware,
            accel: c.accel,
            disks,
            boot: boot.map(|mut b| {
                b.cmdline = kernel_cmdline(&b.cmdline, console_args);
                b
            }),
            install,
            nics: p.nics.clone(),
            ports: c.ports.clone(),
            graphics: c.graphics.clone(),
            nvram,
            rtc_localtime: p.os.family == OsFamily::Windows,
            autostart: c.autostart,
            snapshots: Vec::new(),
        };
        self.store.save(&state)?;
        Ok(state)
    }
}

/// What `make` created, undone if it fails half-way.
#[derive(Default)]
struct Made {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Made {
    fn undo(&self) {
        for f in self.files.iter().rev() {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// Exactly one install method, and the options that only make sense with one.
fn install_method(c: &VmConfig) -> Result<Install, VmError> {
    let given: Vec<&'static str> = [
        (c.cdrom.is_some(), "--cdrom"),
        (c.location.is_some(), "--location"),
        (c.import, "--import"),
        (c.kernel.is_some(), "--kernel"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    match given.as_slice() {
        [] => return Err(VmError::NoInstallMethod),
        [_] => {}
        [a, b, ..] => return Err(VmError::Conflict(a, b)),
    }
    if c.initrd.is_some() && c.kernel.is_none() {
        return Err(VmError::Needs("--initrd", "--kernel"));
    }
    if c.extra_args.is_some() && c.kernel.is_none() && c.location.is_none() {
        return Err(VmError::Needs("--extra-args", "--location or --kernel"));
    }
    if let Some(k) = &c.kernel {
        let kernel = existing_file("kernel", k)?;
        let initrd = c
            .initrd
            .as_deref()
            .map(|i| existing_file("initrd", i))
            .transpose()?;
        return Ok(Install::Kernel(DirectBoot {
            kernel,
            initrd,
            cmdline: c.extra_args.clone().unwrap_or_default(),
        }));
    }
    if let Some(l) = &c.location {
        let tree = existing("install tree", l)?;
        let iso = tree.is_file();
        return Ok(Install::Location { tree, iso });
    }
    if let Some(cd) = &c.cdrom {
        existing_file("cdrom", cd)?;
        return Ok(Install::Cdrom);
    }
    Ok(Install::Import)
}

/// The kernel command line, with `console=ttyS0` added for a VM whose only console is the
/// serial port (virt-install does the same for `--graphics none` installs).
fn kernel_cmdline(args: &str, serial_only: bool) -> String {
    let args = args.trim();
    if serial_only && !args.split_whitespace().any(|a| a.starts_with("console=")) {
        if args.is_empty() {
            "console=ttyS0".to_string()
        } else {
            format!("{args} console=ttyS0")
        }
    } else {
        args.to_string()
    }
}

fn plan_disk(
    d: &DiskConfig,
    preferred: DiskBus,
    warnings: &mut Vec<String>,
) -> Result<PlannedDisk, VmError> {
    let (image, format) = match &d.path {
        None => (
            Image::New {
                path: None,
                bytes: d.size.expect("DiskConfig::parse wants size or path"),
                preallocate: !d.sparse,
            },
            d.format.unwrap_or(ImageFormat::Qcow2),
        ),
        Some(path) if d.device == DiskDevice::Cdrom => (
            Image::Existing(existing_file("cdrom", path)?),
            ImageFormat::Raw,
        ),
        Some(path) if path.exists() => {
            let path = existing_file("disk image", path)?;
            if d.size.is_some() {
                warnings.push(format!(
                    "{} exists: it is used as it is and size= is ignored",
                    path.display()
                ));
            }
            let info = img::info(&path)?;
            if let Some(given) = d.format.filter(|f| *f != info.format) {
                return Err(VmError::FormatMismatch {
                    path,
                    actual: info.format.to_string(),
                    given: given.to_string(),
                });
            }
            (Image::Existing(path), info.format)
        }
        Some(path) => {
            let Some(bytes) = d.size else {
                return Err(VmError::Missing {
                    what: "disk image",
                    path: path.clone(),
                });
            };
            // A new image at a given path: its directory must exist.
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let parent = existing("directory", parent)?;
            let name = path.file_name().ok_or_else(|| VmError::Missing {
                what: "disk image",
                path: path.clone(),
            })?;
            (
                Image::New {
                    path: Some(parent.join(name)),
                    bytes,
                    preallocate: !d.sparse,
                },
                d.format.unwrap_or(ImageFormat::Qcow2),
            )
        }
    };
    Ok(PlannedDisk {
        image,
        format,
        bus: d.bus.unwrap_or(preferred),
        device: d.device,
        readonly: d.readonly,
        cache: d.cache,
        install_boot: false,
        install_only: false,
    })
}

fn plan_nics(c: &VmConfig, os: &OsVariant, state_root: &Path) -> Result<Vec<NicState>, VmError> {
    let model = if os.virtio {
        NicModel::Virtio
    } else {
        NicModel::E1000e
    };
    let configs = if c.networks.is_empty() && !c.no_network {
        vec![crate::config::NicConfig {
            kind: NicKind::User,
            model: None,
            mac: None,
        }]
    } else {
        c.networks.clone()
    };
    if c.no_network && !c.networks.is_empty() {
        return Err(VmError::Conflict("--network none", "--network"));
    }
    let mut nics = Vec::new();
    for n in configs {
        match &n.kind {
            NicKind::User => {}
            NicKind::Bridge { bridge } => {
                if !Path::new("/sys/class/net")
                    .join(bridge)
                    .join("bridge")
                    .is_dir()
                {
                    return Err(VmError::NoBridge(bridge.clone()));
                }
            }
            NicKind::Network { network } => taps::check_network(state_root, &c.name, network)?,
        }
        let mac = match n.mac {
            Some(m) => m,
            None => random::qemu_mac().map_err(|source| VmError::Access {
                what: "read random bytes for",
                path: "a MAC address".into(),
                source,
            })?,
        };
        nics.push(NicState {
            kind: n.kind,
            model: n.model.unwrap_or(model),
            mac,
        });
    }
    if !c.ports.is_empty() && !nics.iter().any(|n| n.kind == NicKind::User) {
        return Err(VmError::Needs("--port", "the default (user-mode) network"));
    }
    Ok(nics)
}

/// `path` made absolute (QEMU runs from /), which must exist and be readable.
fn existing(what: &'static str, path: &Path) -> Result<PathBuf, VmError> {
    let abs = fs::canonicalize(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => VmError::Missing {
            what,
            path: path.to_path_buf(),
        },
        _ => VmError::Access {
            what,
            path: path.to_path_buf(),
            source,
        },
    })?;
    if abs.is_file() {
        fs::File::open(&abs).map_err(|source| VmError::Access {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(abs)
}

fn existing_file(what: &'static str, path: &Path) -> Result<PathBuf, VmError> {
    let abs = existing(what, path)?;
    if !abs.is_file() {
        return Err(VmError::Access {
            what,
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    Ok(abs)
}

/// `vda`, `vdb`, ... `vdz`, `vdaa`, ... as Linux names them.
fn target_name(prefix: &str, index: usize) -> String {
    let letter = |i: usize| (b'a' + i as u8) as char;
    if index < 26 {
        format!("{prefix}{}", letter(index))
    } else {
        format!("{prefix}{}{}", letter(index / 26 - 1), letter(index % 26))
    }
}

/// `<dir>/<name>.qcow2`, or `<name>-1.qcow2`, ... if taken (by a disk kept after an
/// earlier `undefine`).
fn unused_image_name(dir: &Path, name: &str, format: ImageFormat) -> PathBuf {
    let ext = format.as_str();
    let first = dir.join(format!("{name}.{ext}"));
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| dir.join(format!("{name}-{n}.{ext}")))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g.fract() == 0.0 {
        format!("{g:.0}")
    } else {
        format!("{g:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target_name("vd", 0), "vda");
        assert_eq!(target_name("sd", 25), "sdz");
        assert_eq!(target_name("vd", 26), "vdaa");
    }

    #[test]
    fn serial_console_argument() {
        assert_eq!(kernel_cmdline("", true), "console=ttyS0");
        assert_eq!(kernel_cmdline("quiet", true), "quiet console=ttyS0");
        assert_eq!(kernel_cmdline("console=tty0", true), "console=tty0");
        assert_eq!(kernel_cmdline("quiet", false), "quiet");
    }

    #[test]
    fn install_methods() {
        let base = VmConfig {
            name: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            install_method(&base),
            Err(VmError::NoInstallMethod)
        ));
        let both = VmConfig {
            cdrom: Some("/x.iso".into()),
            import: true,
            ..base.clone()
        };
        assert_eq!(
            install_method(&both).unwrap_err().to_string(),
            "--cdrom and --import exclude each other"
        );
        let initrd = VmConfig {
            initrd: Some("/i".into()),
            import: true,
            ..base.clone()
        };
        assert_eq!(
            install_method(&initrd).unwrap_err().to_string(),
            "--initrd needs --kernel"
        );
        let missing = VmConfig {
            cdrom: Some("/nonexistent/berth.iso".into()),
            ..base
        };
        assert_eq!(
            install_method(&missing).unwrap_err().to_string(),
            "cdrom /nonexistent/berth.iso does not exist"
        );
    }
}
