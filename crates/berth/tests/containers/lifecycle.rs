use std::process::Stdio;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn attached_run_returns_the_exit_code_and_streams_output() {
    let b = with_busybox();
    let out = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // --rm: gone once `run` returns.
    assert!(b.ok(&["ps", "-aq"]).is_empty());
}

#[test]
fn stdin_reaches_the_container_with_interactive() {
    let b = with_busybox();
    let mut child = b
        .cmd(&["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\n");
}

#[test]
fn detached_container_logs_exec_stop_and_rm() {
    let b = with_busybox();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = b.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");

    // logs -f streams while it runs.
    let mut follow = b
        .cmd(&["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut lines = Vec::new();
    use std::io::BufRead;
    for _ in 0..5 {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        lines.push(l);
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(lines.iter().all(|l| l.starts_with("tick ")), "{lines:?}");
    let tail = b.ok(&["logs", "--tail", "2", "ticker"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");

    // exec runs inside the container's namespaces.
    let out = b.ok(&[
        "exec",
        "ticker",
        "sh",
        "-c",
        "hostname; ps -o pid,comm | grep -c sh",
    ]);
    assert!(out.starts_with(&id[..12]), "{out}");

    // stop returns within its timeout: sh as PID 1 ignores SIGTERM, so this is the kill.
    let start = Instant::now();
    b.ok(&["stop", "-t", "1", "ticker"]);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
    let state = inspect(&b, "ticker");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 137);

    b.ok(&["rm", "ticker"]);
    assert_nothing_left(&b, &id);
}

#[test]
fn oom_kill_shows_as_137_and_in_inspect() {
    let b = with_busybox();
    let out = b.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = inspect(&b, "hog");
    assert_eq!(state["State"]["OOMKilled"], true, "{state}");
    assert_eq!(state["HostConfig"]["Memory"], 64 << 20);
}

#[test]
fn pids_and_cpu_limits_are_applied() {
    let b = with_busybox();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "busybox",
            "sleep",
            "30",
        ])
        .trim()
        .to_string();
    let pids = ["/sys/fs/cgroup/pids/berth", "/sys/fs/cgroup/berth"]
        .iter()
        .map(|d| std::path::Path::new(d).join(&id).join("pids.max"))
        .find(|p| p.exists())
        .expect("pids cgroup of the container");
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "20");
    // Forking past the limit fails inside.
    let out = b.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 40); do sleep 5 & done; wait",
    ]);
    assert!(
        !out.status.success() || String::from_utf8_lossy(&out.stderr).contains("fork"),
        "{out:?}"
    );
    b.ok(&["rm", "-f", &id]);
    assert_nothing_left(&b, &id);
}

#[test]
fn restart_on_failure_retries_then_gives_up() {
    let b = with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    let done = eventually(Duration::from_secs(10), || {
        let s = inspect(&b, "flaky");
        (s["State"]["Status"] == "exited" && s["RestartCount"] == 2).then_some(s)
    });
    let s = done.expect("two restarts then exited");
    assert_eq!(s["State"]["ExitCode"], 3);
    assert_eq!(b.ok(&["wait", "flaky"]).trim(), "3");
}

#[test]
fn named_volume_outlives_its_container() {
    let b = with_busybox();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data:ro",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "persisted\n");
    let err = b.fails(&[
        "run",
        "--rm",
        "-v",
        "keep:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/f",
    ]);
    assert!(err.contains("Read-only"), "{err}");
    let ls = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(ls.trim(), "keep");
    b.ok(&["volume", "rm", "keep"]);
}

