//! What the user asks for, parsed from virt-install's option syntax: `VmConfig` for
//! `berth vm create`, with `--disk`, `--network`, `--port`, `--graphics` and `--cloud-init`
//! values in their own files. Everything here is pure parsing and checking; `vm/create.rs`
//! turns a `VmConfig` into a persisted `VmState`.

mod cloudinit;
mod disk;
mod network;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

pub use cloudinit::CloudInitConfig;
pub use disk::{DiskBus, DiskConfig, DiskDevice};
pub use network::{NicConfig, NicKind, NicModel, PortForward};

use crate::qemu::args::Accel;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid name {0:?}: use 1 to 64 letters, digits, '_', '.', '-', starting with a letter or digit")]
    BadName(String),
    #[error("{flag} {value}: unknown option {key}")]
    UnknownOption {
        flag: &'static str,
        value: String,
        key: String,
    },
    #[error("{flag} {value}: {what}")]
    Invalid {
        flag: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("{flag} {value}: {key} must be {expected}")]
    BadValue {
        flag: &'static str,
        value: String,
        key: String,
        expected: &'static str,
    },
}

impl ConfigError {
    fn bad(flag: &'static str, value: &str, key: &str, expected: &'static str) -> Self {
        ConfigError::BadValue {
            flag,
            value: value.to_string(),
            key: key.to_string(),
            expected,
        }
    }

    fn invalid(flag: &'static str, value: &str, what: &'static str) -> Self {
        ConfigError::Invalid {
            flag,
            value: value.to_string(),
            what,
        }
    }
}

/// Firmware the guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    #[default]
    Bios,
    /// OVMF (EDK II), with a variable store per VM.
    Uefi,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        })
    }
}

/// `--boot uefi|bios`.
pub fn parse_boot(value: &str) -> Result<Firmware, ConfigError> {
    match value {
        "uefi" | "efi" | "firmware=efi" => Ok(Firmware::Uefi),
        "bios" | "firmware=bios" => Ok(Firmware::Bios),
        _ => Err(ConfigError::invalid(
            "--boot",
            value,
            "expected uefi or bios",
        )),
    }
}

/// `--accel kvm|tcg`.
pub fn parse_accel(value: &str) -> Result<Accel, ConfigError> {
    match value {
        "kvm" => Ok(Accel::Kvm),
        "tcg" | "qemu" => Ok(Accel::Tcg),
        _ => Err(ConfigError::invalid(
            "--accel",
            value,
            "expected kvm or tcg",
        )),
    }
}

/// The display the VM gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum GraphicsConfig {
    /// Serial console only.
    None,
    /// A VGA card shown over VNC; `display` is fixed or the first free one.
    Vnc {
        listen: IpAddr,
        display: Option<u16>,
    },
}

impl Default for GraphicsConfig {
    /// VNC on loopback, like virt-install's default graphics (it picks VNC or SPICE).
    fn default() -> Self {
        GraphicsConfig::Vnc {
            listen: IpAddr::from([127, 0, 0, 1]),
            display: None,
        }
    }
}

impl GraphicsConfig {
    /// `--graphics none` or `--graphics vnc[,port=5901][,listen=ADDR]`.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        const FLAG: &str = "--graphics";
        let opts = OptList::parse(value);
        let kind = opts.bare.as_deref().unwrap_or("vnc");
        match kind {
            "none" => {
                if let Some((k, _)) = opts.pairs.first() {
                    return Err(ConfigError::UnknownOption {
                        flag: FLAG,
                        value: value.into(),
                        key: k.clone(),
                    });
                }
                Ok(GraphicsConfig::None)
            }
            "vnc" => {
                let mut listen = IpAddr::from([127, 0, 0, 1]);
                let mut display = None;
                for (k, v) in &opts.pairs {
                    match k.as_str() {
                        "port" => {
                            let port: i32 = v.parse().map_err(|_| {
                                ConfigError::bad(FLAG, value, k, "a port from 5900 or -1")
                            })?;
                            display = match port {
                                -1 => None,
                                5900..=65535 => Some((port - 5900) as u16),
                                _ => {
                                    return Err(ConfigError::bad(
                                        FLAG,
                                        value,
                                        k,
                                        "a port from 5900 or -1",
                                    ))
                                }
                            };
                        }
                        "listen" => {
                            listen = v
                                .parse()
                                .map_err(|_| ConfigError::bad(FLAG, value, k, "an IP address"))?;
                        }
                        _ => {
                            return Err(ConfigError::UnknownOption {
                                flag: FLAG,
                                value: value.into(),
                                key: k.clone(),
                            })
                        }
                    }
                }
                Ok(GraphicsConfig::Vnc { listen, display })
            }
            _ => Err(ConfigError::invalid(FLAG, value, "expected none or vnc")),
        }
    }
}

/// Everything `berth vm create` was asked for. Optional fields take their defaults from
/// the OS variant (see `osinfo`) when the VM is defined.
#[derive(Debug, Clone, Default)]
pub struct VmConfig {
    pub name: String,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    pub disks: Vec<DiskConfig>,
    /// `--disk none`: no disk at all, not even the default one.
    pub no_disk: bool,
    pub cdrom: Option<PathBuf>,
    pub location: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub extra_args: Option<String>,
    pub import: bool,
    pub os_variant: Option<String>,
    pub networks: Vec<NicConfig>,
    /// `--network none`: no NIC at all.
    pub no_network: bool,
    pub ports: Vec<PortForward>,
    pub graphics: GraphicsConfig,
    pub cloud_init: Option<CloudInitConfig>,
    pub firmware: Option<Firmware>,
    pub accel: Option<Accel>,
    pub autostart: bool,
}

