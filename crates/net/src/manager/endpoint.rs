//! Attaching containers: connect, disconnect, cleanup after a crash, and the hosts and
//! resolv.conf files containers bind-mount.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bridge_of, find, Net, NetError, PORTS_FILE};
use crate::addr::MacAddr;
use crate::dataplane::VethSpec;
use crate::hosts;
use crate::nft;
use crate::ports::PortsState;
use crate::state::{self, EndpointState, NetworkState};

/// A container's attachment to a network, as [`Net::connect`] made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub container_id: String,
    pub container_name: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: MacAddr,
    /// The host end of the veth pair.
    pub host_veth: String,
    /// The interface inside the container (`eth0`, `eth1`…).
    pub ifname: String,
    /// Whether the container's default route goes through this network.
    pub default_route: bool,
}

impl Endpoint {
    fn new(net: &NetworkState, ep: &EndpointState) -> Self {
        let bridge = net
            .bridge
            .as_ref()
            .expect("endpoints exist on bridge networks");
        Self {
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            container_id: ep.container_id.clone(),
            container_name: ep.container_name.clone(),
            ip: ep.ip,
            prefix_len: bridge.subnet.prefix_len(),
            gateway: bridge.gateway,
            mac: ep.mac,
            host_veth: ep.host_veth.clone(),
            ifname: ep.ifname.clone(),
            default_route: ep.default_route,
        }
    }
}

impl Net {
    /// Connects a container to `network` (name, id or id prefix): allocates an address,
    /// creates a veth pair on the network's bridge with the container end made directly in
    /// the namespace at `netns_path` (`/proc/PID/ns/net`) as `eth0` (`eth1`… for further
    /// networks), sets addresses, `lo` up, and the default route if this is the
    /// container's first network. Updates the hosts files of everyone on the network.
    pub fn connect(
        &self,
        network: &str,
        container_id: &str,
        container_name: &str,
        aliases: &[String],
        netns_path: &Path,
    ) -> Result<Endpoint, NetError> {
        check_container_id(container_id)?;
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        let i = find(&nets, network)?;
        let bridge = bridge_of(&nets[i])?.clone();
        if nets[i].endpoints.contains_key(container_id) {
            return Err(NetError::AlreadyConnected {
                container: container_name.to_string(),
                network: nets[i].name.clone(),
            });
        }
        let mine: Vec<&EndpointState> = nets
            .iter()
            .filter_map(|n| n.endpoints.get(container_id))
            .collect();
        let ifname = (0..)
            .map(|k| format!("eth{k}"))
            .find(|name| !mine.iter().any(|e| &e.ifname == name))
            .expect("some ethN is free");
        let default_route = !nets[i].internal && !mine.iter().any(|e| e.default_route);
        let host_veth = veth_name(&nets, container_id, &nets[i].id);

        let net = &mut nets[i];
        let ip = net
            .ipam
            .allocate(bridge.subnet, bridge.gateway, container_id, None)
            .map_err(|source| NetError::Ipam {
                network: net.name.clone(),
                source,
            })?;
        let ep = EndpointState {
            endpoint_id: state::random_id(),
            container_id: container_id.to_string(),
            container_name: container_name.to_string(),
            aliases: aliases.to_vec(),
            ip,
            mac: MacAddr::from_ip(ip),
            host_veth,
            ifname,
            default_route,
        };
        net.endpoints.insert(container_id.to_string(), ep.clone());
        // Recorded before the kernel objects exist, so a crash from here on leaves state
        // that cleanup_container can follow.
        self.store.save_network(net)?;
        let endpoint = Endpoint::new(net, &ep);

        let made = self.realize_bridge(&nets[i], &nets).and_then(|()| {
            self.dataplane
                .attach_container(&VethSpec {
                    host: &ep.host_veth,
                    bridge: &bridge.device,
                    peer: &ep.ifname,
                    mac: ep.mac,
                    netns: netns_path,
                    ip,
                    prefix_len: bridge.subnet.prefix_len(),
                    gateway: default_route.then_some(bridge.gateway),
                })
                .map_err(|source| NetError::Dataplane {
                    what: format!(
                        "connect container {container_name} to network {}",
                        nets[i].name
                    ),
                    source,
                })
        });
        if let Err(e) = made {
            let net = &mut nets[i];
            net.endpoints.remove(container_id);
            net.ipam.release(ip);
            self.store.save_network(net)?;
            return Err(e);
        }

        self.write_resolv_conf(container_id)?;
        let members: Vec<String> = nets[i].endpoints.keys().cloned().collect();
        self.refresh_hosts(&nets, members.iter().map(String::as_str))?;
        Ok(endpoint)
    }

