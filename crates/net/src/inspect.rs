//! `network inspect` in Docker's JSON shape (Engine API `NetworkResource`), produced from
//! the persisted state so the CLI and the API server print the same thing.

use serde_json::{json, Map, Value};

use crate::state::{EndpointState, NetworkState};

impl NetworkState {
    /// Docker's `network inspect` object for this network, listing `endpoints` under
    /// `Containers` (usually `self.endpoints.values()`; the engine may pass fewer, such as
    /// only running containers).
    pub fn inspect_json<'a>(
        &self,
        endpoints: impl IntoIterator<Item = &'a EndpointState>,
    ) -> Value {
        let mut containers = Map::new();
        for ep in endpoints {
            let prefix = self.bridge.as_ref().map_or(32, |b| b.subnet.prefix_len());
            containers.insert(
                ep.container_id.clone(),
                json!({
                    "Name": ep.container_name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac.to_string(),
                    "IPv4Address": format!("{}/{prefix}", ep.ip),
                    "IPv6Address": "",
                }),
            );
        }
        let config: Vec<Value> = self
            .bridge
            .iter()
            .map(|b| json!({ "Subnet": b.subnet.to_string(), "Gateway": b.gateway.to_string() }))
            .collect();
        let mut options = Map::new();
        if let Some(b) = &self.bridge {
            options.insert("com.docker.network.bridge.name".into(), json!(b.device));
            if b.default {
                options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    json!("true"),
                );
            }
            options.insert("com.docker.network.bridge.enable_icc".into(), json!("true"));
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                json!((!self.internal).to_string()),
            );
        }
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver.as_str(),
            "EnableIPv6": false,
            "IPAM": {
                "Driver": "default",
                "Options": null,
                "Config": config,
            },
            "Internal": self.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": { "Network": "" },
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": self.labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::addr::MacAddr;
    use crate::ipam::IpamState;
    use crate::state::BridgeState;
    use crate::state::Driver;

    #[test]
    fn inspect_has_dockers_shape() {
        let ip = Ipv4Addr::new(10, 78, 0, 2);
        let ep = EndpointState {
            endpoint_id: "e".repeat(64),
            container_id: "c".repeat(64),
            container_name: "web".into(),
            aliases: vec![],
            ip,
            mac: MacAddr::from_ip(ip),
            host_veth: "vbcccccccccnnnn".into(),
            ifname: "eth0".into(),
            default_route: true,
        };
        let net = NetworkState {
            id: "n".repeat(64),
            name: "app".into(),
            driver: Driver::Bridge,
            created: "2024-05-01T12:00:00.000000000Z".into(),
            internal: false,
            labels: BTreeMap::from([("team".into(), "a".into())]),
            bridge: Some(BridgeState {
                device: "br-nnnnnnnnnnnn".into(),
                subnet: "10.78.0.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 78, 0, 1),
                default: false,
            }),
            endpoints: BTreeMap::from([(ep.container_id.clone(), ep.clone())]),
            taps: BTreeMap::new(),
            ipam: IpamState::default(),
        };
        let v = net.inspect_json(net.endpoints.values());
        assert_eq!(v["Name"], "app");
        assert_eq!(v["Driver"], "bridge");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.78.0.0/24");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.78.0.1");
        let c = &v["Containers"][&ep.container_id];
        assert_eq!(c["Name"], "web");
        assert_eq!(c["IPv4Address"], "10.78.0.2/24");
        assert_eq!(c["MacAddress"], "02:42:0a:4e:00:02");
        assert_eq!(
            v["Options"]["com.docker.network.bridge.name"],
            "br-nnnnnnnnnnnn"
        );
        assert_eq!(v["Labels"]["team"], "a");
    }
}