/// VM names are used in paths, socket names and QEMU's `-name`: keep them plain.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadName(name.to_string()))
    }
}

/// `--memory 2048` or `--memory memory=2048` (MiB).
pub fn parse_memory(value: &str) -> Result<u64, ConfigError> {
    let v = value.strip_prefix("memory=").unwrap_or(value);
    let mib: u64 = v
        .parse()
        .map_err(|_| ConfigError::invalid("--memory", value, "expected a whole number of MiB"))?;
    if mib == 0 {
        return Err(ConfigError::invalid(
            "--memory",
            value,
            "memory must be at least 1 MiB",
        ));
    }
    Ok(mib)
}

/// `--vcpus 2` or `--vcpus vcpus=2`.
pub fn parse_vcpus(value: &str) -> Result<u32, ConfigError> {
    let v = value.strip_prefix("vcpus=").unwrap_or(value);
    let n: u32 = v
        .parse()
        .map_err(|_| ConfigError::invalid("--vcpus", value, "expected a whole number"))?;
    if n == 0 {
        return Err(ConfigError::invalid(
            "--vcpus",
            value,
            "a VM needs at least 1 vCPU",
        ));
    }
    if n > 255 {
        return Err(ConfigError::invalid(
            "--vcpus",
            value,
            "at most 255 vCPUs are supported",
        ));
    }
    Ok(n)
}

/// A size in GiB as virt-install takes it (`20`, `0.5`), or with a unit: `512M`, `20G`,
/// `1T`, `4096K`. Returns bytes, a multiple of 512 (the sector size images use).
pub fn parse_size(value: &str) -> Option<u64> {
    let v = value.trim();
    let (num, mult) = match v.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = &v[i..];
            let mult: f64 = match unit.to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1024.0,
                "M" | "MB" | "MIB" => 1024.0 * 1024.0,
                "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
                "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
                _ => return None,
            };
            (&v[..i], mult)
        }
        None => (v, 1024.0 * 1024.0 * 1024.0),
    };
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let bytes = (n * mult).ceil();
    if bytes > (1u64 << 50) as f64 {
        return None;
    }
    let bytes = bytes as u64;
    Some(bytes.div_ceil(512) * 512)
}

/// A virt-install style option list: `a=1,b=2`, where the first item may be a bare value
/// (`--disk /path,size=2`, `--graphics vnc,port=5901`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct OptList {
    pub bare: Option<String>,
    pub pairs: Vec<(String, String)>,
}

impl OptList {
    pub fn parse(value: &str) -> Self {
        let mut out = OptList::default();
        for (i, item) in value.split(',').enumerate() {
            match item.split_once('=') {
                Some((k, v)) => out.pairs.push((k.trim().to_string(), v.to_string())),
                None if i == 0 => out.bare = Some(item.to_string()),
                None => out.pairs.push((item.trim().to_string(), String::new())),
            }
        }
        out
    }
}

/// `on/yes/true/1` or `off/no/false/0`.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Some(true),
        "off" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_gib_or_with_units() {
        assert_eq!(parse_size("20"), Some(20 << 30));
        assert_eq!(parse_size("0.5"), Some(512 << 20));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("1000"), Some(1000 << 30));
        assert_eq!(parse_size("1K"), Some(1024));
        assert_eq!(parse_size("1.5K"), Some(1536));
        for bad in ["", "abc", "20x", "-1", "0", "NaN", "inf", "1e30"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        for ok in ["myvm", "a", "web-1.example", "A_b"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_and_vcpus() {
        assert_eq!(parse_memory("2048"), Ok(2048));
        assert_eq!(parse_memory("memory=512"), Ok(512));
        assert_eq!(
            parse_memory("0").unwrap_err().to_string(),
            "--memory 0: memory must be at least 1 MiB"
        );
        assert!(parse_memory("2G").is_err());
        assert_eq!(parse_vcpus("2"), Ok(2));
        assert_eq!(
            parse_vcpus("0").unwrap_err().to_string(),
            "--vcpus 0: a VM needs at least 1 vCPU"
        );
    }

    #[test]
    fn graphics() {
        assert_eq!(GraphicsConfig::parse("none"), Ok(GraphicsConfig::None));
        assert_eq!(
            GraphicsConfig::parse("vnc,port=5901"),
            Ok(GraphicsConfig::Vnc {
                listen: "127.0.0.1".parse().unwrap(),
                display: Some(1)
            })
        );
        assert_eq!(
            GraphicsConfig::parse("vnc,listen=0.0.0.0"),
            Ok(GraphicsConfig::Vnc {
                listen: "0.0.0.0".parse().unwrap(),
                display: None
            })
        );
        assert!(GraphicsConfig::parse("spice").is_err());
        assert!(GraphicsConfig::parse("vnc,port=80").is_err());
        assert!(GraphicsConfig::parse("none,port=1").is_err());
    }

    #[test]
    fn opt_lists() {
        assert_eq!(
            OptList::parse("/a/b.img,size=2,sparse"),
            OptList {
                bare: Some("/a/b.img".into()),
                pairs: vec![("size".into(), "2".into()), ("sparse".into(), "".into())]
            }
        );
    }

    #[test]
    fn boot_and_accel() {
        assert_eq!(parse_boot("uefi"), Ok(Firmware::Uefi));
        assert_eq!(parse_boot("bios"), Ok(Firmware::Bios));
        assert!(parse_boot("cdrom").is_err());
        assert_eq!(parse_accel("kvm"), Ok(Accel::Kvm));
        assert!(parse_accel("hvf").is_err());
    }
}
