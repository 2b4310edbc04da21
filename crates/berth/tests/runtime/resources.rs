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

/// Pure cgroup v2, as most hosts run it: berth-runc in a mount namespace where
/// /sys/fs/cgroup is only the cgroup2 hierarchy (this machine's holds hugetlb).
#[test]
fn cgroup_v2_alone_is_driven_through_the_unified_tree() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("v2only");
    let leaf = format!("berth-test-v2/{id}");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = format!("/{leaf}").into();
        c["linux"]["resources"]["hugepageLimits"] =
            serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]);
    });
    let r = |args: &str| {
        format!(
            "{} --root {} {args}",
            runc.bin.display(),
            runc.root.display()
        )
    };
    let script = format!(
        "set -e; umount -R /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup
         {run}; cat /sys/fs/cgroup/{leaf}/hugetlb.2MB.max; {ps}; {pause}; {state} | grep -o paused
         {resume}; {exec} | grep -c '^0::/{leaf}$'; {delete}; test ! -e /sys/fs/cgroup/{leaf} && echo removed",
        // The detached container must not hold our stdout pipe open.
        run = r(&format!("run -d --bundle {} {id} >/dev/null 2>{}/run.err", b.arg(), runc.dir.path().display())),
        ps = r(&format!("ps --format json {id}")),
        pause = r(&format!("pause {id}")),
        state = r(&format!("state {id}")),
        resume = r(&format!("resume {id}")),
        exec = r(&format!("exec {id} cat /proc/self/cgroup")),
        delete = r(&format!("delete --force {id}")),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "4194304");
    assert!(lines[1].starts_with('[') && lines[1].len() > 2, "{stdout}");
    assert_eq!(&lines[2..], ["paused", "1", "removed"], "{stdout}");
    assert!(cgroup_dirs_named(&id).is_empty());
}
