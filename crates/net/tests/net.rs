//! Root integration tests for berth-net: real bridges, veths, namespaces and nftables.
//!
//! Every test has its own state root, nft table (`bt_<pid>_<k>`), bridge names and subnets
//! (derived from the pid and a per-test number `k`), so tests run in parallel and beside a
//! real berth. A [`Lab`] guard removes what a test made (namespaces, links, the table,
//! the state root) even when it fails. Traffic goes only to 127.0.0.1, the host's own
//! address, and the namespaces and bridges made here.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use berth_net::{MacAddr, Net, NetConfig, NetworkConfig, PortMapping, Proto};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The throughput test measures alone: it takes this for writing, the others for reading.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

macro_rules! require_root {
    () => {
        if !is_root() {
            panic!("this test needs root (bridges, namespaces, nftables): run it as root");
        }
    };
}

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"))
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// One test's world: a state root, a `Net` on its own nft table, namespaces.
struct Lab {
    k: u32,
    root: PathBuf,
    net: Net,
    config: NetConfig,
    netns: Vec<String>,
}

impl Lab {
    fn new(k: u32) -> Self {
        let pid = std::process::id();
        let root = std::env::temp_dir().join(format!("berth-net-it-{pid}-{k}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut config = NetConfig::new(&root);
        config.nft_table = format!("bt_{pid}_{k}");
        config.default_bridge = format!("bd{}x{k}", pid % 100_000);
        config.default_subnet = format!("10.{}.{}.0/24", 220 + k, pid % 250)
            .parse()
            .unwrap();
        config.pool = format!("10.{}.0.0/16", 240 + k).parse().unwrap();
        let net = Net::open(config.clone()).unwrap();
        Self {
            k,
            root,
            net,
            config,
            netns: Vec::new(),
        }
    }

    /// A user-defined network with a test subnet and bridge name.
    fn network(&self, name: &str, n: u32) -> NetworkConfig {
        NetworkConfig {
            subnet: Some(
                format!(
                    "10.{}.{}.0/24",
                    200 + self.k * 2 + n,
                    std::process::id() % 250
                )
                .parse()
                .unwrap(),
            ),
            bridge: Some(format!("bt{}x{}x{n}", std::process::id() % 100_000, self.k)),
            ..NetworkConfig::new(name)
        }
    }

    /// A new network namespace (`ip netns add`), deleted with the lab.
    fn netns(&mut self, tag: &str) -> PathBuf {
        let name = format!("berth-t{}-{}-{tag}", std::process::id(), self.k);
        let out = run(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        self.netns.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    fn table_listing(&self, map: &str) -> String {
        let out = run(&["nft", "list", "map", "ip", &self.config.nft_table, map]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(nets) = self.net.list() {
            for n in &nets {
                for cid in n.endpoints.keys() {
                    let _ = self.net.cleanup_container(cid);
                }
                for tap in n.taps.keys() {
                    let _ = self.net.delete_tap(tap);
                }
            }
            for n in &nets {
                if n.is_user_defined() {
                    let _ = self.net.remove(&n.id);
                }
                if let Some(b) = &n.bridge {
                    let _ = run(&["ip", "link", "del", &b.device]);
                }
            }
        }
        let _ = self.net.remove_firewall();
        for ns in &self.netns {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs `f` on a thread inside the network namespace at `path`.
fn in_netns<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
    let ns = File::open(path).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP server inside a namespace.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(netns: &Path, port: u16, greeting: &'static str) -> Self {
        Self::start_with(netns, port, move |mut s| {
            let _ = s.write_all(greeting.as_bytes());
        })
    }

    /// A server running `handle` on each connection (one at a time).
    fn start_with(netns: &Path, port: u16, handle: impl Fn(TcpStream) + Send + 'static) -> Self {
        let ns = File::open(netns).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind in netns");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        handle(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server ready");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP echo server in a namespace, answering until dropped.
fn udp_echo(netns: &Path, port: u16) -> Server {
    let ns = File::open(netns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let sock = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind in netns");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 1500];
        while !flag.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("echo ready");
    Server {
        stop,
        thread: Some(thread),
    }
}

fn fetch(addr: SocketAddrV4) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The host's first global IPv4 address (traffic to it stays on the host).
fn host_address() -> Ipv4Addr {
    let out = run(&["ip", "-o", "-4", "addr", "show", "scope", "global"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.contains(" bt") && !l.contains(" bd") && !l.contains(" berth"))
        .find_map(|l| {
            let addr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            addr.split('/').next()?.parse().ok()
        })
        .expect("the host has a global IPv4 address to test published ports through")
}

#[test]
fn two_containers_reach_each_other_and_names_are_listed() {
    require_root!();
    let _shared = shared();
    let mut lab = Lab::new(1);
    let (ns_a, ns_b) = (lab.netns("a"), lab.netns("b"));
    let state = lab.net.create(lab.network("app", 0)).unwrap();
    let bridge = state.bridge.as_ref().unwrap().device.clone();
    assert!(link_exists(&bridge));
    // The bridge keeps a fixed address as ports come and go (no stale ARP entries).
    let gw = state.bridge.as_ref().unwrap().gateway;
    let bridge_mac =
        || std::fs::read_to_string(format!("/sys/class/net/{bridge}/address")).unwrap();
    assert_eq!(bridge_mac().trim(), MacAddr::from_ip(gw).to_string());

    let a = lab
        .net
        .connect("app", "aaaa1111aaaa1111", "web", &["www".into()], &ns_a)
        .unwrap();
    let b = lab
        .net
        .connect("app", "bbbb2222bbbb2222", "db", &[], &ns_b)
        .unwrap();
    assert!(link_exists(&a.host_veth) && link_exists(&b.host_veth));
    assert_eq!(bridge_mac().trim(), MacAddr::from_ip(gw).to_string());
    assert_eq!(
        std::fs::read_link(format!("/sys/class/net/{}/master", a.host_veth))
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        bridge
    );
    assert_eq!(
        std::fs::read_to_string(format!(
            "/sys/class/net/{}/brport/hairpin_mode",
            a.host_veth
        ))
        .unwrap()
        .trim(),
        "1"
    );
    // Inside: eth0 with the address and MAC, lo up, default route via the gateway.
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.netns[0],
        "ip",
        "-o",
        "addr",
        "show",
        "dev",
        "eth0",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("inet {}/24", a.ip)), "{text}");
    let out = run(&["ip", "netns", "exec", &lab.netns[0], "ip", "route"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("default via {} dev eth0", a.gateway)),
        "{text}"
    );
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.netns[0],
        "ip",
        "link",
        "show",
        "eth0",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&a.mac.to_string()));

    // Each reaches the other by address, and the gateway reaches both.
    let _srv_a = Server::start(&ns_a, 7000, "from a\n");
    let _srv_b = Server::start(&ns_b, 7000, "from b\n");
    let got = in_netns(&ns_b, || fetch(SocketAddrV4::new(a.ip, 7000))).unwrap();
    assert_eq!(got, "from a\n");
    let got = in_netns(&ns_a, || fetch(SocketAddrV4::new(b.ip, 7000))).unwrap();
    assert_eq!(got, "from b\n");
    assert_eq!(fetch(SocketAddrV4::new(a.ip, 7000)).unwrap(), "from a\n");

    // Names: each hosts file lists the other.
    let hosts_a = std::fs::read_to_string(lab.net.hosts_file("aaaa1111aaaa1111").unwrap()).unwrap();
    assert!(
        hosts_a.contains(&format!("{}\tdb bbbb2222bbbb\n", b.ip)),
        "{hosts_a}"
    );
    let hosts_b = std::fs::read_to_string(lab.net.hosts_file("bbbb2222bbbb2222").unwrap()).unwrap();
    assert!(
        hosts_b.contains(&format!("{}\tweb www aaaa1111aaaa\n", a.ip)),
        "{hosts_b}"
    );

    // Disconnect: veths gone, addresses released, names withdrawn; twice is fine.
    lab.net.disconnect("app", "bbbb2222bbbb2222").unwrap();
    lab.net.disconnect("app", "bbbb2222bbbb2222").unwrap();
    assert!(!link_exists(&b.host_veth));
    let hosts_a = std::fs::read_to_string(lab.net.hosts_file("aaaa1111aaaa1111").unwrap()).unwrap();
    assert!(!hosts_a.contains("db"), "{hosts_a}");
    lab.net.disconnect("app", "aaaa1111aaaa1111").unwrap();
    assert!(!link_exists(&a.host_veth));
    assert!(lab.net.get("app").unwrap().ipam.allocated.is_empty());
    lab.net.remove("app").unwrap();
    assert!(!link_exists(&bridge));
}

#[test]
fn published_port_is_reachable_from_loopback_host_address_and_containers() {
    require_root!();
    let _shared = shared();
    let mut lab = Lab::new(2);
    let (ns_srv, ns_cli) = (lab.netns("srv"), lab.netns("cli"));
    lab.net.create(lab.network("pub", 0)).unwrap();
    let srv = lab
        .net
        .connect("pub", "5e55e55e5e55", "srv", &[], &ns_srv)
        .unwrap();
    let cli = lab
        .net
        .connect("pub", "c1c1c1c1c1c1", "cli", &[], &ns_cli)
        .unwrap();
    let _server = Server::start(&ns_srv, 80, "hello from srv\n");

    let mut mappings = berth_net::parse_port_spec("80").unwrap();
    mappings.extend(berth_net::parse_port_spec("127.0.0.1::80").unwrap());
    let got = lab.net.publish(&srv, &mappings).unwrap();
    let (any_port, lo_port) = (got[0].host_port, got[1].host_port);
    assert!(lab
        .table_listing("pub_any_tcp")
        .contains(&format!("{any_port} : {} . 80", srv.ip)));

    let host = host_address();
    assert_eq!(
        fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, any_port)).unwrap(),
        "hello from srv\n"
    );
    assert_eq!(
        fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, lo_port)).unwrap(),
        "hello from srv\n"
    );
    assert_eq!(
        fetch(SocketAddrV4::new(host, any_port)).unwrap(),
        "hello from srv\n"
    );
    // From another container through the host's address (hairpin NAT), and from the
    // server's own namespace through it.
    let got = in_netns(&ns_cli, || fetch(SocketAddrV4::new(host, any_port))).unwrap();
    assert_eq!(got, "hello from srv\n");
    let got = in_netns(&ns_srv, || fetch(SocketAddrV4::new(host, any_port))).unwrap();
    assert_eq!(got, "hello from srv\n");
    // UDP: an echo server in the namespace, reached through 127.0.0.1.
    let udp_port = lab
        .net
        .publish(&srv, &berth_net::parse_port_spec("5353/udp").unwrap())
        .unwrap()[0]
        .host_port;
    assert_ne!(udp_port, 0);
    let echo = udp_echo(&ns_srv, 5353);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(b"ping", ("127.0.0.1", udp_port)).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("udp echo through the published port");
    assert_eq!(&buf[..n], b"ping");
    drop(echo);
    // The 127.0.0.1-only mapping is not published on the host's address.
    assert!(fetch(SocketAddrV4::new(host, lo_port)).is_err());

    // The same host port again, for the other container: a clear error and no change.
    let before = (
        lab.table_listing("pub_any_tcp"),
        lab.table_listing("pub_tcp"),
    );
    let clash = PortMapping {
        host_ip: None,
        host_port: any_port,
        container_port: 80,
        proto: Proto::Tcp,
    };
    let err = lab.net.publish(&cli, &[clash]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("port {any_port}/tcp is already in use (by container srv)")
    );
    // A port a host program listens on is refused too.
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let squat_port = squatter.local_addr().unwrap().port();
    let err = lab
        .net
        .publish(
            &cli,
            &[PortMapping {
                host_port: squat_port,
                ..clash
            }],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("port {squat_port}/tcp is already in use (by another program on the host)")
    );
    assert_eq!(
        before,
        (
            lab.table_listing("pub_any_tcp"),
            lab.table_listing("pub_tcp")
        )
    );
    assert!(lab.net.published("c1c1c1c1c1c1").unwrap().is_empty());

    // Unpublish removes exactly that container's elements.
    lab.net.unpublish("5e55e55e5e55").unwrap();
    assert!(!lab.table_listing("pub_any_tcp").contains("elements"));
    assert!(!lab.table_listing("pub_tcp").contains("elements"));
    assert!(!lab.table_listing("pub_any_udp").contains("elements"));
    assert!(fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, any_port)).is_err());
}

