//! Networks: create, list, get, remove, prune, and the pre-defined `bridge`, `host` and
//! `none`. User-defined networks are bridges named `br-<12 hex of id>` with a /24 from the
//! pool unless a subnet is given.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{bridge_of, find, valid_device_name, Net, NetError, PORTS_FILE};
use crate::addr::Ipv4Net;
use crate::ipam::IpamState;
use crate::ports::PortsState;
use crate::state::{self, BridgeState, Driver, NetworkState};

/// What `network create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    pub name: String,
    /// A /24 of the pool if `None`.
    pub subnet: Option<Ipv4Net>,
    /// The first address of the subnet if `None`.
    pub gateway: Option<Ipv4Addr>,
    /// No masquerade, no routing to or from other networks and the outside.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge device (Docker's `com.docker.network.bridge.name` option);
    /// `br-<12 hex of id>` if `None`.
    pub bridge: Option<String>,
}

impl NetworkConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

impl Net {
    /// Creates the state of `bridge`, `host` and `none` if missing.
    pub(super) fn ensure_predefined(&self) -> Result<(), NetError> {
        let nets = self.store.networks()?;
        if PREDEFINED
            .iter()
            .all(|name| nets.iter().any(|n| n.name == *name))
        {
            return Ok(());
        }
        let _lock = self.store.lock()?;
        let nets = self.store.networks()?;
        for name in PREDEFINED {
            if nets.iter().any(|n| n.name == name) {
                continue;
            }
            let (driver, bridge) = match name {
                "bridge" => (
                    Driver::Bridge,
                    Some(BridgeState {
                        device: self.config.default_bridge.clone(),
                        subnet: self.config.default_subnet,
                        gateway: self.config.default_subnet.first_host(),
                        default: true,
                    }),
                ),
                "host" => (Driver::Host, None),
                _ => (Driver::Null, None),
            };
            self.store.save_network(&NetworkState {
                id: state::random_id(),
                name: name.to_string(),
                driver,
                created: state::now_rfc3339(),
                internal: false,
                labels: BTreeMap::new(),
                bridge,
                endpoints: BTreeMap::new(),
                taps: BTreeMap::new(),
                ipam: IpamState::default(),
            })?;
        }
        Ok(())
    }

    /// Creates a user-defined bridge network and its bridge device.
    pub fn create(&self, config: NetworkConfig) -> Result<NetworkState, NetError> {
        if !valid_network_name(&config.name) {
            return Err(NetError::InvalidName(config.name));
        }
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        if nets.iter().any(|n| n.name == config.name) {
            return Err(NetError::NameConflict(config.name));
        }
        let id = state::random_id();
        let device = config
            .bridge
            .clone()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if !valid_device_name(&device) {
            return Err(NetError::InvalidDevice(device));
        }
        if let Some(other) = nets
            .iter()
            .find(|n| n.bridge.as_ref().is_some_and(|b| b.device == device))
        {
            return Err(NetError::DeviceConflict {
                device,
                network: other.name.clone(),
            });
        }
        let subnet = match config.subnet {
            Some(s) => {
                if s.prefix_len() > 30 {
                    return Err(NetError::SubnetTooSmall(s));
                }
                check_overlap(&nets, s)?;
                s
            }
            None if config.gateway.is_some() => return Err(NetError::GatewayWithoutSubnet),
            None => self.pick_subnet(&nets)?,
        };
        let gateway = config.gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.is_host(gateway) {
            return Err(NetError::GatewayOutside { gateway, subnet });
        }
        let net = NetworkState {
            id,
            name: config.name,
            driver: Driver::Bridge,
            created: state::now_rfc3339(),
            internal: config.internal,
            labels: config.labels,
            bridge: Some(BridgeState {
                device: device.clone(),
                subnet,
                gateway,
                default: false,
            }),
            endpoints: BTreeMap::new(),
            taps: BTreeMap::new(),
            ipam: IpamState::default(),
        };
        self.store.save_network(&net)?;
        nets.push(net.clone());
        let ports: PortsState = self.store.read(PORTS_FILE)?;
        let made = self
            .ensure_bridge(&net)
            .and_then(|_| self.apply_table(&nets, &ports));
        if let Err(e) = made {
            let _ = self.dataplane.delete_link(&device);
            self.store.delete_network(&net.id)?;
            return Err(e);
        }
        Ok(net)
    }

