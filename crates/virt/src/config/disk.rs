//! `--disk`: `size=GiB` (a new image in the VM's directory), `path=FILE` (an existing
//! image, or a new one when `size=` is given too), with `format=`, `bus=`, `device=`,
//! `readonly=`, `sparse=` and `cache=` as virt-install spells them; `none` for no disk.

use std::path::PathBuf;

use super::{parse_bool, parse_size, ConfigError, OptList};
use crate::qemu::args::{CacheMode, ImageFormat};

const FLAG: &str = "--disk";

/// Where a disk is attached in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBus {
    /// virtio-blk: `/dev/vdX` in the guest.
    Virtio,
    /// The q35 AHCI controller: `/dev/sdX` (disks) and `/dev/srN` (CD-ROMs).
    Sata,
}

impl std::fmt::Display for DiskBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
        })
    }
}

/// A hard disk or a CD-ROM drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDevice {
    #[default]
    Disk,
    Cdrom,
}

/// One `--disk` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The image file; `None`: a new image named after the VM in its directory.
    pub path: Option<PathBuf>,
    /// Size of a new image in bytes.
    pub size: Option<u64>,
    pub format: Option<ImageFormat>,
    /// `None`: the OS variant's preferred bus.
    pub bus: Option<DiskBus>,
    pub device: DiskDevice,
    pub readonly: bool,
    /// A new raw image is sparse unless `sparse=no` (qcow2 is always allocated lazily).
    pub sparse: bool,
    pub cache: Option<CacheMode>,
}

impl DiskConfig {
    /// Parses one `--disk` value; `Ok(None)` for `--disk none`.
    pub fn parse(value: &str) -> Result<Option<Self>, ConfigError> {
        if value == "none" {
            return Ok(None);
        }
        let opts = OptList::parse(value);
        let mut d = DiskConfig {
            path: opts
                .bare
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            size: None,
            format: None,
            bus: None,
            device: DiskDevice::Disk,
            readonly: false,
            sparse: true,
            cache: None,
        };
        for (k, v) in &opts.pairs {
            let bad = |expected| ConfigError::bad(FLAG, value, k, expected);
            match k.as_str() {
                "path" => d.path = Some(PathBuf::from(v)),
                "size" => d.size = Some(parse_size(v).ok_or_else(|| bad("a number of GiB"))?),
                "format" => {
                    d.format = Some(match v.as_str() {
                        "qcow2" => ImageFormat::Qcow2,
                        "raw" => ImageFormat::Raw,
                        _ => return Err(bad("qcow2 or raw")),
                    })
                }
                "bus" => {
                    d.bus = Some(match v.as_str() {
                        "virtio" => DiskBus::Virtio,
                        "sata" => DiskBus::Sata,
                        _ => return Err(bad("virtio or sata")),
                    })
                }
                "device" => {
                    d.device = match v.as_str() {
                        "disk" => DiskDevice::Disk,
                        "cdrom" => DiskDevice::Cdrom,
                        _ => return Err(bad("disk or cdrom")),
                    }
                }
                "readonly" | "ro" => d.readonly = parse_bool(v).ok_or_else(|| bad("on or off"))?,
                "sparse" => d.sparse = parse_bool(v).ok_or_else(|| bad("yes or no"))?,
                "cache" => {
                    d.cache = Some(match v.as_str() {
                        "none" => CacheMode::None,
                        "writeback" => CacheMode::Writeback,
                        "writethrough" => CacheMode::Writethrough,
                        "directsync" => CacheMode::Directsync,
                        "unsafe" => CacheMode::Unsafe,
                        _ => {
                            return Err(bad("none, writeback, writethrough, directsync or unsafe"))
                        }
                    })
                }
                _ => {
                    return Err(ConfigError::UnknownOption {
                        flag: FLAG,
                        value: value.to_string(),
                        key: k.clone(),
                    })
                }
            }
        }
        if d.path.is_none() && d.size.is_none() {
            return Err(ConfigError::invalid(
                FLAG,
                value,
                "give size=GiB for a new disk or path=FILE for an existing one",
            ));
        }
        if d.device == DiskDevice::Cdrom {
            if d.path.is_none() {
                return Err(ConfigError::invalid(FLAG, value, "a cdrom needs path=ISO"));
            }
            d.readonly = true;
            if d.bus == Some(DiskBus::Virtio) {
                return Err(ConfigError::invalid(
                    FLAG,
                    value,
                    "a cdrom goes on the sata bus",
                ));
            }
            d.bus = Some(DiskBus::Sata);
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(v: &str) -> DiskConfig {
        DiskConfig::parse(v).unwrap().unwrap()
    }

    #[test]
    fn size_only_is_a_new_disk() {
        let d = disk("size=20");
        assert_eq!(d.size, Some(20 << 30));
        assert_eq!(d.path, None);
        assert_eq!(d.format, None);
        assert!(d.sparse);
    }

    #[test]
    fn path_format_and_bus() {
        let d = disk("path=/var/img/a.qcow2,format=qcow2,bus=sata");
        assert_eq!(d.path.as_deref(), Some("/var/img/a.qcow2".as_ref()));
        assert_eq!(d.format, Some(ImageFormat::Qcow2));
        assert_eq!(d.bus, Some(DiskBus::Sata));
        let d = disk("/img/b.raw,format=raw,size=1.5,sparse=no,cache=none");
        assert_eq!(d.path.as_deref(), Some("/img/b.raw".as_ref()));
        assert_eq!(d.format, Some(ImageFormat::Raw));
        assert_eq!(d.size, Some(1536 << 20));
        assert!(!d.sparse);
        assert_eq!(d.cache, Some(CacheMode::None));
    }

    #[test]
    fn cdrom_is_read_only_sata() {
        let d = disk("path=/isos/a.iso,device=cdrom");
        assert_eq!(d.device, DiskDevice::Cdrom);
        assert!(d.readonly);
        assert_eq!(d.bus, Some(DiskBus::Sata));
    }

    #[test]
    fn none_means_no_disk() {
        assert_eq!(DiskConfig::parse("none").unwrap(), None);
    }

    #[test]
    fn bad_values_are_named() {
        let e = |v: &str| DiskConfig::parse(v).unwrap_err().to_string();
        assert_eq!(
            e("size=abc"),
            "--disk size=abc: size must be a number of GiB"
        );
        assert_eq!(e("size=0"), "--disk size=0: size must be a number of GiB");
        assert_eq!(
            e("path=/x,format=vmdk"),
            "--disk path=/x,format=vmdk: format must be qcow2 or raw"
        );
        assert_eq!(
            e("size=2,bus=ide"),
            "--disk size=2,bus=ide: bus must be virtio or sata"
        );
        assert_eq!(e("size=2,foo=1"), "--disk size=2,foo=1: unknown option foo");
        assert_eq!(
            e("format=qcow2"),
            "--disk format=qcow2: give size=GiB for a new disk or path=FILE for an existing one"
        );
    }
}