#[test]
fn published_port_throughput_is_close_to_direct() {
    require_root!();
    let _alone = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::new(3);
    let ns = lab.netns("bulk");
    lab.net.create(lab.network("bulk", 0)).unwrap();
    let ep = lab
        .net
        .connect("bulk", "b0b0b0b0b0b0", "bulk", &[], &ns)
        .unwrap();
    let got = lab
        .net
        .publish(&ep, &berth_net::parse_port_spec("9000").unwrap())
        .unwrap();
    let port = got[0].host_port;

    // A sink in the namespace that reads and drops everything.
    let _sink = Server::start_with(&ns, 9000, |mut s| {
        let mut buf = vec![0u8; 1 << 20];
        while s.read(&mut buf).unwrap_or(0) > 0 {}
    });
    let send = |addr: SocketAddrV4| {
        let buf = vec![7u8; 1 << 20];
        let mut s = TcpStream::connect(addr).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..256 {
            s.write_all(&buf).unwrap();
        }
        drop(s);
        256.0 / t.elapsed().as_secs_f64() // MiB/s
    };
    let direct = SocketAddrV4::new(ep.ip, 9000);
    let published = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    // The machine is shared and small, so single runs vary by 2x: interleave runs, keep
    // the best of each kind, and allow three attempts before calling it slow. The bar is
    // the kernel path's (a userland proxy would reach about half); bench/portfwd measures
    // the real figure (about 93%).
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let mut ratio = 0.0;
    for _attempt in 0..3 {
        let (mut d, mut p) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            d.push(send(direct));
            p.push(send(published));
        }
        ratio = best(&p) / best(&d);
        eprintln!(
            "direct {:.0} MiB/s, published {:.0} MiB/s, ratio {ratio:.2}",
            best(&d),
            best(&p)
        );
        if ratio >= 0.75 {
            break;
        }
    }
    assert!(
        ratio >= 0.75,
        "published port reaches only {ratio:.2} of direct throughput"
    );
}

