//! Published ports: Docker's `-p` syntax, the record of which host ports berth containers
//! hold (`ports.json`), and the conflict rules between them.
//!
//! `-p` forms accepted ([docs](https://docs.docker.com/engine/network/#published-ports)):
//! `CTR`, `HOST:CTR`, `IP:HOST:CTR`, `IP::CTR`, each optionally followed by `/tcp` or
//! `/udp`, with ranges of equal length on both sides (`8000-8010:80-90`). A host port of
//! 0 (or none given) means "pick a free ephemeral port" when published.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port spec {spec:?}: {reason}")]
pub struct PortSpecError {
    pub spec: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port: host `host_ip:host_port` forwards to the container's
/// `container_port`. `host_ip` `None` means every host address (Docker's `0.0.0.0`);
/// `host_port` 0 means "pick one" when published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortMapping {
    /// Whether the two mappings claim the same host port: same protocol and port, and
    /// the same address or either of them on every address.
    pub fn conflicts_with(&self, other: &PortMapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

impl fmt::Display for PortMapping {
    /// As `docker port` prints it: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.proto
        )
    }
}

/// A port an image exposes (`EXPOSE 80/tcp`), the input of `-P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExposedPort {
    pub port: u16,
    pub proto: Proto,
}

impl FromStr for ExposedPort {
    type Err = PortSpecError;

    /// `80`, `80/tcp`, `53/udp` (the keys of an image config's `ExposedPorts`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| PortSpecError {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        let (port, proto) = split_proto(s).map_err(|r| err(&r))?;
        let port = parse_port(port).map_err(|r| err(&r))?;
        if port == 0 {
            return Err(err("port 0 cannot be exposed"));
        }
        Ok(Self { port, proto })
    }
}

/// Parses one `-p` argument into the mappings it stands for (several for a range).
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortMapping>, PortSpecError> {
    let err = |reason: String| PortSpecError {
        spec: spec.to_string(),
        reason,
    };
    if spec.starts_with('[') {
        return Err(err("ipv6 host addresses are not supported".into()));
    }
    let (rest, proto) = split_proto(spec).map_err(err)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [ctr] => (None, "", *ctr),
        [host, ctr] => (None, *host, *ctr),
        [ip, host, ctr] => (Some(*ip), *host, *ctr),
        _ => return Err(err("too many colons".into())),
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| err(format!("invalid host address {ip:?}")))?;
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    if ctr.is_empty() {
        return Err(err("no container port".into()));
    }
    let (ctr_lo, ctr_hi) = parse_range(ctr).map_err(err)?;
    if ctr_lo == 0 {
        return Err(err("container port 0 is not valid".into()));
    }
    let count = ctr_hi - ctr_lo + 1;
    let host_ports: Vec<u16> = if host.is_empty() {
        vec![0; usize::from(count)]
    } else {
        let (lo, hi) = parse_range(host).map_err(err)?;
        if hi - lo + 1 != count {
            return Err(err(format!(
                "host range {host} and container range {ctr} differ in length"
            )));
        }
        if lo == 0 && count > 1 {
            return Err(err("host port 0 cannot start a range".into()));
        }
        (lo..=hi).collect()
    };
    Ok(host_ports
        .into_iter()
        .zip(ctr_lo..=ctr_hi)
        .map(|(host_port, container_port)| PortMapping {
            host_ip,
            host_port,
            container_port,
            proto,
        })
        .collect())
}

fn split_proto(s: &str) -> Result<(&str, Proto), String> {
    match s.rsplit_once('/') {
        None => Ok((s, Proto::Tcp)),
        Some((rest, "tcp")) => Ok((rest, Proto::Tcp)),
        Some((rest, "udp")) => Ok((rest, Proto::Udp)),
        Some((_, "sctp")) => Err("sctp is not supported".into()),
        Some((_, p)) => Err(format!("unknown protocol {p:?} (expected tcp or udp)")),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {s:?}"));
    }
    s.parse::<u16>()
        .map_err(|_| format!("port {s} is out of range (1-65535)"))
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)),
        Some((lo, hi)) => {
            let (lo, hi) = (parse_port(lo)?, parse_port(hi)?);
            if hi < lo {
                return Err(format!("invalid range {s}: end before start"));
            }
            Ok((lo, hi))
        }
    }
}