    /// Sets `lo` up in the namespace at `netns_path`: all the networking a container on
    /// the `none` network gets. ([`Net::connect`] does it too.)
    pub fn loopback_up(&self, netns_path: &Path) -> Result<(), NetError> {
        self.dataplane
            .loopback_up(netns_path)
            .map_err(|source| NetError::Dataplane {
                what: format!("set lo up in {}", netns_path.display()),
                source,
            })
    }

    /// Disconnects a container from `network`: removes its published ports on that
    /// network, deletes the veth pair, releases the address and updates hosts files.
    /// Disconnecting what is not connected (or from a network that is gone) is `Ok`.
    pub fn disconnect(&self, network: &str, container_id: &str) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        let mut nets = self.store.networks()?;
        let Ok(i) = find(&nets, network) else {
            return Ok(());
        };
        let Some(ep) = nets[i].endpoints.get(container_id).cloned() else {
            return Ok(());
        };
        let net_id = nets[i].id.clone();
        self.drop_ports(|p| p.container_id == container_id && p.network_id == net_id)?;
        self.detach(&mut nets[i], &ep)?;
        let mut affected: Vec<String> = nets[i].endpoints.keys().cloned().collect();
        affected.push(container_id.to_string());
        self.refresh_hosts(&nets, affected.iter().map(String::as_str))
    }

    /// Removes everything berth holds for a container on every network: published ports,
    /// veth pairs, addresses, hosts entries and its hosts/resolv.conf files. Whatever is
    /// already gone is skipped, so it is safe after a crash and safe to repeat.
    pub fn cleanup_container(&self, container_id: &str) -> Result<(), NetError> {
        check_container_id(container_id)?;
        let _lock = self.store.lock()?;
        self.drop_ports(|p| p.container_id == container_id)?;
        let mut nets = self.store.networks()?;
        let mut affected: Vec<String> = Vec::new();
        for net in nets.iter_mut() {
            if let Some(ep) = net.endpoints.get(container_id).cloned() {
                self.detach(net, &ep)?;
                affected.extend(net.endpoints.keys().cloned());
            } else if !net.ipam.release_owner(container_id).is_empty() {
                self.store.save_network(net)?;
            }
        }
        self.refresh_hosts(&nets, affected.iter().map(String::as_str))?;
        let dir = self.store.container_dir(container_id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetError::Io {
                op: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// The endpoints of a container, on every network it is connected to.
    pub fn endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>, NetError> {
        let nets = self.store.networks()?;
        Ok(nets
            .iter()
            .filter_map(|n| n.endpoints.get(container_id).map(|e| Endpoint::new(n, e)))
            .collect())
    }

    /// The file to bind-mount as the container's `/etc/hosts`, created (with localhost
    /// only) if it does not exist yet, so the engine can name it in the container's spec
    /// before [`Net::connect`]. It is rewritten in place as peers come and go.
    pub fn hosts_file(&self, container_id: &str) -> Result<PathBuf, NetError> {
        check_container_id(container_id)?;
        let _lock = self.store.lock()?;
        let path = self.store.container_dir(container_id).join("hosts");
        if !path.exists() {
            let nets = self.store.networks()?;
            hosts::write_in_place(&path, &hosts::render_hosts(&[], &[])).map_err(|source| {
                NetError::Io {
                    op: "write",
                    path: path.clone(),
                    source,
                }
            })?;
            self.refresh_hosts(&nets, [container_id])?;
        }
        Ok(path)
    }

    /// The file to bind-mount as the container's `/etc/resolv.conf`: the host's, without
    /// loopback nameservers (see [`hosts::render_resolv_conf`]). Created if missing.
    pub fn resolv_conf(&self, container_id: &str) -> Result<PathBuf, NetError> {
        check_container_id(container_id)?;
        let _lock = self.store.lock()?;
        self.write_resolv_conf(container_id)
    }

    fn write_resolv_conf(&self, container_id: &str) -> Result<PathBuf, NetError> {
        let path = self.store.container_dir(container_id).join("resolv.conf");
        if path.exists() {
            return Ok(path);
        }
        let host = match fs::read_to_string(&self.config.host_resolv_conf) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(NetError::Io {
                    op: "read",
                    path: self.config.host_resolv_conf.clone(),
                    source,
                })
            }
        };
        hosts::write_in_place(&path, &hosts::render_resolv_conf(&host)).map_err(|source| {
            NetError::Io {
                op: "write",
                path: path.clone(),
                source,
            }
        })?;
        Ok(path)
    }

    /// Deletes an endpoint's veth, releases its address and saves `net`.
    fn detach(&self, net: &mut NetworkState, ep: &EndpointState) -> Result<(), NetError> {
        self.dataplane
            .delete_link(&ep.host_veth)
            .map_err(|source| NetError::Dataplane {
                what: format!(
                    "disconnect container {} from network {}",
                    ep.container_name, net.name
                ),
                source,
            })?;
        net.endpoints.remove(&ep.container_id);
        net.ipam.release(ep.ip);
        net.ipam.release_owner(&ep.container_id);
        self.store.save_network(net)?;
        Ok(())
    }

    /// Removes the published ports `pred` selects from the state and the nft maps.
    pub(super) fn drop_ports(
        &self,
        pred: impl FnMut(&crate::ports::PublishedPort) -> bool,
    ) -> Result<(), NetError> {
        let mut ports: PortsState = self.store.read(PORTS_FILE)?;
        let gone = ports.take(pred);
        if gone.is_empty() {
            return Ok(());
        }
        self.store.write(PORTS_FILE, &ports)?;
        let script = nft::delete_ports_script(&self.config.nft_table, &gone);
        if self.dataplane.nft("unpublish", &script).is_err() {
            // An element already missing fails the whole batch (nft 1.0.6 has no
            // `destroy element`): rebuild the table from the state instead.
            let nets = self.store.networks()?;
            self.apply_table(&nets, &ports)?;
        }
        Ok(())
    }
}