#[test]
fn cleanup_container_removes_everything_even_if_partly_gone() {
    require_root!();
    let _shared = shared();
    let mut lab = Lab::new(4);
    let ns = lab.netns("c");
    lab.net.create(lab.network("one", 0)).unwrap();
    lab.net.create(lab.network("two", 1)).unwrap();
    let cid = "dead0000beef0000";
    let e1 = lab.net.connect("one", cid, "crashy", &[], &ns).unwrap();
    let e2 = lab.net.connect("two", cid, "crashy", &[], &ns).unwrap();
    assert_eq!((e1.ifname.as_str(), e2.ifname.as_str()), ("eth0", "eth1"));
    assert!(e1.default_route && !e2.default_route);
    lab.net
        .publish(&e1, &berth_net::parse_port_spec("127.0.0.1::80").unwrap())
        .unwrap();
    lab.net
        .publish(&e2, &berth_net::parse_port_spec("53/udp").unwrap())
        .unwrap();
    let hosts = lab.net.hosts_file(cid).unwrap();

    // Part of it vanishes behind berth's back (as after a crash or a manual cleanup).
    assert!(run(&["ip", "link", "del", &e1.host_veth]).status.success());
    let table = lab.config.nft_table.clone();
    let flush = run(&["nft", "flush", "map", "ip", &table, "pub_tcp"]);
    assert!(flush.status.success());

    lab.net.cleanup_container(cid).unwrap();
    lab.net.cleanup_container(cid).unwrap();
    assert!(!link_exists(&e1.host_veth) && !link_exists(&e2.host_veth));
    for map in ["pub_tcp", "pub_udp", "pub_any_tcp", "pub_any_udp"] {
        assert!(
            !lab.table_listing(map).contains("elements"),
            "{map} still has elements"
        );
    }
    for n in lab.net.list().unwrap() {
        assert!(
            n.ipam.allocated.is_empty(),
            "{} still has allocations",
            n.name
        );
        assert!(n.endpoints.is_empty());
    }
    assert!(!hosts.exists());
    assert!(lab.net.published(cid).unwrap().is_empty());
}

