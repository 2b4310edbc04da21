//! Joining a container to its network through `berth-net`: nothing for `host`, loopback
//! only for `none`, and a veth on a bridge (with published ports) for `bridge` and
//! user-defined networks.
//!
//! The default bridge, its subnet and the nftables table can be moved with environment
//! variables (Docker keeps these in its daemon configuration; berth has no daemon):
//! `BERTH_BRIDGE` (default `berth0`), `BERTH_SUBNET` (10.77.0.0/16), `BERTH_POOL`
//! (10.78.0.0/16, where user-defined networks get their /24) and `BERTH_NFT_TABLE`
//! (`berth`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_net::{parse_port_spec, ExposedPort, Net, NetConfig, PortMapping};

use crate::state::{ContainerConfig, PortConfig};
use crate::{Engine, EngineError};

/// Opens the network manager with the environment's overrides.
pub fn open_net(root: &Path) -> Result<Net, EngineError> {
    let mut config = NetConfig::new(root);
    if let Ok(b) = std::env::var("BERTH_BRIDGE") {
        config.default_bridge = b;
    }
    if let Ok(t) = std::env::var("BERTH_NFT_TABLE") {
        config.nft_table = t;
    }
    for (var, slot) in [
        ("BERTH_SUBNET", &mut config.default_subnet),
        ("BERTH_POOL", &mut config.pool),
    ] {
        if let Ok(v) = std::env::var(var) {
            *slot = v
                .parse()
                .map_err(|e| EngineError::Network(format!("invalid {var} {v:?}: {e}")))?;
        }
    }
    Net::open(config).map_err(net_err)
}

pub fn net_err(e: berth_net::NetError) -> EngineError {
    let mut parts = vec![e.to_string()];
    let mut cur = std::error::Error::source(&e);
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    EngineError::Network(parts.join(": "))
}

fn to_config(m: &PortMapping) -> PortConfig {
    PortConfig {
        host_ip: m.host_ip.map(|ip| ip.to_string()),
        host_port: m.host_port,
        container_port: m.container_port,
        proto: m.proto.as_str().to_string(),
    }
}

fn to_mapping(p: &PortConfig) -> Result<PortMapping, EngineError> {
    let spec = match &p.host_ip {
        Some(ip) => format!("{ip}:{}:{}/{}", p.host_port, p.container_port, p.proto),
        None if p.host_port == 0 => format!("{}/{}", p.container_port, p.proto),
        None => format!("{}:{}/{}", p.host_port, p.container_port, p.proto),
    };
    parse_port_spec(&spec)
        .map_err(|e| EngineError::Ports(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Ports(format!("invalid port mapping {spec}")))
}

impl Engine {
    pub fn net(&self) -> Result<Net, EngineError> {
        open_net(&self.root)
    }

    pub(crate) fn check_network(&self, name: &str) -> Result<(), EngineError> {
        match name {
            "host" | "none" | "bridge" => Ok(()),
            other => self
                .net()?
                .get(other)
                .map(|_| ())
                .map_err(|_| EngineError::NoSuchNetwork(other.to_string())),
        }
    }

    /// `-p` specs (and `-P` with the image's EXPOSE) to mappings; host port 0 means "pick
    /// one at start".
    pub(crate) fn parse_ports(
        &self,
        publish: &[String],
        publish_all: bool,
        image: &berth_image::manifest::RunConfig,
        network: &str,
    ) -> Result<Vec<PortConfig>, EngineError> {
        let mut out = Vec::new();
        for spec in publish {
            for m in parse_port_spec(spec).map_err(|e| EngineError::Ports(e.to_string()))? {
                out.push(to_config(&m));
            }
        }
        if publish_all {
            for key in image.exposed_ports.iter().flat_map(|m| m.keys()) {
                let e: ExposedPort = key
                    .parse()
                    .map_err(|e: berth_net::PortSpecError| EngineError::Ports(e.to_string()))?;
                if !out
                    .iter()
                    .any(|p| p.container_port == e.port && p.proto == e.proto.as_str())
                {
                    out.push(PortConfig {
                        host_ip: None,
                        host_port: 0,
                        container_port: e.port,
                        proto: e.proto.as_str().to_string(),
                    });
                }
            }
        }
        // Docker ignores published ports on the host and none networks (with a warning).
        if matches!(network, "host" | "none") {
            out.clear();
        }
        Ok(out)
    }

    /// The /etc/hosts and /etc/resolv.conf to bind into the container.
    pub(crate) fn etc_files(
        &self,
        config: &ContainerConfig,
    ) -> Result<Option<(PathBuf, PathBuf)>, EngineError> {
        if matches!(config.network.as_str(), "host" | "none") {
            return Ok(None);
        }
        let net = self.net()?;
        Ok(Some((
            net.hosts_file(&config.id).map_err(net_err)?,
            net.resolv_conf(&config.id).map_err(net_err)?,
        )))
    }

    /// Connects the container whose init is `pid` and publishes its ports; returns the
    /// network → address map and the ports as published.
    pub fn connect_networks(
        &self,
        config: &ContainerConfig,
        pid: i32,
    ) -> Result<(BTreeMap<String, String>, Vec<PortConfig>), EngineError> {
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        match config.network.as_str() {
            "host" => Ok((BTreeMap::new(), Vec::new())),
            "none" => {
                self.net()?.loopback_up(&netns).map_err(net_err)?;
                Ok((BTreeMap::new(), Vec::new()))
            }
            network => {
                let net = self.net()?;
                let endpoint = net
                    .connect(network, &config.id, &config.name, &[], &netns)
                    .map_err(net_err)?;
                let mut addresses = BTreeMap::new();
                addresses.insert(network.to_string(), endpoint.ip.to_string());
                let wanted = config
                    .ports
                    .iter()
                    .map(to_mapping)
                    .collect::<Result<Vec<_>, _>>()?;
                let published = if wanted.is_empty() {
                    Vec::new()
                } else {
                    net.publish(&endpoint, &wanted).map_err(net_err)?
                };
                Ok((addresses, published.iter().map(to_config).collect()))
            }
        }
    }

    /// Undoes `connect_networks`; safe to call when nothing is connected.
    pub fn disconnect_networks(&self, config: &ContainerConfig) {
        if matches!(config.network.as_str(), "host") {
            return;
        }
        if let Ok(net) = self.net() {
            let _ = net.cleanup_container(&config.id);
        }
    }
}