/// Container ids name directories and veths: keep them to [A-Za-z0-9_.-].
fn check_container_id(id: &str) -> Result<(), NetError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidContainerId(id.to_string()))
    }
}

/// `vb` + 9 characters of the container id + 4 of the network id: 15 bytes, the most
/// Linux allows, unique per container and network. If two pairs collide anyway the last
/// character walks until the name is free among recorded endpoints.
fn veth_name(nets: &[NetworkState], container_id: &str, network_id: &str) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(n)
            .collect()
    };
    let base = format!("vb{}{}", clean(container_id, 9), clean(network_id, 4));
    let taken = |name: &str| {
        nets.iter()
            .any(|n| n.endpoints.values().any(|e| e.host_veth == name) || n.taps.contains_key(name))
    };
    if !taken(&base) {
        return base;
    }
    let stem: String = base.chars().take(base.len().min(14)).collect();
    "0123456789abcdefghijklmnopqrstuvwxyz"
        .chars()
        .map(|c| format!("{stem}{c}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::super::NetworkConfig;
    use super::*;

    const NS: &str = "/proc/self/ns/net";

    #[test]
    fn connect_allocates_and_names() {
        let (net, dp, _root) = fake::net("connect");
        net.create(NetworkConfig {
            subnet: Some("10.99.1.0/24".parse().unwrap()),
            ..NetworkConfig::new("app")
        })
        .unwrap();
        let cid = "0123456789abcdef0123";
        let a = net
            .connect("bridge", cid, "web", &[], Path::new(NS))
            .unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(a.gateway, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(a.prefix_len, 16);
        assert_eq!(a.ifname, "eth0");
        assert!(a.default_route);
        assert_eq!(a.mac.to_string(), "02:42:0a:4d:00:02");
        assert_eq!(a.host_veth.len(), 15);
        assert!(a.host_veth.starts_with("vb012345678"));
        let b = net.connect("app", cid, "web", &[], Path::new(NS)).unwrap();
        assert_eq!(b.ifname, "eth1");
        assert!(!b.default_route);
        assert_ne!(a.host_veth, b.host_veth);
        assert_eq!(
            net.connect("app", cid, "web", &[], Path::new(NS))
                .unwrap_err()
                .to_string(),
            "endpoint with name web already exists in network app"
        );
        assert_eq!(
            net.connect("host", cid, "web", &[], Path::new(NS))
                .unwrap_err()
                .to_string(),
            "network host uses driver host: containers join it by namespace, not by connect"
        );
        let calls = dp.calls.lock().unwrap().join("\n");
        assert!(calls.contains("bridge berth0 10.77.0.1"));
        assert!(calls.contains(&format!(
            "veth {} berth0 eth0 10.77.0.2 Some(10.77.0.1)",
            a.host_veth
        )));
        assert_eq!(net.endpoints(cid).unwrap().len(), 2);
    }

    #[test]
    fn hosts_files_follow_membership() {
        let (net, _dp, _root) = fake::net("hosts");
        net.create(NetworkConfig::new("app")).unwrap();
        let a_hosts = net.hosts_file("aaaa").unwrap();
        let a = net
            .connect("app", "aaaa", "web", &["www".into()], Path::new(NS))
            .unwrap();
        let b = net
            .connect("app", "bbbb", "db", &[], Path::new(NS))
            .unwrap();
        let text = fs::read_to_string(&a_hosts).unwrap();
        assert!(
            text.contains(&format!("{}\tweb www aaaa\n", a.ip)),
            "{text}"
        );
        assert!(text.contains(&format!("{}\tdb bbbb\n", b.ip)), "{text}");
        let b_text = fs::read_to_string(net.hosts_file("bbbb").unwrap()).unwrap();
        assert!(b_text.contains(&format!("{}\tweb www aaaa\n", a.ip)));

        net.disconnect("app", "bbbb").unwrap();
        net.disconnect("app", "bbbb").unwrap(); // idempotent
        let text = fs::read_to_string(&a_hosts).unwrap();
        assert!(!text.contains("db"), "{text}");
        assert!(!net.get("app").unwrap().ipam.allocated.contains_key(&b.ip));
    }

    #[test]
    fn default_bridge_gives_no_name_resolution() {
        let (net, _dp, _root) = fake::net("nodns");
        net.connect("bridge", "aaaa", "web", &[], Path::new(NS))
            .unwrap();
        net.connect("bridge", "bbbb", "db", &[], Path::new(NS))
            .unwrap();
        let text = fs::read_to_string(net.hosts_file("aaaa").unwrap()).unwrap();
        assert!(text.contains("\tweb aaaa\n"));
        assert!(!text.contains("db"));
    }

    #[test]
    fn resolv_conf_comes_from_the_host() {
        let (net, _dp, _root) = fake::net("resolv");
        let path = net.resolv_conf("aaaa").unwrap();
        assert_eq!(
            fs::read_to_string(path).unwrap(),
            "nameserver 10.255.255.53\n"
        );
    }

    #[test]
    fn cleanup_removes_everything_and_repeats() {
        let (net, dp, _root) = fake::net("cleanup");
        net.create(NetworkConfig::new("app")).unwrap();
        let e = net
            .connect("app", "aaaa", "web", &[], Path::new(NS))
            .unwrap();
        net.connect("bridge", "aaaa", "web", &[], Path::new(NS))
            .unwrap();
        let dir = net
            .hosts_file("aaaa")
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        net.cleanup_container("aaaa").unwrap();
        net.cleanup_container("aaaa").unwrap();
        assert!(!dir.exists());
        assert!(net.endpoints("aaaa").unwrap().is_empty());
        for n in net.list().unwrap() {
            assert!(n.ipam.allocated.is_empty(), "{}", n.name);
        }
        assert!(dp
            .calls
            .lock()
            .unwrap()
            .contains(&format!("delete {}", e.host_veth)));
        net.remove("app").unwrap();
    }

    #[test]
    fn remove_refuses_while_connected() {
        let (net, _dp, _root) = fake::net("busy");
        net.create(NetworkConfig::new("app")).unwrap();
        net.connect("app", "aaaa", "web", &[], Path::new(NS))
            .unwrap();
        assert_eq!(
            net.remove("app").unwrap_err().to_string(),
            "network app has active endpoints"
        );
        assert!(net.prune().unwrap().is_empty());
    }

    #[test]
    fn bad_container_ids_are_refused() {
        let (net, _dp, _root) = fake::net("badid");
        for id in ["", "../x", ".hidden", "a/b"] {
            assert!(matches!(
                net.connect("bridge", id, "x", &[], Path::new(NS)),
                Err(NetError::InvalidContainerId(_))
            ));
        }
    }
}
