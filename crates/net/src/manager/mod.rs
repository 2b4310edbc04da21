//! [`Net`]: the networking API the container engine (and later the VM layer) calls.
//!
//! Every change takes the store lock (`state.rs`), reads the state, acts on the kernel
//! through the [`Dataplane`] and writes the state back, so concurrent berth processes
//! serialize. The state is written *before* kernel objects are made (and rolled back if
//! making them fails), so after a crash the state names everything that might exist and
//! [`Net::cleanup_container`] can remove it.
//!
//! Verbs live in one file each: `network.rs` (create, list, get, remove, prune),
//! `endpoint.rs` (connect, disconnect, cleanup, hosts and resolv.conf files),
//! `publish.rs` (published ports), `tap.rs` (VM taps).

mod endpoint;
mod network;
mod publish;
mod tap;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use endpoint::Endpoint;
pub use network::NetworkConfig;
pub use tap::TapHandle;

use crate::addr::Ipv4Net;
use crate::dataplane::{Dataplane, DataplaneError, LinuxDataplane};
use crate::hosts::{self, HostEntry};
use crate::ipam::IpamError;
use crate::nft::{self, FirewallBridge};
use crate::ports::{PortsState, Proto};
use crate::state::{NetworkState, StateError, Store};

const PORTS_FILE: &str = "ports.json";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{what}")]
    Dataplane {
        what: String,
        #[source]
        source: DataplaneError,
    },
    #[error("invalid nft table name {0:?}: use letters, digits and _")]
    InvalidTableName(String),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network id prefix {0} is ambiguous")]
    Ambiguous(String),
    #[error("network with name {0} already exists")]
    NameConflict(String),
    #[error("invalid network name {0:?}: use letters, digits, '_', '.', '-', starting with a letter or digit")]
    InvalidName(String),
    #[error("invalid bridge device name {0:?}: 1 to 15 of letters, digits, '_', '.', '-'")]
    InvalidDevice(String),
    #[error("bridge device {device} is already used by network {network}")]
    DeviceConflict { device: String, network: String },
    #[error("subnet {subnet} overlaps with network {network} ({other})")]
    SubnetOverlap {
        subnet: Ipv4Net,
        network: String,
        other: Ipv4Net,
    },
    #[error("subnet {0} is too small: it needs room for a gateway and a container (/30 at most)")]
    SubnetTooSmall(Ipv4Net),
    #[error("gateway {gateway} is not a usable address of subnet {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("a gateway needs a subnet: give --subnet too")]
    GatewayWithoutSubnet,
    #[error("no free subnet left in pool {0}")]
    PoolExhausted(Ipv4Net),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("network {0} has active endpoints")]
    ActiveEndpoints(String),
    #[error(
        "network {network} uses driver {driver}: containers join it by namespace, not by connect"
    )]
    NotBridge {
        network: String,
        driver: &'static str,
    },
    #[error("invalid container id {0:?}")]
    InvalidContainerId(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("allocate an address on network {network}")]
    Ipam {
        network: String,
        #[source]
        source: IpamError,
    },
    #[error("port {port}/{proto} is already in use (by {by})")]
    PortInUse { port: u16, proto: Proto, by: String },
    #[error("cannot publish port {addr}:{port}/{proto}")]
    PortUnavailable {
        addr: Ipv4Addr,
        port: u16,
        proto: Proto,
        #[source]
        source: io::Error,
    },
    #[error("no free host port for {0}")]
    NoFreePort(Proto),
    #[error("invalid tap device name {0:?}: 1 to 15 of letters, digits, '_', '.', '-'")]
    InvalidTapName(String),
    #[error("tap device {tap} is already attached to network {network}")]
    TapExists { tap: String, network: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the state lives and the names berth uses on the host.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The berth state root (`/var/lib/berth`); networks live under `<root>/networks`.
    pub state_root: PathBuf,
    /// The nftables table (family `ip`) berth owns. Tests use their own.
    pub nft_table: String,
    /// The nft binary.
    pub nft_binary: PathBuf,
    /// The Linux bridge of the default `bridge` network.
    pub default_bridge: String,
    /// The subnet of the default `bridge` network.
    pub default_subnet: Ipv4Net,
    /// Where user-defined networks get their /24 when none is given.
    pub pool: Ipv4Net,
    /// The host's resolver configuration, the source of containers' resolv.conf.
    pub host_resolv_conf: PathBuf,
}