    /// All networks, pre-defined ones included, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkState>, NetError> {
        Ok(self.store.networks()?)
    }

    /// The network with this name, id, or unique id prefix.
    pub fn get(&self, key: &str) -> Result<NetworkState, NetError> {
        let mut nets = self.store.networks()?;
        let i = find(&nets, key)?;
        Ok(nets.swap_remove(i))
    }

    /// Removes a user-defined network and its bridge. Refuses while anything is attached.
    pub fn remove(&self, key: &str) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        let nets = self.store.networks()?;
        let i = find(&nets, key)?;
        self.remove_locked(nets, i)
    }

    /// Removes every user-defined network nothing is attached to; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, NetError> {
        let _lock = self.store.lock()?;
        let mut removed = Vec::new();
        loop {
            let nets = self.store.networks()?;
            let Some(i) = nets
                .iter()
                .position(|n| n.is_user_defined() && !n.has_endpoints())
            else {
                break;
            };
            removed.push(nets[i].name.clone());
            self.remove_locked(nets, i)?;
        }
        Ok(removed)
    }

    fn remove_locked(&self, mut nets: Vec<NetworkState>, i: usize) -> Result<(), NetError> {
        let net = &nets[i];
        if net.is_predefined() {
            return Err(NetError::Predefined(net.name.clone()));
        }
        if net.has_endpoints() {
            return Err(NetError::ActiveEndpoints(net.name.clone()));
        }
        let device = bridge_of(net)?.device.clone();
        let net = nets.remove(i);
        self.store.delete_network(&net.id)?;
        let ports: PortsState = self.store.read(PORTS_FILE)?;
        self.apply_table(&nets, &ports)?;
        self.dataplane
            .delete_link(&device)
            .map_err(|source| NetError::Dataplane {
                what: format!("delete bridge {device} of network {}", net.name),
                source,
            })
    }

    /// The first /24 of the pool that overlaps no network and no route of the host.
    fn pick_subnet(&self, nets: &[NetworkState]) -> Result<Ipv4Net, NetError> {
        let ours: Vec<&str> = nets
            .iter()
            .filter_map(|n| n.bridge.as_ref().map(|b| b.device.as_str()))
            .collect();
        let routes: Vec<Ipv4Net> = host_routes()
            .into_iter()
            .filter(|(dev, _)| !ours.contains(&dev.as_str()))
            .map(|(_, net)| net)
            .collect();
        let pool = self.config.pool;
        let len = pool.prefix_len().max(24);
        let count = 1u32 << (len - pool.prefix_len());
        let step = 1u32 << (32 - u32::from(len));
        (0..count)
            .map(|k| Ipv4Net::containing(Ipv4Addr::from(u32::from(pool.network()) + k * step), len))
            .find(|cand| {
                check_overlap(nets, *cand).is_ok() && !routes.iter().any(|r| r.overlaps(cand))
            })
            .ok_or(NetError::PoolExhausted(pool))
    }
}

fn check_overlap(nets: &[NetworkState], subnet: Ipv4Net) -> Result<(), NetError> {
    for n in nets {
        if let Some(b) = &n.bridge {
            if b.subnet.overlaps(&subnet) {
                return Err(NetError::SubnetOverlap {
                    subnet,
                    network: n.name.clone(),
                    other: b.subnet,
                });
            }
        }
    }
    Ok(())
}

/// Docker's rule for network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn valid_network_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name.len() <= 128
}