#[test]
fn default_bridge_network_masquerades_and_forwards() {
    require_root!();
    let _shared = shared();
    let mut lab = Lab::new(5);
    let ns = lab.netns("d");
    let ep = lab
        .net
        .connect("bridge", "d0d0d0d0d0d0", "dflt", &[], &ns)
        .unwrap();
    assert!(link_exists(&lab.config.default_bridge));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    let rl = format!(
        "/proc/sys/net/ipv4/conf/{}/route_localnet",
        lab.config.default_bridge
    );
    assert_eq!(std::fs::read_to_string(rl).unwrap().trim(), "1");
    let out = run(&["nft", "list", "set", "ip", &lab.config.nft_table, "masq"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&lab.config.default_subnet.to_string()),
        "{text}"
    );
    // The default network gives no name resolution.
    let hosts = std::fs::read_to_string(lab.net.hosts_file("d0d0d0d0d0d0").unwrap()).unwrap();
    assert!(hosts.contains(&format!("{}\tdflt d0d0d0d0d0d0\n", ep.ip)));
    let inspect = lab.net.get("bridge").unwrap();
    let v = inspect.inspect_json(inspect.endpoints.values());
    assert_eq!(v["Containers"]["d0d0d0d0d0d0"]["Name"], "dflt");
}