impl NetConfig {
    /// The defaults: table `berth`, bridge `berth0` on 10.77.0.0/16, user networks from
    /// 10.78.0.0/16 (clear of Docker's 172.17.0.0/16 and Podman's 10.88.0.0/16).
    pub fn new(state_root: impl Into<PathBuf>) -> Self {
        let nft_binary = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("nft"));
        Self {
            state_root: state_root.into(),
            nft_table: "berth".into(),
            nft_binary,
            default_bridge: "berth0".into(),
            default_subnet: Ipv4Net::containing(Ipv4Addr::new(10, 77, 0, 0), 16),
            pool: Ipv4Net::containing(Ipv4Addr::new(10, 78, 0, 0), 16),
            host_resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// The networking of one berth state root.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    store: Store,
    dataplane: Box<dyn Dataplane>,
}

impl Net {
    /// Opens the network state under `config.state_root`, creating the pre-defined
    /// networks (`bridge`, `host`, `none`) on first use. Touches no kernel state: bridges
    /// and the nft table appear when first needed.
    pub fn open(config: NetConfig) -> Result<Self, NetError> {
        let dataplane = LinuxDataplane {
            nft_binary: config.nft_binary.clone(),
        };
        Self::with_dataplane(config, Box::new(dataplane))
    }

    /// As [`Net::open`] with another dataplane (a fake, in tests).
    pub fn with_dataplane(
        config: NetConfig,
        dataplane: Box<dyn Dataplane>,
    ) -> Result<Self, NetError> {
        if !nft::valid_table_name(&config.nft_table) {
            return Err(NetError::InvalidTableName(config.nft_table.clone()));
        }
        if !valid_device_name(&config.default_bridge) {
            return Err(NetError::InvalidDevice(config.default_bridge.clone()));
        }
        let store = Store::open(&config.state_root)?;
        let net = Self {
            config,
            store,
            dataplane,
        };
        net.ensure_predefined()?;
        Ok(net)
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Rebuilds the whole nft table from the state (after a reboot, or if someone flushed
    /// the ruleset). Bridges are recreated as containers connect.
    pub fn sync_firewall(&self) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        let nets = self.store.networks()?;
        let ports: PortsState = self.store.read(PORTS_FILE)?;
        self.apply_table(&nets, &ports)
    }

    /// Deletes berth's nft table (uninstall, and tests' cleanup).
    pub fn remove_firewall(&self) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        self.dataplane
            .nft(
                "table removal",
                &nft::delete_table_script(&self.config.nft_table),
            )
            .map_err(|source| NetError::Dataplane {
                what: format!("remove nft table {}", self.config.nft_table),
                source,
            })
    }

    /// Allocates an address on `network` for `owner` without attaching anything (for
    /// addresses managed outside berth, such as a VM configured by hand).
    pub fn allocate_ip(&self, network: &str, owner: &str) -> Result<Ipv4Addr, NetError> {
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        let i = find(&nets, network)?;
        let net = &mut nets[i];
        let bridge = bridge_of(net)?.clone();
        let ip = net
            .ipam
            .allocate(bridge.subnet, bridge.gateway, owner, None)
            .map_err(|source| NetError::Ipam {
                network: net.name.clone(),
                source,
            })?;
        self.store.save_network(net)?;
        Ok(ip)
    }

    /// Releases an address of `network`; fine if it was not allocated.
    pub fn release_ip(&self, network: &str, ip: Ipv4Addr) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        let Ok(i) = find(&nets, network) else {
            return Ok(());
        };
        if nets[i].ipam.release(ip) {
            self.store.save_network(&nets[i])?;
        }
        Ok(())
    }

    /// Loads the table for `nets` and `ports` in one nft transaction.
    fn apply_table(&self, nets: &[NetworkState], ports: &PortsState) -> Result<(), NetError> {
        let bridges: Vec<FirewallBridge> = nets
            .iter()
            .filter_map(|n| {
                n.bridge.as_ref().map(|b| FirewallBridge {
                    device: b.device.clone(),
                    subnet: b.subnet,
                    internal: n.internal,
                })
            })
            .collect();
        let script = nft::table_script(&self.config.nft_table, &bridges, &ports.ports);
        self.dataplane
            .nft("table", &script)
            .map_err(|source| NetError::Dataplane {
                what: format!("load nft table {}", self.config.nft_table),
                source,
            })
    }

    /// Makes sure `net`'s bridge exists and is configured; if it had to be created (first
    /// use, or after a reboot) the nft table is reloaded too.
    fn realize_bridge(&self, net: &NetworkState, nets: &[NetworkState]) -> Result<(), NetError> {
        if self.ensure_bridge(net)? {
            let ports: PortsState = self.store.read(PORTS_FILE)?;
            self.apply_table(nets, &ports)?;
        }
        Ok(())
    }

    /// Makes sure `net`'s bridge exists and is configured; returns whether it was created.
    fn ensure_bridge(&self, net: &NetworkState) -> Result<bool, NetError> {
        let bridge = bridge_of(net)?;
        self.dataplane
            .ensure_bridge(&crate::dataplane::BridgeSpec {
                device: &bridge.device,
                gateway: bridge.gateway,
                prefix_len: bridge.subnet.prefix_len(),
            })
            .map_err(|source| NetError::Dataplane {
                what: format!("set up bridge {} of network {}", bridge.device, net.name),
                source,
            })
    }