/// The host's IPv4 routes other than default routes, from /proc/net/route.
fn host_routes() -> Vec<(String, Ipv4Net)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The file prints the address's bytes (network order) read as a native integer.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let len = u8::try_from(mask.count_ones()).ok()?;
            (len > 0).then(|| (f[0].to_string(), Ipv4Net::containing(dest, len)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::*;

    #[test]
    fn predefined_networks_exist_with_docker_drivers() {
        let (net, _dp, _root) = fake::net("predef");
        let names: Vec<_> = net.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        assert_eq!(net.get("host").unwrap().driver, Driver::Host);
        assert_eq!(net.get("none").unwrap().driver, Driver::Null);
        let bridge = net.get("bridge").unwrap();
        let b = bridge.bridge.as_ref().unwrap();
        assert_eq!(b.device, "berth0");
        assert_eq!(b.subnet.to_string(), "10.77.0.0/16");
        assert_eq!(b.gateway, Ipv4Addr::new(10, 77, 0, 1));
        assert!(!bridge.is_user_defined());
        for name in ["bridge", "host", "none"] {
            assert_eq!(
                net.remove(name).unwrap_err().to_string(),
                format!("{name} is a pre-defined network and cannot be removed")
            );
        }
    }

    #[test]
    fn create_picks_subnets_and_bridge_names() {
        let (net, dp, _root) = fake::net("create");
        let a = net.create(NetworkConfig::new("a")).unwrap();
        let b = net.create(NetworkConfig::new("b")).unwrap();
        let (ba, bb) = (a.bridge.unwrap(), b.bridge.unwrap());
        assert_eq!(ba.device, format!("br-{}", &a.id[..12]));
        assert!(ba.subnet.to_string().starts_with("10.78."));
        assert!(!ba.subnet.overlaps(&bb.subnet));
        assert_eq!(ba.gateway, ba.subnet.first_host());
        let calls = dp.calls.lock().unwrap().join("\n");
        assert!(calls.contains(&format!("bridge {} {}", ba.device, ba.gateway)));
        assert!(calls.contains("nft table"));
    }

    #[test]
    fn conflicts_are_clear_errors() {
        let (net, _dp, _root) = fake::net("conflicts");
        let mut cfg = NetworkConfig::new("a");
        cfg.subnet = Some("10.99.0.0/24".parse().unwrap());
        net.create(cfg.clone()).unwrap();
        assert_eq!(
            net.create(cfg.clone()).unwrap_err().to_string(),
            "network with name a already exists"
        );
        cfg.name = "b".into();
        cfg.subnet = Some("10.99.0.0/16".parse().unwrap());
        assert_eq!(
            net.create(cfg.clone()).unwrap_err().to_string(),
            "subnet 10.99.0.0/16 overlaps with network a (10.99.0.0/24)"
        );
        cfg.subnet = Some("10.77.3.0/24".parse().unwrap());
        assert_eq!(
            net.create(cfg.clone()).unwrap_err().to_string(),
            "subnet 10.77.3.0/24 overlaps with network bridge (10.77.0.0/16)"
        );
        cfg.subnet = Some("10.98.0.0/24".parse().unwrap());
        cfg.gateway = Some(Ipv4Addr::new(10, 98, 1, 1));
        assert_eq!(
            net.create(cfg.clone()).unwrap_err().to_string(),
            "gateway 10.98.1.1 is not a usable address of subnet 10.98.0.0/24"
        );
        assert!(matches!(
            net.create(NetworkConfig::new("-bad")),
            Err(NetError::InvalidName(_))
        ));
        // Nothing half-made is left behind by the failures.
        assert_eq!(net.list().unwrap().len(), 4);
    }

    #[test]
    fn get_by_name_id_and_prefix() {
        let (net, _dp, _root) = fake::net("get");
        let a = net.create(NetworkConfig::new("a")).unwrap();
        assert_eq!(net.get("a").unwrap().id, a.id);
        assert_eq!(net.get(&a.id).unwrap().name, "a");
        assert_eq!(net.get(&a.id[..6]).unwrap().name, "a");
        assert_eq!(
            net.get("nope").unwrap_err().to_string(),
            "network nope not found"
        );
    }

    #[test]
    fn remove_and_prune() {
        // Names that are not hex: a lookup of a removed name must not fall through to
        // another network's id prefix.
        let (net, dp, _root) = fake::net("remove");
        let a = net.create(NetworkConfig::new("net-a")).unwrap();
        net.create(NetworkConfig::new("net-b")).unwrap();
        net.create(NetworkConfig::new("net-c")).unwrap();
        net.remove("net-a").unwrap();
        assert!(dp
            .calls
            .lock()
            .unwrap()
            .contains(&format!("delete br-{}", &a.id[..12])));
        assert!(matches!(net.get("net-a"), Err(NetError::NotFound(_))));
        let mut pruned = net.prune().unwrap();
        pruned.sort();
        assert_eq!(pruned, ["net-b", "net-c"]);
        assert_eq!(net.list().unwrap().len(), 3);
    }

    #[test]
    fn reads_host_routes() {
        // Whatever the machine has, parsing must not fail and must skip default routes.
        for (_, r) in host_routes() {
            assert!(r.prefix_len() > 0);
        }
    }
}
