//! The nftables ruleset: one table (`ip berth` by default) holding everything berth needs,
//! generated from the state and loaded with a single `nft -f -` (atomic: the kernel applies
//! a whole file or nothing). See docs/net.md for the layout.
//!
//! Only set and map *elements* vary: the chains are the same for every configuration.
//! Networks change the sets (`bridges`, `subnets`, `masq`, `internal`, `same_bridge`);
//! published ports are elements of the DNAT maps (`pub_tcp`, `pub_udp` keyed by host
//! address and port; `pub_any_tcp`, `pub_any_udp` keyed by port for `0.0.0.0`), so
//! publishing is `add element` and unpublishing `delete element`, with no rule handles.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::addr::Ipv4Net;
use crate::ports::{Proto, PublishedPort};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("run {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("nft rejected the {what} script: {stderr}")]
    Rejected { what: &'static str, stderr: String },
}

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallBridge {
    pub device: String,
    pub subnet: Ipv4Net,
    /// Internal networks get no masquerade and no forwarding to or from elsewhere.
    pub internal: bool,
}

/// The whole table, replacing any previous version of it in one transaction.
pub fn table_script(table: &str, bridges: &[FirewallBridge], ports: &[PublishedPort]) -> String {
    let mut s = String::new();
    // Declaring then deleting makes the delete succeed whether or not the table existed.
    let _ = writeln!(s, "table ip {table} {{}}");
    let _ = writeln!(s, "delete table ip {table}");
    let _ = writeln!(s, "table ip {table} {{");

    let devices: Vec<String> = bridges.iter().map(|b| quote(&b.device)).collect();
    set(&mut s, "bridges", "ifname", "", &devices);
    let pairs: Vec<String> = devices.iter().map(|d| format!("{d} . {d}")).collect();
    set(&mut s, "same_bridge", "ifname . ifname", "", &pairs);
    let internal: Vec<String> = bridges
        .iter()
        .filter(|b| b.internal)
        .map(|b| quote(&b.device))
        .collect();
    set(&mut s, "internal", "ifname", "", &internal);
    let subnets: Vec<String> = bridges.iter().map(|b| b.subnet.to_string()).collect();
    set(&mut s, "subnets", "ipv4_addr", "flags interval; ", &subnets);
    let masq: Vec<String> = bridges
        .iter()
        .filter(|b| !b.internal)
        .map(|b| b.subnet.to_string())
        .collect();
    set(&mut s, "masq", "ipv4_addr", "flags interval; ", &masq);

    for (name, key) in [
        ("pub_tcp", "ipv4_addr . inet_service"),
        ("pub_udp", "ipv4_addr . inet_service"),
        ("pub_any_tcp", "inet_service"),
        ("pub_any_udp", "inet_service"),
    ] {
        let elements: Vec<String> = ports
            .iter()
            .filter(|p| map_name(p) == name)
            .map(element)
            .collect();
        let kind = format!("map {name} {{ type {key} : ipv4_addr . inet_service; ");
        let _ = write!(s, "\t{kind}");
        if !elements.is_empty() {
            let _ = write!(s, "elements = {{ {} }} ", elements.join(", "));
        }
        let _ = writeln!(s, "}}");
    }

    s.push_str(CHAINS);
    s.push_str("}\n");
    s
}

/// The fixed chains. `publish` holds the DNAT lookups; it is entered only for packets to
/// one of the host's own addresses (`fib daddr type local`), from outside (prerouting) or
/// from the host itself (output, which covers 127.0.0.1).
const CHAINS: &str = "\tchain publish {
\t\tdnat to ip daddr . tcp dport map @pub_tcp
\t\tdnat to ip daddr . udp dport map @pub_udp
\t\tdnat to tcp dport map @pub_any_tcp
\t\tdnat to udp dport map @pub_any_udp
\t}
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local jump publish
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local jump publish
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 127.0.0.0/8 oifname @bridges masquerade
\t\tct status dnat ip saddr @subnets oifname @bridges masquerade
\t\tip saddr @masq oifname != @bridges masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tiifname @internal drop
\t\toifname @internal drop
\t\tct status dnat accept
\t\tiifname . oifname @same_bridge accept
\t\tiifname @bridges oifname @bridges drop
\t}
";

fn set(s: &mut String, name: &str, kind: &str, flags: &str, elements: &[String]) {
    let _ = write!(s, "\tset {name} {{ type {kind}; {flags}");
    if !elements.is_empty() {
        let _ = write!(s, "elements = {{ {} }} ", elements.join(", "));
    }
    let _ = writeln!(s, "}}");
}

fn quote(device: &str) -> String {
    // Device names are validated to [A-Za-z0-9_.-] before they reach here.
    format!("\"{device}\"")
}

fn map_name(p: &PublishedPort) -> &'static str {
    match (p.mapping.host_ip.is_some(), p.mapping.proto) {
        (true, Proto::Tcp) => "pub_tcp",
        (true, Proto::Udp) => "pub_udp",
        (false, Proto::Tcp) => "pub_any_tcp",
        (false, Proto::Udp) => "pub_any_udp",
    }
}