#[test]
fn killed_supervisor_is_reported_exited_and_rm_cleans_up() {
    let b = with_busybox();
    let id = b
        .ok(&["run", "-d", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            b.root
                .path()
                .join("containers")
                .join(&id)
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sup = state["supervisor_pid"].as_i64().unwrap();
    let init = state["pid"].as_i64().unwrap();
    run_ok(std::process::Command::new("kill").args(["-9", &sup.to_string()]));
    let s = eventually(Duration::from_secs(5), || {
        let s = inspect(&b, &id);
        (s["State"]["Status"] == "exited").then_some(s)
    })
    .expect("reported exited after its supervisor died");
    assert_eq!(s["State"]["Running"], false);
    // Gone, or a zombie waiting for a parent that does not reap (not running either way).
    let running = || {
        std::fs::read_to_string(format!("/proc/{init}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
                    .map(|zombie| !zombie)
            })
            .unwrap_or(false)
    };
    assert!(
        eventually(Duration::from_secs(3), || (!running()).then_some(())).is_some(),
        "the container's process outlived its supervisor"
    );
    b.ok(&["rm", &id]);
    assert_nothing_left(&b, &id);
}

#[test]
fn host_and_none_networks() {
    let b = with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "only lo in a none network: {out}");
    assert!(out.contains("lo:") && out.contains("UP"), "{out}");
    // The host network is the host's own namespace (other tests add and remove links
    // meanwhile, so compare the namespace, not the list of links).
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(out.trim(), host_ns.to_str().unwrap());
    let out = b.ok(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/net"]);
    assert_ne!(
        out.trim(),
        host_ns.to_str().unwrap(),
        "the bridge network has its own namespace"
    );
}

#[test]
fn init_forwards_signals_and_returns_the_exit_code() {
    let b = with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(
        out.starts_with("/dev/init -- sh"),
        "PID 1 is the init: {out}"
    );
    let code = b
        .run(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 4"])
        .status
        .code();
    assert_eq!(code, Some(4));
    // `sleep` as PID 1 would ignore SIGTERM until the kill; behind the init it stops at once.
    b.ok(&[
        "run", "-d", "--name", "sleeper", "--init", "busybox", "sleep", "300",
    ]);
    let start = Instant::now();
    b.ok(&["stop", "-t", "10", "sleeper"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        start.elapsed()
    );
    assert_eq!(inspect(&b, "sleeper")["State"]["ExitCode"], 143);
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let b = with_busybox();
    b.ok(&["create", "--name", "user", "busybox", "echo", "still here"]);
    let err = b.fails(&["rmi", "busybox"]);
    assert!(err.contains("is used by container"), "{err}");
    // Forced: untagged, but the container keeps its layers and still runs.
    let out = b.ok(&["rmi", "-f", "busybox"]);
    assert!(
        out.contains("Untagged: busybox:latest") && !out.contains("Deleted"),
        "{out}"
    );
    let out = b.ok(&["start", "-a", "user"]);
    assert_eq!(out, "still here\n");
    // Once the container is gone, prune frees the image.
    b.ok(&["rm", "user"]);
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(b.store_entries("layers").is_empty());
}

#[test]
fn run_options_reach_the_process() {
    let b = with_busybox();
    let dir = TempDir::new("envfile");
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = b.ok(&[
        "run", "--rm", "-u", "65534", "-w", "/tmp", "--hostname", "box1", "-e", "A=1",
        "--env-file", env_file.to_str().unwrap(), "--label", "team=infra", "--read-only", "--tmpfs", "/tmp",
        "busybox", "sh", "-c", "id -u; pwd; hostname; echo $A $FROM_FILE; touch /tmp/ok && echo tmp-writable; touch /etc/x 2>&1 || echo root-readonly",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..5],
        ["65534", "/tmp", "box1", "1 yes", "tmp-writable"],
        "{out}"
    );
    assert!(out.contains("root-readonly"), "{out}");

    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]);
    assert_eq!(out, "from entrypoint\n");
}

#[test]
fn default_security_and_privileged() {
    let b = with_busybox();
    let caps = |args: &[&str]| -> u64 {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sh", "-c", "grep CapEff /proc/self/status"]);
        let out = b.ok(&a);
        u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let default = caps(&[]);
    assert_eq!(
        default.count_ones(),
        14,
        "Docker's default set: {default:x}"
    );
    assert_eq!(default & (1 << 21), 0, "no CAP_SYS_ADMIN by default");
    assert_ne!(caps(&["--cap-add", "SYS_ADMIN"]) & (1 << 21), 0);
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    assert!(caps(&["--privileged"]).count_ones() >= 38);

    // Masked paths (one that this kernel has) and the default seccomp filter.
    let masked = [
        "/proc/timer_list",
        "/proc/keys",
        "/proc/sched_debug",
        "/proc/kcore",
    ]
    .into_iter()
    .find(|p| std::fs::read(p).is_ok_and(|c| !c.is_empty()))
    .expect("the host has a masked /proc file with content");
    let script = format!("wc -c < {masked}; unshare -n true 2>/dev/null || echo denied");
    let out = b.ok(&["run", "--rm", "busybox", "sh", "-c", &script]);
    assert_eq!(
        out, "0\ndenied\n",
        "{masked} is masked and unshare is refused"
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "unshare -n true && echo allowed",
    ]);
    assert_eq!(out, "allowed\n");
    // Adding CAP_SYS_ADMIN gives back the syscalls it guards, as in Docker.
    let out = b.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        "unshare -n true && echo allowed",
    ]);
    assert_eq!(out, "allowed\n");
}

