//! Published ports: kernel DNAT through the nft maps, no userland proxy. Each host port is
//! checked free first (recorded berth ports, then a test bind on the host) and nothing is
//! changed unless every requested port is free.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use super::{Endpoint, Net, NetError, PORTS_FILE};
use crate::nft;
use crate::ports::{ExposedPort, PortMapping, PortsState, Proto, PublishedPort};

impl Net {
    /// Publishes `mappings` to the container of `endpoint`. Host port 0 picks a free
    /// ephemeral port. Returns the mappings with their host ports resolved. Fails, having
    /// changed nothing, if any host port is taken: `port 8080/tcp is already in use (by
    /// container web)`.
    pub fn publish(
        &self,
        endpoint: &Endpoint,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>, NetError> {
        let _lock = self.store.lock()?;
        let nets = self.store.networks()?;
        let connected = nets.iter().any(|n| {
            n.id == endpoint.network_id
                && n.endpoints
                    .get(&endpoint.container_id)
                    .is_some_and(|e| e.ip == endpoint.ip)
        });
        if !connected {
            return Err(NetError::NotConnected {
                container: endpoint.container_name.clone(),
                network: endpoint.network_name.clone(),
            });
        }
        let before: PortsState = self.store.read(PORTS_FILE)?;
        let mut after = before.clone();
        let mut added = Vec::new();
        for m in mappings {
            let mut m = *m;
            if m.host_port == 0 {
                m.host_port = pick_free_port(&after, m.host_ip, m.proto)?;
            } else {
                check_free(&after, &m)?;
            }
            let p = PublishedPort {
                container_id: endpoint.container_id.clone(),
                container_name: endpoint.container_name.clone(),
                network_id: endpoint.network_id.clone(),
                container_ip: endpoint.ip,
                mapping: m,
            };
            after.ports.push(p.clone());
            added.push(p);
        }
        if added.is_empty() {
            return Ok(Vec::new());
        }
        self.store.write(PORTS_FILE, &after)?;
        let script = nft::add_ports_script(&self.config.nft_table, &added);
        if self.dataplane.nft("publish", &script).is_err() {
            // The table may be missing (first use, reboot, flushed ruleset): rebuild it,
            // new ports included. If that fails too, forget the new ports.
            if let Err(e) = self.apply_table(&nets, &after) {
                self.store.write(PORTS_FILE, &before)?;
                return Err(e);
            }
        }
        Ok(added.into_iter().map(|p| p.mapping).collect())
    }

    /// Removes every port the container published. Fine if there are none.
    pub fn unpublish(&self, container_id: &str) -> Result<(), NetError> {
        let _lock = self.store.lock()?;
        self.drop_ports(|p| p.container_id == container_id)
    }

    /// The ports a container has published (what `docker port` shows).
    pub fn published(&self, container_id: &str) -> Result<Vec<PortMapping>, NetError> {
        let ports: PortsState = self.store.read(PORTS_FILE)?;
        Ok(ports
            .ports
            .into_iter()
            .filter(|p| p.container_id == container_id)
            .map(|p| p.mapping)
            .collect())
    }

    /// `-P`: a mapping on every host address with a free ephemeral host port for each
    /// exposed port. The ports are re-checked when published.
    pub fn publish_all(&self, exposed: &[ExposedPort]) -> Result<Vec<PortMapping>, NetError> {
        let mut held: PortsState = self.store.read(PORTS_FILE)?;
        let mut out = Vec::new();
        for e in exposed {
            let host_port = pick_free_port(&held, None, e.proto)?;
            let m = PortMapping {
                host_ip: None,
                host_port,
                container_port: e.port,
                proto: e.proto,
            };
            // Keep later picks of this call off the ports chosen so far.
            held.ports.push(PublishedPort {
                container_id: String::new(),
                container_name: String::new(),
                network_id: String::new(),
                container_ip: Ipv4Addr::UNSPECIFIED,
                mapping: m,
            });
            out.push(m);
        }
        Ok(out)
    }
}

/// Fails if a berth container holds the port or a test bind on the host fails.
fn check_free(held: &PortsState, m: &PortMapping) -> Result<(), NetError> {
    if let Some(h) = held.holder_of(m) {
        let by = if h.container_name.is_empty() {
            "another port of this request".to_string()
        } else {
            format!("container {}", h.container_name)
        };
        return Err(NetError::PortInUse {
            port: m.host_port,
            proto: m.proto,
            by,
        });
    }
    let addr = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match probe(addr, m.host_port, m.proto) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(NetError::PortInUse {
            port: m.host_port,
            proto: m.proto,
            by: "another program on the host".into(),
        }),
        Err(source) => Err(NetError::PortUnavailable {
            addr,
            port: m.host_port,
            proto: m.proto,
            source,
        }),
    }
}