    /// Rewrites the hosts files of `containers` from the current state.
    fn refresh_hosts<'a>(
        &self,
        nets: &[NetworkState],
        containers: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), NetError> {
        for cid in containers {
            let path = self.store.container_dir(cid).join("hosts");
            let joined: Vec<&NetworkState> = nets
                .iter()
                .filter(|n| n.endpoints.contains_key(cid))
                .collect();
            if joined.is_empty() && !path.exists() {
                continue;
            }
            let mut own = Vec::new();
            let mut peers = Vec::new();
            for n in &joined {
                let me = &n.endpoints[cid];
                own.push(HostEntry {
                    ip: me.ip,
                    names: hosts::names_of(&me.container_name, &me.aliases, cid),
                });
                if n.is_user_defined() {
                    for (other, ep) in &n.endpoints {
                        if other != cid {
                            peers.push(HostEntry {
                                ip: ep.ip,
                                names: hosts::names_of(&ep.container_name, &ep.aliases, other),
                            });
                        }
                    }
                }
            }
            let text = hosts::render_hosts(&own, &peers);
            hosts::write_in_place(&path, &text).map_err(|source| NetError::Io {
                op: "write",
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The index of the network named `key`, or with id `key`, or whose id starts with `key`.
fn find(nets: &[NetworkState], key: &str) -> Result<usize, NetError> {
    if let Some(i) = nets.iter().position(|n| n.name == key) {
        return Ok(i);
    }
    if let Some(i) = nets.iter().position(|n| n.id == key) {
        return Ok(i);
    }
    if key.is_empty() {
        return Err(NetError::NotFound(key.to_string()));
    }
    let mut matches = nets
        .iter()
        .enumerate()
        .filter(|(_, n)| n.id.starts_with(key));
    match (matches.next(), matches.next()) {
        (Some((i, _)), None) => Ok(i),
        (Some(_), Some(_)) => Err(NetError::Ambiguous(key.to_string())),
        (None, _) => Err(NetError::NotFound(key.to_string())),
    }
}

fn bridge_of(net: &NetworkState) -> Result<&crate::state::BridgeState, NetError> {
    net.bridge.as_ref().ok_or(NetError::NotBridge {
        network: net.name.clone(),
        driver: net.driver.as_str(),
    })
}

/// A Linux interface name: 1-15 bytes of [A-Za-z0-9_.-] (IFNAMSIZ includes the NUL).
pub(crate) fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
pub(crate) mod fake {
    //! A dataplane that records what it is asked and touches nothing.

    use std::sync::Mutex;

    use super::*;
    use crate::dataplane::{BridgeSpec, VethSpec};

    #[derive(Debug, Default)]
    pub struct FakeDataplane {
        pub calls: Mutex<Vec<String>>,
        pub bridges: Mutex<Vec<String>>,
    }

    impl FakeDataplane {
        fn log(&self, s: String) {
            self.calls.lock().unwrap().push(s);
        }
    }

    impl Dataplane for std::sync::Arc<FakeDataplane> {
        fn ensure_bridge(&self, spec: &BridgeSpec<'_>) -> Result<bool, DataplaneError> {
            self.log(format!("bridge {} {}", spec.device, spec.gateway));
            let mut b = self.bridges.lock().unwrap();
            if b.iter().any(|d| d == spec.device) {
                return Ok(false);
            }
            b.push(spec.device.to_string());
            Ok(true)
        }
        fn delete_link(&self, name: &str) -> Result<(), DataplaneError> {
            self.log(format!("delete {name}"));
            self.bridges.lock().unwrap().retain(|d| d != name);
            Ok(())
        }
        fn attach_container(&self, spec: &VethSpec<'_>) -> Result<(), DataplaneError> {
            self.log(format!(
                "veth {} {} {} {} {:?}",
                spec.host, spec.bridge, spec.peer, spec.ip, spec.gateway
            ));
            Ok(())
        }
        fn loopback_up(&self, netns: &std::path::Path) -> Result<(), DataplaneError> {
            self.log(format!("lo up {}", netns.display()));
            Ok(())
        }
        fn attach_tap(&self, name: &str, bridge: &str) -> Result<(), DataplaneError> {
            self.log(format!("tap {name} {bridge}"));
            Ok(())
        }
        fn nft(&self, what: &'static str, script: &str) -> Result<(), DataplaneError> {
            self.log(format!("nft {what}: {script}"));
            Ok(())
        }
    }

    /// A temporary state root, removed on drop.
    pub struct TempRoot(pub PathBuf);

    impl TempRoot {
        pub fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("berth-net-unit-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn net(tag: &str) -> (Net, std::sync::Arc<FakeDataplane>, TempRoot) {
        let root = TempRoot::new(tag);
        let mut config = NetConfig::new(&root.0);
        config.host_resolv_conf = root.0.join("host-resolv.conf");
        std::fs::write(
            &config.host_resolv_conf,
            "nameserver 127.0.0.53\nnameserver 10.255.255.53\n",
        )
        .unwrap();
        let dp = std::sync::Arc::new(FakeDataplane::default());
        let net = Net::with_dataplane(config, Box::new(dp.clone())).unwrap();
        (net, dp, root)
    }
}
