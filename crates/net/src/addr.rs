//! IPv4 networks (`10.78.3.0/24`) and MAC addresses: the small address types the rest of the
//! crate and its callers share. Both serialize as their usual text form.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("invalid subnet {0:?}: expected a.b.c.d/len")]
    Syntax(String),
    #[error("invalid subnet {text:?}: prefix length {len} is over 32")]
    PrefixTooLong { text: String, len: u8 },
    #[error("invalid subnet {given}: host bits are set (did you mean {network}?)")]
    HostBits { given: String, network: Ipv4Net },
    #[error("invalid mac address {0:?}")]
    Mac(String),
}

/// An IPv4 network: a network address with no host bits set and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Net {
    /// The network `addr/prefix_len`; `addr` must have no host bits set.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, AddrError> {
        if prefix_len > 32 {
            return Err(AddrError::PrefixTooLong {
                text: format!("{addr}/{prefix_len}"),
                len: prefix_len,
            });
        }
        let net = Self::containing(addr, prefix_len);
        if net.network != addr {
            return Err(AddrError::HostBits {
                given: format!("{addr}/{prefix_len}"),
                network: net,
            });
        }
        Ok(net)
    }

    /// The network of length `prefix_len` (at most 32) that holds `addr`.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            prefix_len,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix_len))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// The first address after the network address (the usual gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).saturating_add(1))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether the two networks share any address (one holds the other's network address).
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// Whether `ip` may be given to a host: inside, and neither the network nor the
    /// broadcast address.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast()
    }
}

fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || AddrError::Syntax(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 2 {
            return Err(syntax());
        }
        let len: u8 = len.parse().map_err(|_| syntax())?;
        Self::new(addr, len)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The locally administered address Docker derives from a container's IPv4 address:
    /// `02:42` followed by the four address bytes. Unique as long as addresses are.
    pub fn from_ip(ip: Ipv4Addr) -> Self {
        let [a, b, c, d] = ip.octets();
        Self([0x02, 0x42, a, b, c, d])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(|| AddrError::Mac(s.to_string()))?;
            if part.len() != 2 {
                return Err(AddrError::Mac(s.to_string()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| AddrError::Mac(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(AddrError::Mac(s.to_string()));
        }
        Ok(Self(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_networks() {
        let n = net("10.78.3.0/24");
        assert_eq!(n.to_string(), "10.78.3.0/24");
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 78, 3, 255));
        assert_eq!(n.first_host(), Ipv4Addr::new(10, 78, 3, 1));
        assert_eq!(net("0.0.0.0/0").broadcast(), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn rejects_bad_networks() {
        assert!(matches!(
            "10.1.1.1/24".parse::<Ipv4Net>(),
            Err(AddrError::HostBits { .. })
        ));
        let msg = "10.1.1.1/24".parse::<Ipv4Net>().unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid subnet 10.1.1.1/24: host bits are set (did you mean 10.1.1.0/24?)"
        );
        for bad in [
            "10.1.1.0",
            "10.1.1.0/",
            "10.1.1.0/33",
            "10.1.1/24",
            "x/8",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_membership() {
        assert!(net("10.77.0.0/16").overlaps(&net("10.77.5.0/24")));
        assert!(net("10.77.5.0/24").overlaps(&net("10.77.0.0/16")));
        assert!(!net("10.77.0.0/16").overlaps(&net("10.78.0.0/24")));
        let n = net("10.78.0.0/24");
        assert!(n.is_host(Ipv4Addr::new(10, 78, 0, 1)));
        assert!(!n.is_host(Ipv4Addr::new(10, 78, 0, 0)));
        assert!(!n.is_host(Ipv4Addr::new(10, 78, 0, 255)));
        assert!(!n.is_host(Ipv4Addr::new(10, 78, 1, 1)));
    }

    #[test]
    fn mac_from_ip_follows_docker() {
        let mac = MacAddr::from_ip(Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(mac.to_string(), "02:42:0a:4d:00:02");
        assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
        assert!("02:42:0a:4d:00".parse::<MacAddr>().is_err());
    }
}