#[test]
fn publish_all_restart_rename_and_prune() {
    let b = with_busybox();
    let id = b
        .ok(&["run", "-d", "--name", "old", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    b.ok(&["rename", "old", "new"]);
    assert_eq!(inspect(&b, "new")["Id"], id.as_str());
    let before = inspect(&b, "new")["State"]["StartedAt"].clone();
    b.ok(&["restart", "-t", "1", "new"]);
    let after = inspect(&b, "new");
    assert_eq!(after["State"]["Status"], "running");
    assert_ne!(after["State"]["StartedAt"], before);
    b.ok(&["stop", "-t", "0", "new"]);
    b.ok(&["create", "busybox", "true"]);
    let out = b.ok(&["container", "prune", "-f"]);
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    assert!(b.ok(&["ps", "-aq"]).is_empty());
}

#[test]
fn run_pulls_a_missing_image_first() {
    let reg = Registry::start();
    let image = reg.seed("busybox.oci.tar", "library/busybox:1");
    let b = Berth::new();
    let out = b.run(&["run", "--rm", &image, "echo", "pulled and ran"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled and ran\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to find image"));
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    let err = b.fails(&[
        "run",
        "--rm",
        "--pull",
        "never",
        &reg.reference("library/other:1"),
        "true",
    ]);
    assert!(err.contains("no such image"), "{err}");
}

/// A tmux session killed when dropped.
struct Tmux(String);

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn interactive_tty_is_a_real_pty_that_follows_resizes() {
    let tmux = require_tool("tmux");
    let b = with_busybox();
    let session = Tmux(format!("berth-tty-{}", std::process::id()));
    let berth = format!(
        "env BERTH_BRIDGE={} BERTH_SUBNET=10.{}.0.0/24 BERTH_NFT_TABLE={} {} --root {} --run-root {} run --rm -it busybox sh; sleep 30",
        b.bridge,
        b.subnet_octet,
        b.nft_table,
        env!("CARGO_BIN_EXE_berth"),
        b.root.path().display(),
        b.run_root.path().display()
    );
    run_ok(std::process::Command::new(&tmux).args([
        "new-session",
        "-d",
        "-s",
        &session.0,
        "-x",
        "100",
        "-y",
        "20",
        &berth,
    ]));
    let screen = || {
        run_ok(std::process::Command::new("tmux").args(["capture-pane", "-p", "-t", &session.0]))
    };
    let keys = |k: &str| {
        run_ok(std::process::Command::new("tmux").args(["send-keys", "-t", &session.0, k, "Enter"]))
    };
    assert!(
        eventually(Duration::from_secs(10), || screen()
            .contains("/ #")
            .then_some(()))
        .is_some(),
        "no prompt: {}",
        screen()
    );
    keys("tty; stty size");
    assert!(
        eventually(Duration::from_secs(5), || (screen().contains("/dev/pts/0")
            && screen().contains("20 100"))
        .then_some(()))
        .is_some(),
        "{}",
        screen()
    );
    run_ok(std::process::Command::new("tmux").args([
        "resize-window",
        "-t",
        &session.0,
        "-x",
        "80",
        "-y",
        "15",
    ]));
    std::thread::sleep(Duration::from_millis(600));
    keys("stty size");
    assert!(
        eventually(Duration::from_secs(5), || screen()
            .contains("15 80")
            .then_some(()))
        .is_some(),
        "{}",
        screen()
    );
    keys("exit");
}

#[test]
fn logs_since_and_timestamps() {
    let b = with_busybox();
    b.ok(&[
        "run",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 1.2; echo second",
    ]);
    let all = b.ok(&["logs", "-t", "talker"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert!(
        lines[0].ends_with(" first") && lines[0].contains('T'),
        "{all}"
    );
    // The second line's own timestamp as --since keeps only it.
    let since = lines[1].split(' ').next().unwrap();
    assert_eq!(b.ok(&["logs", "--since", since, "talker"]), "second\n");
    assert_eq!(
        b.ok(&["logs", "--since", "1h", "talker"]),
        "first\nsecond\n"
    );
    let err = b.fails(&["logs", "--since", "yesterday-ish", "talker"]);
    assert!(err.contains("invalid --since"), "{err}");
}

#[test]
fn stats_samples_once_or_streams_and_top_lists_processes() {
    let b = with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    let once = b.ok(&["stats", "--no-stream", "busy"]);
    let row = once.lines().nth(1).expect("a row");
    assert!(row.contains("busy") && row.contains("/ 64MiB"), "{once}");
    let cpu: f64 = row
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 20.0, "a busy loop shows CPU use: {once}");
    // Without --no-stream it keeps printing tables.
    let mut child = b
        .cmd(&["stats", "busy"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    use std::io::BufRead;
    let mut headers = 0;
    let mut line = String::new();
    while headers < 2 && reader.read_line(&mut line).unwrap() > 0 {
        headers += usize::from(line.contains("CONTAINER ID"));
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(headers, 2, "two samples streamed");
    let top = b.ok(&["top", "busy"]);
    assert!(top.contains("while true"), "{top}");
}

#[test]
fn attach_follows_output_and_returns_the_exit_code() {
    let b = with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; for i in 1 2 3; do echo tick $i; echo tock $i >&2; sleep 0.2; done; exit 6",
    ]);
    let out = b.run(&["attach", "chatty"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tick 3"),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tock 3"),
        "{out:?}"
    );
    let err = b.fails(&["attach", "chatty"]);
    assert!(
        err.contains("cannot attach to a stopped container"),
        "{err}"
    );
}