/// Binds `addr:port` and lets go at once; returns the port bound (the kernel's choice
/// for port 0). std sets SO_REUSEADDR on TCP listeners, so connections in TIME_WAIT do
/// not count as in use; a listening socket does.
fn probe(addr: Ipv4Addr, port: u16, proto: Proto) -> io::Result<u16> {
    let sa = SocketAddrV4::new(addr, port);
    match proto {
        Proto::Tcp => TcpListener::bind(sa)?.local_addr().map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(sa)?.local_addr().map(|a| a.port()),
    }
}

/// An ephemeral port (the kernel's pick) that no berth container holds.
fn pick_free_port(held: &PortsState, ip: Option<Ipv4Addr>, proto: Proto) -> Result<u16, NetError> {
    let addr = ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    for _ in 0..64 {
        let port = probe(addr, 0, proto).map_err(|source| NetError::PortUnavailable {
            addr,
            port: 0,
            proto,
            source,
        })?;
        let m = PortMapping {
            host_ip: ip,
            host_port: port,
            container_port: 1,
            proto,
        };
        if held.holder_of(&m).is_none() {
            return Ok(port);
        }
    }
    Err(NetError::NoFreePort(proto))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::fake;
    use super::*;
    use crate::ports::parse_port_spec;

    #[test]
    fn publish_records_ports_and_adds_elements() {
        let (net, dp, _root) = fake::net("publish");
        let ep = net
            .connect("bridge", "aaaa", "web", &[], Path::new("/proc/self/ns/net"))
            .unwrap();
        let mut want = parse_port_spec("127.0.0.1::80").unwrap();
        want.extend(parse_port_spec("53/udp").unwrap());
        let got = net.publish(&ep, &want).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|m| m.host_port != 0));
        assert_eq!(net.published("aaaa").unwrap(), got);
        let calls = dp.calls.lock().unwrap().join("\n");
        assert!(calls.contains(&format!(
            "add element ip berth pub_tcp {{ 127.0.0.1 . {} : {} . 80 }}",
            got[0].host_port, ep.ip
        )));

        // The same host port for another container: refused, nothing changed.
        let other = net
            .connect("bridge", "bbbb", "db", &[], Path::new("/proc/self/ns/net"))
            .unwrap();
        let clash = PortMapping {
            host_ip: None,
            ..got[0]
        };
        let err = net.publish(&other, &[clash]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "port {}/tcp is already in use (by container web)",
                got[0].host_port
            )
        );
        assert!(net.published("bbbb").unwrap().is_empty());

        net.unpublish("aaaa").unwrap();
        assert!(net.published("aaaa").unwrap().is_empty());
        assert!(dp
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.contains("delete element ip berth pub_tcp")));
    }

    #[test]
    fn a_port_bound_on_the_host_is_refused() {
        let (net, _dp, _root) = fake::net("bound");
        let ep = net
            .connect("bridge", "aaaa", "web", &[], Path::new("/proc/self/ns/net"))
            .unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let m = PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: port,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert_eq!(
            net.publish(&ep, &[m]).unwrap_err().to_string(),
            format!("port {port}/tcp is already in use (by another program on the host)")
        );
    }

    #[test]
    fn publish_all_picks_distinct_ports() {
        let (net, _dp, _root) = fake::net("pall");
        let exposed: Vec<ExposedPort> = ["80/tcp", "443/tcp", "53/udp"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got = net.publish_all(&exposed).unwrap();
        assert_eq!(got.len(), 3);
        assert_ne!(got[0].host_port, got[1].host_port);
        assert!(got.iter().all(|m| m.host_ip.is_none() && m.host_port != 0));
    }
}