/// One host port a berth container holds, as recorded in `ports.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_id: String,
    pub container_name: String,
    pub network_id: String,
    /// Where the traffic goes: the container's address on that network.
    pub container_ip: Ipv4Addr,
    /// The mapping with its host port resolved (never 0).
    pub mapping: PortMapping,
}

/// The contents of `ports.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsState {
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

impl PortsState {
    /// The recorded port that `m` would clash with, if any.
    pub fn holder_of(&self, m: &PortMapping) -> Option<&PublishedPort> {
        self.ports.iter().find(|p| p.mapping.conflicts_with(m))
    }

    /// Removes the ports `pred` selects and returns them.
    pub fn take(&mut self, mut pred: impl FnMut(&PublishedPort) -> bool) -> Vec<PublishedPort> {
        let (taken, kept) = std::mem::take(&mut self.ports)
            .into_iter()
            .partition(|p| pred(p));
        self.ports = kept;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let v = parse_port_spec(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v[0]
    }

    fn m(ip: Option<[u8; 4]>, host: u16, ctr: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip.map(Ipv4Addr::from),
            host_port: host,
            container_port: ctr,
            proto,
        }
    }

    #[test]
    fn parses_docker_forms() {
        assert_eq!(one("80"), m(None, 0, 80, Proto::Tcp));
        assert_eq!(one("8080:80"), m(None, 8080, 80, Proto::Tcp));
        assert_eq!(one("8080:80/udp"), m(None, 8080, 80, Proto::Udp));
        assert_eq!(
            one("127.0.0.1:8080:80"),
            m(Some([127, 0, 0, 1]), 8080, 80, Proto::Tcp)
        );
        assert_eq!(
            one("127.0.0.1::80"),
            m(Some([127, 0, 0, 1]), 0, 80, Proto::Tcp)
        );
        assert_eq!(one("0.0.0.0:53:53/udp"), m(None, 53, 53, Proto::Udp));
        assert_eq!(one(":8080:80/tcp"), m(None, 8080, 80, Proto::Tcp));
    }

    #[test]
    fn parses_ranges() {
        let v = parse_port_spec("8000-8002:80-82").unwrap();
        assert_eq!(
            v,
            vec![
                m(None, 8000, 80, Proto::Tcp),
                m(None, 8001, 81, Proto::Tcp),
                m(None, 8002, 82, Proto::Tcp)
            ]
        );
        let v = parse_port_spec("80-81/udp").unwrap();
        assert_eq!(
            v,
            vec![m(None, 0, 80, Proto::Udp), m(None, 0, 81, Proto::Udp)]
        );
    }

    #[test]
    fn rejects_bad_specs_with_clear_errors() {
        let cases = [
            ("", "no container port"),
            ("8080:", "no container port"),
            ("abc", "invalid port \"abc\""),
            ("70000:80", "port 70000 is out of range (1-65535)"),
            ("8080:80/sctp", "sctp is not supported"),
            (
                "8080:80/icmp",
                "unknown protocol \"icmp\" (expected tcp or udp)",
            ),
            ("1.2.3:8080:80", "invalid host address \"1.2.3\""),
            ("a:b:c:d", "too many colons"),
            (
                "8000-8010:80-85",
                "host range 8000-8010 and container range 80-85 differ in length",
            ),
            ("90-80", "invalid range 90-80: end before start"),
            ("8080:0", "container port 0 is not valid"),
            ("[::1]:80:80", "ipv6 host addresses are not supported"),
        ];
        for (spec, reason) in cases {
            let e = parse_port_spec(spec).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid port spec {spec:?}: {reason}")
            );
        }
    }

    #[test]
    fn conflicts_follow_address_wildcards() {
        let any = m(None, 8080, 80, Proto::Tcp);
        let lo = m(Some([127, 0, 0, 1]), 8080, 81, Proto::Tcp);
        let other = m(Some([192, 0, 2, 2]), 8080, 81, Proto::Tcp);
        assert!(any.conflicts_with(&lo));
        assert!(lo.conflicts_with(&any));
        assert!(!lo.conflicts_with(&other));
        assert!(!any.conflicts_with(&m(None, 8080, 80, Proto::Udp)));
        assert_eq!(any.to_string(), "0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn parses_exposed_ports() {
        assert_eq!(
            "80".parse::<ExposedPort>().unwrap(),
            ExposedPort {
                port: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!("53/udp".parse::<ExposedPort>().unwrap().proto, Proto::Udp);
        assert!("0/tcp".parse::<ExposedPort>().is_err());
    }
}
