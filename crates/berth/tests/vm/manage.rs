//! Managing running guests: published ports, the interactive console, suspend/resume,
//! snapshots, disk resizing, VNC, autostart and a tap on a bridge.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use super::*;

#[test]
fn port_console_suspend_and_resume() {
    let env = VmEnv::new();
    let port = free_port();
    let fwd = format!("127.0.0.1:{port}:80");
    env.create_kernel_vm("svc", "acpi", &["--port", &fwd]);
    env.wait_console("svc", "BERTH-WAITING");

    // The guest's web server answers on the forwarded host port.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.contains("berth guest"), "{body}");

    // The console, through a real terminal (script(1) gives berth a pty): a command runs
    // in the guest's shell, then Ctrl-] detaches and the guest keeps running.
    let script = require_tool("script");
    let cmd = format!(
        "{} --root {} --run-root {} vm console svc",
        env!("CARGO_BIN_EXE_berth"),
        env.root.path().display(),
        env.run.path().display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let seen = |needle: &str| String::from_utf8_lossy(&output.lock().unwrap()).contains(needle);
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while !seen("Escape character is ^]") {
        assert!(Instant::now() < deadline, "no console banner");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Until the shell answers (the first keystrokes may race its prompt).
    while !seen("hello-42") {
        stdin.write_all(b"echo hello-$((6*7))\r").unwrap();
        stdin.flush().unwrap();
        assert!(
            Instant::now() < deadline,
            "the guest shell did not answer:\n{}",
            String::from_utf8_lossy(&output.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A second session is refused while this one is attached.
    let busy = env.run(&["vm", "console", "svc"]);
    assert!(!busy.status.success());
    stdin.write_all(&[0x1d]).unwrap();
    stdin.flush().unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(env.ok(&["vm", "domstate", "svc"]).trim(), "running");

    env.ok(&["vm", "suspend", "svc"]);
    assert_eq!(env.ok(&["vm", "domstate", "svc"]).trim(), "paused");
    assert!(env.ok(&["vm", "list"]).contains("paused"));
    env.ok(&["vm", "resume", "svc"]);
    assert_eq!(env.ok(&["vm", "domstate", "svc"]).trim(), "running");
    assert_eq!(
        env.fails(&["vm", "resume", "svc"]),
        "berth: domain svc is not paused"
    );
    assert!(env
        .fails(&["vm", "vnc", "svc"])
        .contains("has no VNC display"));
    env.ok(&["vm", "destroy", "svc"]);
}

#[test]
fn snapshots_disk_resize_vnc_and_autostart() {
    let env = VmEnv::new();
    // A raw disk refuses snapshots; qcow2 ones take them.
    env.create_kernel_vm(
        "raw",
        "poweroff",
        &["--disk", "size=1,format=raw", "--no-start"],
    );
    let err = env.fails(&["vm", "snapshot", "create", "raw", "s1"]);
    assert!(err.contains("internal snapshots need qcow2 disks"), "{err}");

    let vm = "snap";
    let out = env.ok(&[
        "vm",
        "create",
        "--name",
        vm,
        "--memory",
        "256",
        "--noautoconsole",
        "--disk",
        "size=1",
        "--kernel",
        &fixture("vmlinuz"),
        "--initrd",
        &fixture("initrd.gz"),
        "--extra-args",
        "console=ttyS0 quiet berth.mode=acpi",
        "--no-start",
    ]);
    assert!(out.contains("defined"), "{out}");
    let image = env.vm_dir(vm).join("snap.qcow2");

    // Shut off: disk-only snapshots through qemu-img; the disk grows offline.
    env.ok(&["vm", "snapshot", "create", vm, "offline"]);
    let out = env.ok(&["vm", "disk", "resize", vm, "--size", "2"]);
    assert!(out.contains("resized") && !out.contains("live"), "{out}");
    let err = env.fails(&["vm", "disk", "resize", vm, "--size", "1"]);
    assert!(err.contains("cannot shrink"), "{err}");

    // Running: a full snapshot with the machine state, and a live resize the guest sees.
    env.ok(&["vm", "start", vm]);
    env.wait_console(vm, "BERTH-WAITING");
    let vnc = env.ok(&["vm", "vnc", vm]);
    assert!(vnc.trim().starts_with("127.0.0.1:"), "{vnc}");
    env.ok(&["vm", "snapshot", "create", vm, "live"]);
    let out = env.ok(&["vm", "disk", "resize", vm, "--size", "3"]);
    assert!(out.contains("(live)"), "{out}");
    let info: serde_json::Value = serde_json::from_str(&crate::support::run_ok(
        Command::new("qemu-img")
            .args(["info", "-U", "--output=json"])
            .arg(&image),
    ))
    .unwrap();
    assert_eq!(info["virtual-size"], 3u64 << 30);
    let list = env.ok(&["vm", "snapshot", "list", vm]);
    assert!(
        list.contains("offline") && list.contains("shut off"),
        "{list}"
    );
    assert!(list.contains("live") && list.contains("running"), "{list}");

    // Reverting a stopped VM to the live snapshot brings it back running.
    env.ok(&["vm", "destroy", vm]);
    let out = env.ok(&["vm", "snapshot", "revert", vm, "live"]);
    assert!(out.contains("(running)"), "{out}");
    assert_eq!(env.ok(&["vm", "domstate", vm]).trim(), "running");
    env.ok(&["vm", "destroy", vm]);
    env.ok(&["vm", "snapshot", "revert", vm, "offline"]);
    env.ok(&["vm", "snapshot", "delete", vm, "live"]);
    let list = env.ok(&["vm", "snapshot", "list", vm]);
    assert!(!list.contains("live"), "{list}");
    assert_eq!(
        env.fails(&["vm", "snapshot", "revert", vm, "live"]),
        "berth: domain snap has no snapshot live"
    );

    // Autostart: marked VMs start with `start --autostart`.
    env.ok(&["vm", "autostart", vm]);
    assert!(env
        .ok(&["vm", "dominfo", vm])
        .contains("Autostart:      enable"));
    let out = env.ok(&["vm", "start", "--autostart"]);
    assert!(out.contains("Domain 'snap' started"), "{out}");
    assert!(!out.contains("'raw'"), "{out}");
    env.ok(&["vm", "destroy", vm]);

    // A standalone image.
    let extra = env.root.path().join("extra.raw");
    env.ok(&[
        "vm",
        "disk",
        "create",
        extra.to_str().unwrap(),
        "--size",
        "64M",
        "--format",
        "raw",
    ]);
    assert_eq!(std::fs::metadata(&extra).unwrap().len(), 64 << 20);
    let err = env.fails(&[
        "vm",
        "disk",
        "create",
        extra.to_str().unwrap(),
        "--size",
        "1",
    ]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn bridge_network_puts_a_tap_on_the_bridge() {
    let env = VmEnv::new();
    let ip = require_tool("ip");
    let bridge = format!("bbt{}", std::process::id() % 100_000);
    crate::support::run_ok(Command::new(&ip).args(["link", "add", &bridge, "type", "bridge"]));
    struct Bridge(PathBuf, String);
    impl Drop for Bridge {
        fn drop(&mut self) {
            let _ = Command::new(&self.0)
                .args(["link", "del", &self.1])
                .status();
        }
    }
    let _bridge = Bridge(ip.clone(), bridge.clone());

    let net = format!("bridge={bridge}");
    env.create_kernel_vm("bridged", "acpi", &["--network", &net]);
    let log = env.wait_console("bridged", "BERTH-WAITING");
    assert!(log.contains("BERTH-NET eth0"), "{log}");
    let info = env.ok(&["vm", "dominfo", "bridged"]);
    let tap = info
        .split_whitespace()
        .skip_while(|w| *w != "tap")
        .nth(1)
        .unwrap_or_else(|| panic!("no tap in dominfo:\n{info}"))
        .trim_end_matches(',')
        .to_string();
    let link = crate::support::run_ok(Command::new(&ip).args(["-o", "link", "show", &tap]));
    assert!(link.contains(&format!("master {bridge}")), "{link}");
    env.ok(&["vm", "destroy", "bridged"]);
    let gone = Command::new(&ip)
        .args(["link", "show", &tap])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!gone.success(), "tap {tap} outlived its VM");

    assert_eq!(
        env.fails(&[
            "vm",
            "create",
            "--name",
            "x",
            "--kernel",
            &fixture("vmlinuz"),
            "--network",
            "bridge=nosuchbr0",
            "--noautoconsole"
        ]),
        "berth: bridge nosuchbr0 does not exist"
    );
}
