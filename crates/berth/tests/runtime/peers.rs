//! Podman and containerd using berth-runc as their OCI runtime, each with private state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::harness::Runc;
use crate::support::{fixture, require_tool, TempDir};

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Lazily unmounts everything mounted below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

/// Kills every process whose command line mentions `needle` (the peers' shims and
/// conmons carry our private paths in their arguments).
fn kill_mentioning(needle: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

struct Podman {
    dir: TempDir,
    runc: Runc,
}

impl Podman {
    fn new() -> Self {
        require_tool("podman");
        let dir = TempDir::new("podman");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        let p = Self {
            dir,
            runc: Runc::new(),
        };
        let out = p.run(&["load", "-i", fixture("busybox.oci.tar").to_str().unwrap()]);
        assert!(out.status.success(), "podman load: {}", text(&out));
        let images = p.run(&["images", "-q"]);
        let id = String::from_utf8_lossy(&images.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let out = p.run(&["tag", &id, "localhost/busybox:test"]);
        assert!(out.status.success(), "podman tag: {}", text(&out));
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(&self.runc.bin)
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podman {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t", "0"]);
        kill_mentioning(self.dir.path().to_str().unwrap());
        unmount_below(self.dir.path());
    }
}

#[test]
fn podman_runs_containers_with_berth_runc() {
    let p = Podman::new();
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox:test",
        "sh",
        "-c",
        "echo hello $(id -u)",
    ]);
    assert_eq!(out.trim(), "hello 0");
    let out = p.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox:test",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    p.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "localhost/busybox:test",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    let out = p.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo exec $(cat /proc/1/cmdline | tr '\\0' ' ')",
    ]);
    assert!(out.starts_with("exec sh -c echo started"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.ok(&["logs", "web"]).contains("started") {
        assert!(Instant::now() < deadline, "no log line from the container");
        std::thread::sleep(Duration::from_millis(50));
    }
    p.ok(&["stop", "-t", "5", "web"]);
    assert!(p.ok(&["logs", "web"]).contains("bye"));
    let state = p.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state.trim(), "exited 0");
    p.ok(&["rm", "web"]);
    assert_eq!(p.ok(&["ps", "-aq"]).trim(), "");
    // Podman's state for berth-runc lives in the root it passed; nothing is left there.
    assert!(p.runc.state_entries().is_empty());
}

struct Containerd {
    dir: TempDir,
    child: Child,
    runc: Runc,
}

impl Containerd {
    fn start() -> Self {
        require_tool("containerd");
        require_tool("ctr");
        let dir = TempDir::new("containerd");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"{debug}\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            debug = d.join("debug.sock").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
            .spawn()
            .expect("start containerd");
        let c = Self {
            dir,
            child,
            runc: Runc::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = c.ctr(&[
            "image",
            "import",
            fixture("busybox.oci.tar").to_str().unwrap(),
        ]);
        assert!(out.status.success(), "ctr image import: {}", text(&out));
        let name = String::from_utf8_lossy(&c.ctr(&["images", "ls", "-q"]).stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let out = c.ctr(&["image", "tag", &name, "docker.io/library/busybox:test"]);
        assert!(out.status.success(), "ctr image tag: {}", text(&out));
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.sock())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(out.status.success(), "ctr {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--runtime",
            "io.containerd.runc.v2",
            "--runc-binary",
            self.runc.bin.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", "detached"]);
        let _ = self.ctr(&["task", "rm", "-f", "detached"]);
        let _ = self.ctr(&["container", "rm", "detached"]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_mentioning(self.sock().to_str().unwrap());
        unmount_below(self.dir.path());
    }
}

#[test]
fn containerd_runs_tasks_with_berth_runc() {
    let c = Containerd::start();
    let out = c.ok(&c.run_args(&[
        "--rm",
        "docker.io/library/busybox:test",
        "once",
        "sh",
        "-c",
        "echo hello-ctr $$",
    ]));
    assert_eq!(out.trim(), "hello-ctr 1");
    c.ok(&c.run_args(&[
        "-d",
        "docker.io/library/busybox:test",
        "detached",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ]));
    let exec = c.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "detached",
        "sh",
        "-c",
        "echo exec-ok",
    ]);
    assert_eq!(exec.trim(), "exec-ok");
    c.ok(&["task", "kill", "detached"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c
        .ok(&["task", "ls"])
        .lines()
        .any(|l| l.starts_with("detached") && l.contains("STOPPED"))
    {
        assert!(
            Instant::now() < deadline,
            "the task did not stop: {}",
            c.ok(&["task", "ls"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.ok(&["task", "rm", "detached"]);
    c.ok(&["container", "rm", "detached"]);
}
