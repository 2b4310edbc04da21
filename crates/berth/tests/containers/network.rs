use std::time::Duration;

use super::*;

#[test]
fn published_web_server_answers_on_loopback_host_address_and_from_containers() {
    let b = with_busybox();
    let port = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/var/www",
        ])
        .trim()
        .to_string();
    let body = eventually(Duration::from_secs(5), || {
        http_get(&format!("127.0.0.1:{port}"))
    })
    .expect("answer on 127.0.0.1");
    assert_eq!(body, "hello from berth\n");
    let host = host_address();
    assert_eq!(
        http_get(&format!("{host}:{port}")).as_deref(),
        Some("hello from berth\n")
    );
    // From another container, through the host's address (hairpin through the bridge).
    let out = b.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{host}:{port}/"),
    ]);
    assert_eq!(out, "hello from berth\n");
    assert_eq!(
        b.ok(&["port", "web", "80"]).trim(),
        format!("0.0.0.0:{port}")
    );
    let ps = b.ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");

    b.ok(&["rm", "-f", "web"]);
    assert_nothing_left(&b, &id);
    assert!(
        http_get(&format!("127.0.0.1:{port}")).is_none(),
        "the port still answers after rm"
    );
    let ruleset =
        run_ok(std::process::Command::new("nft").args(["list", "table", "ip", &b.nft_table]));
    assert!(
        !ruleset.contains(&format!("{port}")),
        "nft still maps {port}: {ruleset}"
    );
}

/// `Udp: ... NoPorts ...` of the container's network namespace: datagrams that arrived for
/// a port nobody listens on (busybox has no UDP server to receive them with).
fn udp_no_ports(b: &Berth, name: &str) -> u64 {
    let snmp = b.ok(&["exec", name, "cat", "/proc/net/snmp"]);
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (head, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = head
        .split_whitespace()
        .position(|f| f == "NoPorts")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
fn udp_ports_are_published_too() {
    let b = with_busybox();
    let port = free_port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "sink",
        "-p",
        &format!("127.0.0.1:{port}:9999/udp"),
        "busybox",
        "sleep",
        "60",
    ]);
    let before = udp_no_ports(&b, "sink");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        sock.send_to(b"ping over udp\n", format!("127.0.0.1:{port}"))
            .unwrap();
    }
    let arrived = eventually(Duration::from_secs(5), || {
        (udp_no_ports(&b, "sink") >= before + 3).then_some(())
    });
    assert!(
        arrived.is_some(),
        "the datagrams did not reach the container's namespace"
    );
}

#[test]
fn containers_reach_each_other_by_name_on_a_user_network() {
    let b = with_busybox();
    b.ok(&["network", "create", "appnet"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "appnet",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/var/www",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://api:8080/",
    ]);
    assert_eq!(out, "hello from berth\n");
    // The default bridge does not resolve names (as in Docker).
    let err = b.fails(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://api:8080/",
    ]);
    assert!(err.contains("bad address") || err.contains("api"), "{err}");
    let err = b.fails(&["network", "rm", "appnet"]);
    assert!(err.contains("active endpoints"), "{err}");
    b.ok(&["rm", "-f", "api"]);
    b.ok(&["network", "rm", "appnet"]);
}

#[test]
fn a_port_in_use_is_refused_before_the_container_starts() {
    let b = with_busybox();
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{port}")) && err.contains("in use"),
        "{err}"
    );
    let s = inspect(&b, "clash");
    assert_eq!(s["State"]["Running"], false);
    // Two berth containers cannot hold one port either.
    let port2 = free_port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "-p",
        &format!("{port2}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    let err = b.fails(&[
        "run",
        "-d",
        "--name",
        "second",
        "-p",
        &format!("{port2}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn fifty_concurrent_runs_then_fifty_concurrent_removals() {
    let b = with_busybox();
    let n = 50;
    let children: Vec<_> = (0..n)
        .map(|i| {
            b.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/var/www",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    let running = b.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), n);
    // Each one is reachable on its own address.
    let mut addresses = std::collections::HashSet::new();
    for i in 0..n {
        let s = inspect(&b, &format!("c{i}"));
        let ip = s["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        let body = eventually(Duration::from_secs(5), || http_get(&format!("{ip}:80")));
        assert_eq!(body.as_deref(), Some("hello from berth\n"), "c{i} at {ip}");
        addresses.insert(ip);
    }
    assert_eq!(addresses.len(), n, "addresses are distinct");
    let removals: Vec<_> = ids
        .iter()
        .map(|id| {
            b.cmd(&["rm", "-f", id])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut r in removals {
        assert!(r.wait().unwrap().success());
    }
    assert!(b.ok(&["ps", "-aq"]).is_empty());
    for id in &ids {
        assert_nothing_left(&b, id);
    }
}
