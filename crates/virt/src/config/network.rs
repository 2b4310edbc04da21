//! `--network` and `--port`. `default` (also `user`, `network=default`) is QEMU's user-mode
//! networking: NAT and DHCP inside QEMU, and host ports forwarded with `--port`.
//! `bridge=DEV` puts a tap on an existing Linux bridge; `network=NAME` on a berth network's
//! bridge; `none` gives no NIC at all.

use std::net::IpAddr;

use super::{ConfigError, OptList};

/// How the NIC reaches the world.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum NicKind {
    /// QEMU user-mode networking (slirp).
    User,
    /// A tap device on the host bridge `bridge`.
    Bridge { bridge: String },
    /// A tap device on berth network `network` (see berth_net).
    Network { network: String },
}

/// The emulated network card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    Virtio,
    E1000e,
}

/// One `--network` value; `Ok(None)` from [`NicConfig::parse`] means `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConfig {
    pub kind: NicKind,
    /// `None`: the OS variant's preferred model.
    pub model: Option<NicModel>,
    pub mac: Option<String>,
}

const FLAG: &str = "--network";

impl NicConfig {
    pub fn parse(value: &str) -> Result<Option<Self>, ConfigError> {
        let opts = OptList::parse(value);
        let mut kind = match opts.bare.as_deref() {
            None => None,
            Some("none") => return Ok(None),
            Some("default" | "user") => Some(NicKind::User),
            Some(_) => {
                return Err(ConfigError::invalid(
                    FLAG,
                    value,
                    "expected default, none, bridge=NAME or network=NAME",
                ))
            }
        };
        let mut model = None;
        let mut mac = None;
        for (k, v) in &opts.pairs {
            let bad = |expected| ConfigError::bad(FLAG, value, k, expected);
            match k.as_str() {
                "bridge" if !v.is_empty() => {
                    if !valid_device(v) {
                        return Err(bad("a bridge device name (1 to 15 characters)"));
                    }
                    kind = Some(NicKind::Bridge { bridge: v.clone() })
                }
                "network" if v == "default" => kind = Some(NicKind::User),
                "network" if !v.is_empty() => kind = Some(NicKind::Network { network: v.clone() }),
                "model" | "model.type" => {
                    model = Some(match v.as_str() {
                        "virtio" => NicModel::Virtio,
                        "e1000e" => NicModel::E1000e,
                        _ => return Err(bad("virtio or e1000e")),
                    })
                }
                "mac" | "mac.address" => {
                    if !valid_mac(v) {
                        return Err(bad("a unicast MAC address like 52:54:00:12:34:56"));
                    }
                    mac = Some(v.to_ascii_lowercase())
                }
                "bridge" | "network" => return Err(bad("a name")),
                _ => {
                    return Err(ConfigError::UnknownOption {
                        flag: FLAG,
                        value: value.to_string(),
                        key: k.clone(),
                    })
                }
            }
        }
        Ok(Some(NicConfig {
            kind: kind.unwrap_or(NicKind::User),
            model,
            mac,
        }))
    }
}

fn valid_device(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// `--port [IP:]HOST:GUEST[/tcp|/udp]`: a host port forwarded to the guest, as `-p` does
/// for containers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortForward {
    pub host_addr: Option<IpAddr>,
    pub host_port: u16,
    pub guest_port: u16,
    pub udp: bool,
}

impl PortForward {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let invalid = || {
            ConfigError::invalid(
                "--port",
                value,
                "expected [IP:]HOST:GUEST[/tcp|udp] with ports from 1 to 65535",
            )
        };
        let (spec, udp) = match value.rsplit_once('/') {
            Some((s, "tcp")) => (s, false),
            Some((s, "udp")) => (s, true),
            Some(_) => return Err(invalid()),
            None => (value, false),
        };
        let (addr, host, guest) = match spec.rsplitn(3, ':').collect::<Vec<_>>()[..] {
            [guest, host] => (None, host, guest),
            [guest, host, addr] => {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                (Some(addr.parse().map_err(|_| invalid())?), host, guest)
            }
            _ => return Err(invalid()),
        };
        let port = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(invalid)
        };
        Ok(PortForward {
            host_addr: addr,
            host_port: port(host)?,
            guest_port: port(guest)?,
            udp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_forms() {
        let user = NicConfig {
            kind: NicKind::User,
            model: None,
            mac: None,
        };
        assert_eq!(NicConfig::parse("default").unwrap(), Some(user.clone()));
        assert_eq!(NicConfig::parse("network=default").unwrap(), Some(user));
        assert_eq!(NicConfig::parse("none").unwrap(), None);
        assert_eq!(
            NicConfig::parse("bridge=br0,model=e1000e,mac=52:54:00:AA:bb:01")
                .unwrap()
                .unwrap(),
            NicConfig {
                kind: NicKind::Bridge {
                    bridge: "br0".into()
                },
                model: Some(NicModel::E1000e),
                mac: Some("52:54:00:aa:bb:01".into()),
            }
        );
        assert_eq!(
            NicConfig::parse("network=app").unwrap().unwrap().kind,
            NicKind::Network {
                network: "app".into()
            }
        );
        assert!(NicConfig::parse("bogus").is_err());
        assert!(NicConfig::parse("bridge=").is_err());
        assert!(NicConfig::parse("bridge=a-very-long-bridge-name").is_err());
        assert!(NicConfig::parse("default,mac=01:00:00:00:00:00").is_err());
        assert!(NicConfig::parse("default,model=rtl8139").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(
            PortForward::parse("8080:80").unwrap(),
            PortForward {
                host_addr: None,
                host_port: 8080,
                guest_port: 80,
                udp: false
            }
        );
        assert_eq!(
            PortForward::parse("127.0.0.1:5353:53/udp").unwrap(),
            PortForward {
                host_addr: Some("127.0.0.1".parse().unwrap()),
                host_port: 5353,
                guest_port: 53,
                udp: true
            }
        );
        for bad in ["80", "0:80", "8080:70000", "a:b", "1:2/sctp", "x:1:2"] {
            assert!(PortForward::parse(bad).is_err(), "{bad}");
        }
    }
}
