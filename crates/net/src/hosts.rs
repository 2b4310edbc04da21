//! The `/etc/hosts` and `/etc/resolv.conf` files berth gives containers.
//!
//! Name resolution on user-defined networks is a hosts file per container listing every
//! other container on the networks it shares (name, aliases, short id), rewritten whenever
//! an endpoint joins or leaves. There is no DNS server: see docs/net.md.
//!
//! The engine bind-mounts the file itself onto the container's `/etc/hosts`. A bind mount
//! pins the inode, so replacing the file by rename would leave the container looking at
//! the old one: files are instead rewritten in place (write at offset 0, then truncate to
//! the new length), under the store lock, as Docker does. A reader racing the rewrite may
//! see a mix for an instant; resolvers re-read the file on the next lookup.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The lines every hosts file starts with (Docker's set).
const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// One line of a hosts file: an address and the names that resolve to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
}

/// The names a container answers to: its name, aliases and short id, without repeats.
pub fn names_of(container_name: &str, aliases: &[String], container_id: &str) -> Vec<String> {
    let short = &container_id[..container_id.len().min(12)];
    let mut names: Vec<String> = Vec::new();
    for n in std::iter::once(container_name)
        .chain(aliases.iter().map(String::as_str))
        .chain(std::iter::once(short))
    {
        if !n.is_empty() && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    names
}

/// The hosts file: the header, the container's own addresses, then its peers.
pub fn render_hosts(own: &[HostEntry], peers: &[HostEntry]) -> String {
    let mut s = String::from(HOSTS_HEADER);
    for e in own.iter().chain(peers) {
        if !e.names.is_empty() {
            s.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
        }
    }
    s
}

/// The container's resolv.conf from the host's: `search` and `options` lines are kept,
/// nameservers too except loopback ones (unreachable from the container's namespace) and
/// IPv6 ones (berth networks are IPv4 only). If none remain, none are listed.
pub fn render_resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(Ok(ip)) = words.next().map(str::parse::<std::net::IpAddr>) else {
                    continue;
                };
                if ip.is_ipv4() && !ip.is_loopback() {
                    out.push_str(&format!("nameserver {ip}\n"));
                }
            }
            Some("search") | Some("domain") | Some("options") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Rewrites `path` in place (keeping its inode, which bind mounts refer to), creating it
/// if needed.
pub fn write_in_place(path: &Path, content: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(content.as_bytes(), 0)?;
    file.set_len(content.len() as u64)?;
    (&file).flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn hosts_lists_own_then_peers() {
        let own = [HostEntry {
            ip: Ipv4Addr::new(10, 78, 0, 2),
            names: names_of("web", &["www".into()], "0123456789abcdef"),
        }];
        let peers = [HostEntry {
            ip: Ipv4Addr::new(10, 78, 0, 3),
            names: names_of("db", &["db".into()], "fedcba9876543210"),
        }];
        let text = render_hosts(&own, &peers);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.78.0.2\tweb www 0123456789ab\n10.78.0.3\tdb fedcba987654\n"));
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n\
                    nameserver ::1\nnameserver fd00::1\nsearch example.test\noptions edns0\n";
        assert_eq!(
            render_resolv_conf(host),
            "nameserver 10.255.255.53\nsearch example.test\noptions edns0\n"
        );
        assert_eq!(render_resolv_conf("nameserver 127.0.0.1\n"), "");
    }

    #[test]
    fn rewrite_keeps_the_inode() {
        let dir = std::env::temp_dir().join(format!("berth-net-hosts-{}", std::process::id()));
        let path = dir.join("hosts");
        write_in_place(&path, "a long first version\n").unwrap();
        let ino = fs::metadata(&path).unwrap().ino();
        write_in_place(&path, "short\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
        fs::remove_dir_all(&dir).unwrap();
    }
}