fn key(p: &PublishedPort) -> String {
    match p.mapping.host_ip {
        Some(ip) => format!("{ip} . {}", p.mapping.host_port),
        None => p.mapping.host_port.to_string(),
    }
}

fn element(p: &PublishedPort) -> String {
    format!(
        "{} : {} . {}",
        key(p),
        p.container_ip,
        p.mapping.container_port
    )
}

/// `add element` lines for newly published ports.
pub fn add_ports_script(table: &str, ports: &[PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "add element ip {table} {} {{ {} }}\n",
                map_name(p),
                element(p)
            )
        })
        .collect()
}

/// `delete element` lines for unpublished ports (by key: the value is not needed).
pub fn delete_ports_script(table: &str, ports: &[PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "delete element ip {table} {} {{ {} }}\n",
                map_name(p),
                key(p)
            )
        })
        .collect()
}

/// Removes the table, whether or not it exists.
pub fn delete_table_script(table: &str) -> String {
    format!("table ip {table} {{}}\ndelete table ip {table}\n")
}

/// Whether `name` is safe as an nftables table name.
pub fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// Runs `nft -f -` with `script` on standard input (argv only, no shell).
pub fn run(binary: &Path, what: &'static str, script: &str) -> Result<(), NftError> {
    let spawn_err = |source| NftError::Spawn {
        binary: binary.to_path_buf(),
        source,
    };
    let mut child = Command::new(binary)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // nft reads all of stdin before it acts, and the script is small, so writing it
    // whole before reading stderr cannot deadlock.
    let written = stdin.write_all(script.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().map_err(spawn_err)?;
    written.map_err(spawn_err)?;
    if !out.status.success() {
        return Err(NftError::Rejected {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortMapping;
    use std::net::Ipv4Addr;

    fn port(host_ip: Option<Ipv4Addr>, host: u16, proto: Proto) -> PublishedPort {
        PublishedPort {
            container_id: "c1".into(),
            container_name: "web".into(),
            network_id: "n1".into(),
            container_ip: Ipv4Addr::new(10, 78, 0, 2),
            mapping: PortMapping {
                host_ip,
                host_port: host,
                container_port: 80,
                proto,
            },
        }
    }

    #[test]
    fn table_script_holds_sets_and_maps() {
        let bridges = [
            FirewallBridge {
                device: "berth0".into(),
                subnet: "10.77.0.0/16".parse().unwrap(),
                internal: false,
            },
            FirewallBridge {
                device: "br-0123456789ab".into(),
                subnet: "10.78.1.0/24".parse().unwrap(),
                internal: true,
            },
        ];
        let ports = [
            port(None, 8080, Proto::Tcp),
            port(Some(Ipv4Addr::LOCALHOST), 8081, Proto::Udp),
        ];
        let s = table_script("berth", &bridges, &ports);
        assert!(s.starts_with("table ip berth {}\ndelete table ip berth\ntable ip berth {\n"));
        assert!(s.contains(
            "\tset bridges { type ifname; elements = { \"berth0\", \"br-0123456789ab\" } }\n"
        ));
        assert!(s.contains("\tset internal { type ifname; elements = { \"br-0123456789ab\" } }\n"));
        assert!(s.contains(
            "\tset masq { type ipv4_addr; flags interval; elements = { 10.77.0.0/16 } }\n"
        ));
        assert!(s.contains(
            "\tmap pub_any_tcp { type inet_service : ipv4_addr . inet_service; \
             elements = { 8080 : 10.78.0.2 . 80 } }\n"
        ));
        assert!(s.contains(
            "\tmap pub_udp { type ipv4_addr . inet_service : ipv4_addr . inet_service; \
             elements = { 127.0.0.1 . 8081 : 10.78.0.2 . 80 } }\n"
        ));
        assert!(s.contains(
            "\tmap pub_tcp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n"
        ));
        assert!(s.contains("fib daddr type local jump publish"));
        assert!(s.ends_with("\t}\n}\n"));
    }

    #[test]
    fn element_scripts_use_map_keys() {
        let ports = [
            port(None, 8080, Proto::Tcp),
            port(Some(Ipv4Addr::LOCALHOST), 8081, Proto::Tcp),
        ];
        assert_eq!(
            add_ports_script("t", &ports),
            "add element ip t pub_any_tcp { 8080 : 10.78.0.2 . 80 }\n\
             add element ip t pub_tcp { 127.0.0.1 . 8081 : 10.78.0.2 . 80 }\n"
        );
        assert_eq!(
            delete_ports_script("t", &ports),
            "delete element ip t pub_any_tcp { 8080 }\n\
             delete element ip t pub_tcp { 127.0.0.1 . 8081 }\n"
        );
    }

    #[test]
    fn table_names_are_checked() {
        assert!(valid_table_name("berth"));
        assert!(valid_table_name("berth_test_123"));
        assert!(!valid_table_name("1berth"));
        assert!(!valid_table_name("a b"));
        assert!(!valid_table_name("x;flush ruleset"));
    }
}
