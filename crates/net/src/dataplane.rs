//! The kernel side of networking behind one small trait, so that the manager's logic
//! (names, subnets, IPAM, hosts files, port bookkeeping) can be tested unprivileged with a
//! fake, while [`LinuxDataplane`] does the real work through netlink, sysctls, nft and
//! /dev/net/tun.

use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::addr::MacAddr;
use crate::netlink::{self, link, NetlinkError, NetlinkSocket};
use crate::netns::{self, NetnsError};
use crate::nft::{self, NftError};
use crate::sysctl::{self, SysctlError};
use crate::tap::{self, TapError};

const EEXIST: i32 = 17;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Tap(#[from] TapError),
}

/// A bridge and the address it carries (the gateway of its network).
#[derive(Debug, Clone)]
pub struct BridgeSpec<'a> {
    pub device: &'a str,
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
}

/// A container's side of a network: a veth pair between `bridge` and the namespace.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    pub host: &'a str,
    pub bridge: &'a str,
    pub peer: &'a str,
    pub mac: MacAddr,
    pub netns: &'a Path,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// The default route to install in the namespace, if this network carries it.
    pub gateway: Option<Ipv4Addr>,
}

/// What the manager asks of the kernel.
pub trait Dataplane: fmt::Debug + Send + Sync {
    /// Creates the bridge if missing, gives it its address, sets it up and enables
    /// forwarding. Returns whether the bridge had to be created.
    fn ensure_bridge(&self, spec: &BridgeSpec<'_>) -> Result<bool, DataplaneError>;
    /// Deletes a link (bridge, veth, tap); fine if it does not exist.
    fn delete_link(&self, name: &str) -> Result<(), DataplaneError>;
    /// Creates and configures the veth pair of `spec`.
    fn attach_container(&self, spec: &VethSpec<'_>) -> Result<(), DataplaneError>;
    /// Sets `lo` up inside the namespace at `netns` (for `--network none`).
    fn loopback_up(&self, netns: &Path) -> Result<(), DataplaneError>;
    /// Creates a persistent tap device as a port of `bridge`, up.
    fn attach_tap(&self, name: &str, bridge: &str) -> Result<(), DataplaneError>;
    /// Loads an nft script.
    fn nft(&self, what: &'static str, script: &str) -> Result<(), DataplaneError>;
}

/// The real thing. Needs CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter namespaces).
#[derive(Debug, Clone)]
pub struct LinuxDataplane {
    pub nft_binary: PathBuf,
}

impl Dataplane for LinuxDataplane {
    fn ensure_bridge(&self, spec: &BridgeSpec<'_>) -> Result<bool, DataplaneError> {
        let mut sock = NetlinkSocket::open()?;
        let mac = MacAddr::from_ip(spec.gateway);
        let created = match sock.execute(&link::new_bridge_request(spec.device, mac)) {
            Ok(()) => true,
            Err(e) if e.errno() == Some(EEXIST) => false,
            Err(e) => return Err(e.into()),
        };
        let index = link::require_index(&mut sock, spec.device)?;
        netlink::addr::add_address(&mut sock, index, spec.gateway, spec.prefix_len, spec.device)?;
        sock.execute(&link::set_up_request(index, spec.device))?;
        // Docker's settings: routing between the bridge and the world, and DNAT of
        // 127.0.0.1 to containers (a martian source on the bridge otherwise).
        sysctl::set("net/ipv4/ip_forward", "1")?;
        sysctl::set(
            &format!("net/ipv4/conf/{}/route_localnet", spec.device),
            "1",
        )?;
        Ok(created)
    }

    fn delete_link(&self, name: &str) -> Result<(), DataplaneError> {
        let mut sock = NetlinkSocket::open()?;
        link::delete(&mut sock, name)?;
        Ok(())
    }

    fn attach_container(&self, spec: &VethSpec<'_>) -> Result<(), DataplaneError> {
        let mut sock = NetlinkSocket::open()?;
        let ns = netns::open(spec.netns)?;
        let master = link::require_index(&mut sock, spec.bridge)?;
        // A leftover of a crashed attach would make the creation fail: clear it first.
        link::delete(&mut sock, spec.host)?;
        sock.execute(&link::new_veth_request(&link::VethRequest {
            host: spec.host,
            master,
            peer: spec.peer,
            peer_mac: spec.mac,
            peer_netns: ns.as_fd(),
        }))?;
        let result = self.configure_veth(&mut sock, &ns, spec);
        if result.is_err() {
            let _ = link::delete(&mut sock, spec.host);
        }
        result
    }

    fn loopback_up(&self, netns: &Path) -> Result<(), DataplaneError> {
        let ns = netns::open(netns)?;
        let mut inner = netns::netlink_in(&ns, netns)?;
        let lo = link::require_index(&mut inner, "lo")?;
        inner.execute(&link::set_up_request(lo, "lo"))?;
        Ok(())
    }

    fn attach_tap(&self, name: &str, bridge: &str) -> Result<(), DataplaneError> {
        let mut sock = NetlinkSocket::open()?;
        let master = link::require_index(&mut sock, bridge)?;
        link::delete(&mut sock, name)?;
        tap::create_persistent(name)?;
        let result = (|| {
            let index = link::require_index(&mut sock, name)?;
            sock.execute(&link::set_master_request(index, master, name))?;
            sock.execute(&link::set_up_request(index, name))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = link::delete(&mut sock, name);
        }
        result
    }

    fn nft(&self, what: &'static str, script: &str) -> Result<(), DataplaneError> {
        Ok(nft::run(&self.nft_binary, what, script)?)
    }
}

impl LinuxDataplane {
    fn configure_veth(
        &self,
        sock: &mut NetlinkSocket,
        ns: &std::fs::File,
        spec: &VethSpec<'_>,
    ) -> Result<(), DataplaneError> {
        let host = link::require_index(sock, spec.host)?;
        sock.execute(&link::set_hairpin_request(host, spec.host))?;
        sock.execute(&link::set_up_request(host, spec.host))?;

        let mut inner = netns::netlink_in(ns, spec.netns)?;
        let lo = link::require_index(&mut inner, "lo")?;
        inner.execute(&link::set_up_request(lo, "lo"))?;
        let peer = link::require_index(&mut inner, spec.peer)?;
        netlink::addr::add_address(&mut inner, peer, spec.ip, spec.prefix_len, spec.peer)?;
        inner.execute(&link::set_up_request(peer, spec.peer))?;
        if let Some(gw) = spec.gateway {
            netlink::addr::add_default_route(&mut inner, peer, gw, spec.peer)?;
        }
        Ok(())
    }
}
