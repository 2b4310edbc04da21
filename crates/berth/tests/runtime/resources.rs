//! cgroup limits (v1 here, v2 where the machine has it), rlimits, and cgroup cleanup.

use super::harness::{cgroup_dirs_named, cgroup_of, id, Bundle, Runc};

#[test]
fn cgroup_limits_are_written_and_removed_on_delete() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("cglimits");
    b.edit(|c| {
        c["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 67108864, "reservation": 33554432});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 42});
        c["linux"]["resources"]["cpu"] =
            serde_json::json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
        c["linux"]["cgroupsPath"] = format!("/berth-test/{id}").into();
    });
    runc.ok(&["run", "-d", "--bundle", b.arg(), &id]);
    let pid = runc.state(&id)["pid"].as_i64().unwrap();
    let v2 = !std::path::Path::new("/sys/fs/cgroup/memory").exists();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(cgroup_of(pid, ctrl).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    if v2 {
        assert_eq!(read("", "memory.max"), "67108864");
        assert_eq!(read("", "pids.max"), "42");
        assert_eq!(read("", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory", "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read("pids", "pids.max"), "42");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpuset", "cpuset.cpus"), "0");
        assert!(cgroup_of(pid, "memory").ends_with(format!("berth-test/{id}")));
    }
    // The container sees its own limits through the cgroup mount.
    let inside = runc.ok(&[
        "exec",
        &id,
        "cat",
        if v2 {
            "/sys/fs/cgroup/pids.max"
        } else {
            "/sys/fs/cgroup/pids/pids.max"
        },
    ]);
    assert_eq!(inside.trim(), "42");
    // update
    runc.ok(&["update", "--pids-limit", "43", "--memory", "100000000", &id]);
    if !v2 {
        assert_eq!(read("pids", "pids.max"), "43");
        assert_eq!(read("memory", "memory.limit_in_bytes"), "99999744");
    }
    let stats: serde_json::Value =
        serde_json::from_str(&runc.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    assert!(stats["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    runc.ok(&["delete", "--force", &id]);
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_named(&id)
    );
}

#[test]
fn rlimits_apply_and_are_clamped_to_the_hard_limit() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    let host_hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .unwrap();
    b.edit(|c| {
        c["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": host_hard + 1_000_000},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    });
    let out = runc.run(&["run", "--bundle", b.arg(), &id("rlimit")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "1000");
    // Root here lacks CAP_SYS_RESOURCE: the hard limit stays the host's.
    let hard: u64 = lines[1].parse().unwrap();
    assert!(hard == host_hard || hard == host_hard + 1_000_000, "{hard}");
    assert_eq!(lines[2], "0");
}

#[test]
fn seccomp_profile_denies_with_the_configured_errno() {
    let runc = Runc::new();
    let b = Bundle::new(
        &runc,
        &["sh", "-c", "mkdir /denied && echo made || echo refused"],
    );
    b.edit(|c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        });
    });
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("seccomp")]);
    assert_eq!(out.trim(), "refused");
    assert!(!b.rootfs().join("denied").exists());
}

#[test]
fn capabilities_and_user_follow_the_config() {
    let runc = Runc::new();
    let b = Bundle::new(
        &runc,
        &[
            "sh",
            "-c",
            "id -u; id -g; id -G; grep -E 'Cap(Eff|Bnd)|NoNewPrivs' /proc/self/status; umask",
        ],
    );
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 63});
        let caps = serde_json::json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps,
        });
    });
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("caps")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["1000", "1000"]);
    assert_eq!(lines[2], "1000 5 6");
    // CAP_KILL (5) and CAP_NET_BIND_SERVICE (10): 0x420, raised as ambient for uid 1000.
    assert!(lines.contains(&"CapEff:\t0000000000000420"), "{out}");
    assert!(lines.contains(&"CapBnd:\t0000000000000420"), "{out}");
    assert!(lines.contains(&"NoNewPrivs:\t1"), "{out}");
    assert_eq!(lines.last().unwrap().trim(), "0077");
}
