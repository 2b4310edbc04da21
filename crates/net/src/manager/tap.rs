//! Tap devices for VMs: a persistent tap as a port of a network's bridge, with an address
//! reserved for the guest (the VM layer passes it to the guest, e.g. on the kernel command
//! line, since berth runs no DHCP server yet).

use std::net::Ipv4Addr;

use super::{bridge_of, find, valid_device_name, Net, NetError};
use crate::addr::MacAddr;
use crate::state::TapState;

/// A tap device attached to a network, and the guest address reserved with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapHandle {
    pub name: String,
    pub network_id: String,
    pub bridge: String,
    /// The address reserved for the guest behind the tap.
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The MAC to give the guest's NIC (derived from `ip`, as for containers).
    pub mac: MacAddr,
}

impl Net {
    /// Creates the persistent tap `name` (IFF_TAP | IFF_NO_PI) on `network`'s bridge.
    pub fn create_tap(&self, network: &str, name: &str) -> Result<TapHandle, NetError> {
        if !valid_device_name(name) {
            return Err(NetError::InvalidTapName(name.to_string()));
        }
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        if let Some(n) = nets.iter().find(|n| n.taps.contains_key(name)) {
            return Err(NetError::TapExists {
                tap: name.to_string(),
                network: n.name.clone(),
            });
        }
        let i = find(&nets, network)?;
        let bridge = bridge_of(&nets[i])?.clone();
        let owner = format!("tap:{name}");
        let net = &mut nets[i];
        let ip = net
            .ipam
            .allocate(bridge.subnet, bridge.gateway, &owner, None)
            .map_err(|source| NetError::Ipam {
                network: net.name.clone(),
                source,
            })?;
        let mac = MacAddr::from_ip(ip);
        net.taps.insert(
            name.to_string(),
            TapState {
                name: name.to_string(),
                ip,
                mac,
            },
        );
        self.store.save_network(net)?;
        let handle = TapHandle {
            name: name.to_string(),
            network_id: net.id.clone(),
            bridge: bridge.device.clone(),
            ip,
            prefix_len: bridge.subnet.prefix_len(),
            gateway: bridge.gateway,
            mac,
        };
        let made = self.realize_bridge(&nets[i], &nets).and_then(|()| {
            self.dataplane
                .attach_tap(name, &bridge.device)
                .map_err(|source| NetError::Dataplane {
                    what: format!("attach tap {name} to network {}", nets[i].name),
                    source,
                })
        });
        if let Err(e) = made {
            let net = &mut nets[i];
            net.taps.remove(name);
            net.ipam.release_owner(&owner);
            self.store.save_network(net)?;
            return Err(e);
        }
        Ok(handle)
    }

    /// Deletes tap `name` and releases its address. Fine if it is already gone.
    pub fn delete_tap(&self, name: &str) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        let tracked = nets.iter_mut().find(|n| n.taps.contains_key(name));
        if valid_device_name(name) {
            self.dataplane
                .delete_link(name)
                .map_err(|source| NetError::Dataplane {
                    what: format!("delete tap {name}"),
                    source,
                })?;
        }
        if let Some(net) = tracked {
            net.taps.remove(name);
            net.ipam.release_owner(&format!("tap:{name}"));
            self.store.save_network(net)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::super::NetworkConfig;
    use super::*;

    #[test]
    fn taps_hold_an_address_and_block_removal() {
        let (net, dp, _root) = fake::net("tap");
        net.create(NetworkConfig::new("vms")).unwrap();
        let t = net.create_tap("vms", "bvtap0").unwrap();
        assert!(net.get("vms").unwrap().ipam.allocated.contains_key(&t.ip));
        assert!(matches!(
            net.create_tap("bridge", "bvtap0"),
            Err(NetError::TapExists { .. })
        ));
        assert!(matches!(
            net.remove("vms"),
            Err(NetError::ActiveEndpoints(_))
        ));
        net.delete_tap("bvtap0").unwrap();
        net.delete_tap("bvtap0").unwrap();
        assert!(net.get("vms").unwrap().ipam.allocated.is_empty());
        assert!(dp
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("tap bvtap0 br-")));
        net.remove("vms").unwrap();
    }
}