#[test]
fn loopback_up_for_the_none_network() {
    require_root!();
    let _shared = shared();
    let mut lab = Lab::new(8);
    let ns = lab.netns("none");
    lab.net.loopback_up(&ns).unwrap();
    let _srv = Server::start(&ns, 7001, "lo\n");
    let got = in_netns(&ns, || fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7001))).unwrap();
    assert_eq!(got, "lo\n");
}

#[test]
fn ipam_concurrent_allocations_are_distinct() {
    require_root!();
    let _shared = shared();
    let lab = Lab::new(6);
    // 50 threads, each with its own Net (as separate CLI invocations would have).
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let config = lab.config.clone();
                s.spawn(move || {
                    let net = Net::open(config).unwrap();
                    net.allocate_ip("bridge", &format!("thread-{i}")).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ips.iter().collect::<BTreeSet<_>>().len(), 50, "{ips:?}");

    // 50 processes: this test binary re-run as `ipam_child_helper`.
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..50)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "ipam_child_helper",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("BERTH_NET_IPAM_CHILD", &lab.root)
                .env("BERTH_NET_IPAM_OWNER", format!("proc-{i}"))
                .env("BERTH_NET_IPAM_TABLE", &lab.config.nft_table)
                .env("BERTH_NET_IPAM_BRIDGE", &lab.config.default_bridge)
                .env(
                    "BERTH_NET_IPAM_SUBNET",
                    lab.config.default_subnet.to_string(),
                )
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut proc_ips = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let ip: Ipv4Addr = text
            .lines()
            .find_map(|l| l.split_once("ALLOCATED=").map(|(_, ip)| ip.trim()))
            .expect("the child printed its address")
            .parse()
            .unwrap();
        proc_ips.insert(ip);
    }
    assert_eq!(proc_ips.len(), 50);
    assert!(proc_ips.iter().all(|ip| !ips.contains(ip)));
    let state = lab.net.get("bridge").unwrap();
    assert_eq!(state.ipam.allocated.len(), 100);
    for ip in ips.iter().chain(&proc_ips) {
        lab.net.release_ip("bridge", *ip).unwrap();
    }
    assert!(lab.net.get("bridge").unwrap().ipam.allocated.is_empty());
}

/// Not a test of its own: the child process of `ipam_concurrent_allocations_are_distinct`.
#[test]
fn ipam_child_helper() {
    let Some(root) = std::env::var_os("BERTH_NET_IPAM_CHILD") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let mut config = NetConfig::new(PathBuf::from(root));
    config.nft_table = var("BERTH_NET_IPAM_TABLE");
    config.default_bridge = var("BERTH_NET_IPAM_BRIDGE");
    config.default_subnet = var("BERTH_NET_IPAM_SUBNET").parse().unwrap();
    let net = Net::open(config).unwrap();
    let ip = net
        .allocate_ip("bridge", &var("BERTH_NET_IPAM_OWNER"))
        .unwrap();
    println!("ALLOCATED={ip}");
}

#[test]
fn tap_attaches_to_the_bridge() {
    require_root!();
    let _shared = shared();
    let lab = Lab::new(7);
    lab.net.create(lab.network("vms", 0)).unwrap();
    let name = format!("btap{}x7", std::process::id() % 100_000);
    let tap = lab.net.create_tap("vms", &name).unwrap();
    assert!(link_exists(&name));
    let master = std::fs::read_link(format!("/sys/class/net/{name}/master")).unwrap();
    assert_eq!(master.file_name().unwrap().to_str().unwrap(), tap.bridge);
    assert!(lab.net.remove("vms").is_err());
    lab.net.delete_tap(&name).unwrap();
    lab.net.delete_tap(&name).unwrap();
    assert!(!link_exists(&name));
    lab.net.remove("vms").unwrap();
}
