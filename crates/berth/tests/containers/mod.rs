//! Containers end to end: berth's own runtime, real namespaces, cgroups, overlayfs,
//! bridges and nftables, with the busybox image built from Debian's busybox-static.

mod faults;
mod lifecycle;
mod network;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

/// A store with the busybox fixture tagged `busybox`.
pub fn with_busybox() -> Berth {
    let b = Berth::new();
    b.load_fixture("busybox.oci.tar", "busybox");
    b
}

/// GET / over plain HTTP; the body, or None when nothing answers.
pub fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// Polls until `f` returns Some or the time runs out.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host's own first non-loopback IPv4 address.
pub fn host_address() -> String {
    let out = run_ok(
        std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]),
    );
    out.lines()
        .filter(|l| !l.contains(" bt") && !l.contains("berth") && !l.contains(" br-"))
        .find_map(|l| l.split_whitespace().nth(3))
        .and_then(|cidr| cidr.split('/').next())
        .expect("the host has a global IPv4 address")
        .to_string()
}

pub fn inspect(b: &Berth, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", name])).expect("inspect is JSON");
    v[0].clone()
}

/// Nothing of container `id` is left on the host: mounts, cgroups, veths, processes.
pub fn assert_nothing_left(b: &Berth, id: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "a mount of {id} is left");
    for ctrl in ["memory", "pids", "cpu", "unified", ""] {
        let p = std::path::Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join("berth")
            .join(id);
        assert!(!p.exists(), "cgroup {} is left", p.display());
    }
    let links = run_ok(std::process::Command::new("ip").args(["-o", "link"]));
    assert!(
        !links.contains(&format!("vb{}", &id[..9])),
        "a veth of {id} is left"
    );
    assert!(
        !b.root.path().join("containers").join(id).exists(),
        "records of {id} are left"
    );
}
