//! IP address management: which addresses of a network's subnet are taken and by whom.
//!
//! The state lives inside each network's state file ([`crate::state::NetworkState`]) and is
//! only changed under the store lock, so concurrent processes never hand out the same
//! address. Allocation walks forward from the last address given out (wrapping around), as
//! Docker does, so a just-released address is not reused at once while peers may still
//! have it in their ARP caches.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::addr::Ipv4Net;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("no free address left in subnet {subnet}")]
    Exhausted { subnet: Ipv4Net },
    #[error("address {ip} is not in subnet {subnet}")]
    OutOfSubnet { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is reserved in subnet {subnet}")]
    Reserved { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is already in use by {owner}")]
    InUse { ip: Ipv4Addr, owner: String },
}

/// The allocations of one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamState {
    /// Allocated addresses and their owners (a container id, or `tap:NAME`).
    #[serde(default)]
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// The address handed out last: the next search starts after it.
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
}

impl IpamState {
    /// Allocates an address of `subnet` for `owner`: `want` if given (and free), else the
    /// next free one. The network, broadcast and `gateway` addresses are never given out.
    pub fn allocate(
        &mut self,
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
        owner: &str,
        want: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some(ip) = want {
            if !subnet.contains(ip) {
                return Err(IpamError::OutOfSubnet { ip, subnet });
            }
            if !subnet.is_host(ip) || ip == gateway {
                return Err(IpamError::Reserved { ip, subnet });
            }
            if let Some(o) = self.allocated.get(&ip) {
                return Err(IpamError::InUse {
                    ip,
                    owner: o.clone(),
                });
            }
            self.allocated.insert(ip, owner.to_string());
            return Ok(ip);
        }
        let first = u32::from(subnet.network()) + 1;
        let last = u32::from(subnet.broadcast()).saturating_sub(1);
        if last < first {
            return Err(IpamError::Exhausted { subnet });
        }
        let span = last - first + 1;
        let start = match self.last {
            Some(prev) if subnet.contains(prev) && u32::from(prev) >= first => {
                (u32::from(prev) - first + 1) % span
            }
            _ => 0,
        };
        for step in 0..span {
            let ip = Ipv4Addr::from(first + (start + step) % span);
            if ip != gateway && !self.allocated.contains_key(&ip) {
                self.allocated.insert(ip, owner.to_string());
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted { subnet })
    }

    /// Releases `ip`; `false` if it was not allocated.
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        self.allocated.remove(&ip).is_some()
    }

    /// Releases every address `owner` holds and returns them.
    pub fn release_owner(&mut self, owner: &str) -> Vec<Ipv4Addr> {
        let ips: Vec<_> = self
            .allocated
            .iter()
            .filter(|(_, o)| o.as_str() == owner)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in &ips {
            self.allocated.remove(ip);
        }
        ips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The "store" of these tests is the in-memory state itself: allocation is pure logic
    // over it; the file store and its lock are exercised by the manager's tests.

    fn subnet(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let net = subnet("10.78.9.0/29"); // hosts .1-.6
        let mut st = IpamState::default();
        let got: Vec<_> = (0..5)
            .map(|i| {
                st.allocate(net, ip("10.78.9.1"), &format!("c{i}"), None)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            got,
            [
                "10.78.9.2",
                "10.78.9.3",
                "10.78.9.4",
                "10.78.9.5",
                "10.78.9.6"
            ]
            .map(ip)
        );
        assert_eq!(
            st.allocate(net, ip("10.78.9.1"), "c5", None),
            Err(IpamError::Exhausted { subnet: net })
        );
    }

    #[test]
    fn does_not_reuse_a_released_address_at_once() {
        let net = subnet("10.78.9.0/24");
        let gw = ip("10.78.9.1");
        let mut st = IpamState::default();
        let a = st.allocate(net, gw, "a", None).unwrap();
        assert!(st.release(a));
        assert!(!st.release(a));
        let b = st.allocate(net, gw, "b", None).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wraps_around_to_free_addresses() {
        let net = subnet("10.78.9.0/29");
        let gw = ip("10.78.9.1");
        let mut st = IpamState::default();
        for i in 0..5 {
            st.allocate(net, gw, &format!("c{i}"), None).unwrap();
        }
        st.release(ip("10.78.9.3"));
        assert_eq!(st.allocate(net, gw, "x", None).unwrap(), ip("10.78.9.3"));
    }

    #[test]
    fn explicit_addresses_are_checked() {
        let net = subnet("10.78.9.0/24");
        let gw = ip("10.78.9.1");
        let mut st = IpamState::default();
        assert_eq!(
            st.allocate(net, gw, "a", Some(ip("10.78.9.50"))).unwrap(),
            ip("10.78.9.50")
        );
        let err = st
            .allocate(net, gw, "b", Some(ip("10.78.9.50")))
            .unwrap_err();
        assert_eq!(err.to_string(), "address 10.78.9.50 is already in use by a");
        assert!(matches!(
            st.allocate(net, gw, "b", Some(gw)),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            st.allocate(net, gw, "b", Some(ip("10.78.10.5"))),
            Err(IpamError::OutOfSubnet { .. })
        ));
    }

    #[test]
    fn release_owner_frees_everything_it_holds() {
        let net = subnet("10.78.9.0/24");
        let gw = ip("10.78.9.1");
        let mut st = IpamState::default();
        st.allocate(net, gw, "a", None).unwrap();
        st.allocate(net, gw, "b", None).unwrap();
        st.allocate(net, gw, "a", None).unwrap();
        assert_eq!(st.release_owner("a").len(), 2);
        assert_eq!(st.allocated.len(), 1);
    }
}
