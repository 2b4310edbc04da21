//! Regression tests for the container escapes runtimes have had, named after what they
//! guard.

use super::harness::{id, Bundle, Runc};

fn sha256(path: &std::path::Path) -> String {
    crate::support::sha256_hex(&std::fs::read(path).unwrap())
}

/// CVE-2019-5736: a process in the container keeps a handle on the runtime binary
/// (`/proc/1/exe` while pid 1 is still the runtime's init) and, once no runtime process
/// runs any more, reopens it for writing to replace the host's runtime.
#[test]
fn runtime_binary_cannot_be_overwritten_from_container() {
    // A private copy, so no other test keeps the binary busy (that would make the write
    // fail with ETXTBSY whatever the runtime does).
    let (runc, binary) = Runc::with_private_binary();
    let before = sha256(&binary);
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("cve-2019-5736");
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    let attack = "exec 3</proc/1/exe || exit 1; tr '\\0' ' ' < /proc/1/cmdline > /pid1-was; \
        while grep -q berth /proc/1/cmdline; do sleep 0.05; done; sleep 0.3; \
        (echo pwned >> /proc/self/fd/3) 2> /attack-err && echo WROTE > /attack-out; echo done >> /attack-out";
    runc.ok(&[
        "exec",
        "--detach",
        "--cap",
        "CAP_SYS_PTRACE",
        &id,
        "sh",
        "-c",
        attack,
    ]);
    // The attack must hold its handle while pid 1 is still the runtime's init: start only
    // once it has looked (exec --detach returns before the shell has run a command).
    super::harness::eventually("the attack to look at pid 1", || {
        std::fs::metadata(b.rootfs().join("pid1-was")).is_ok_and(|m| m.len() > 0)
    });
    runc.ok(&["start", &id]);
    super::harness::eventually("the attack to finish", || {
        std::fs::read_to_string(b.rootfs().join("attack-out")).is_ok_and(|s| s.contains("done"))
    });
    let pid1 = std::fs::read_to_string(b.rootfs().join("pid1-was")).unwrap();
    assert_eq!(
        pid1.trim(),
        "berth-runc init",
        "pid 1 was not the runtime's init"
    );
    let out = std::fs::read_to_string(b.rootfs().join("attack-out")).unwrap();
    let err = std::fs::read_to_string(b.rootfs().join("attack-err")).unwrap();
    assert!(
        !out.contains("WROTE"),
        "the container wrote to the runtime binary"
    );
    // Refused because the handle leads to a sealed or read-only copy, not because the
    // binary happened to be busy.
    assert!(
        err.contains("Read-only file system") || err.contains("Operation not permitted"),
        "{err}"
    );
    runc.ok(&["delete", "--force", &id]);
    assert_eq!(sha256(&binary), before);
}

/// CVE-2024-21626: a working directory reached through an fd the runtime leaked
/// (`/proc/self/fd/N`) would put the container's process in the host's filesystem.
#[test]
fn working_directory_cannot_point_outside_the_rootfs() {
    let runc = Runc::new();
    for n in 3..10 {
        let b = Bundle::new(&runc, &["sh", "-c", "ls .. > /dev/null; echo ESCAPED"]);
        let cwd = format!("/proc/self/fd/{n}");
        b.edit(|c| c["process"]["cwd"] = cwd.clone().into());
        let out = runc.run(&["run", "--bundle", b.arg(), &id(&format!("cwd{n}"))]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("ESCAPED"), "cwd {cwd}: {stdout}");
        assert!(!out.status.success(), "cwd {cwd} was accepted");
    }
    assert!(runc.state_entries().is_empty());
}

/// CVE-2024-21626, second half: nothing but stdio (and what `--preserve-fds` names)
/// reaches the container process, from `run` or `exec`.
#[test]
fn no_host_file_descriptor_leaks_into_container() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sh", "-c", "ls /proc/1/fd; sleep 100"]);
    let id = id("fds");
    runc.ok(&["run", "-d", "--bundle", b.arg(), &id]);
    let pid_file = runc.dir.path().join("exec.pid");
    runc.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert_eq!(fds, 3, "the exec'd process holds more than stdio");
    // The init (sh, pid 1) holds its stdio and nothing else.
    let init_fds = runc.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "ls /proc/1/fd | sort -n | tr '\\n' ' '",
    ]);
    assert_eq!(init_fds.trim(), "0 1 2");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", runc.state(&id)["pid"]))
        .unwrap()
        .count();
    assert_eq!(fds, 3, "the container init holds more than stdio");
    runc.ok(&["delete", "--force", &id]);
}

/// CVE-2021-30465: a mount destination that is (or passes through) a symlink pointing
/// out of the rootfs lands inside the rootfs.
#[test]
fn symlink_mount_target_cannot_escape_the_rootfs() {
    let runc = Runc::new();
    let outside = crate::support::TempDir::new("outside");
    let source = crate::support::TempDir::new("source");
    std::fs::write(source.path().join("marker"), "mounted").unwrap();
    let b = Bundle::new(
        &runc,
        &["sh", "-c", "cat /evil/marker; cat /evil2/sub/marker"],
    );
    std::os::unix::fs::symlink(outside.path(), b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", b.rootfs().join("evil2")).unwrap();
    let src = source.path().to_str().unwrap().to_string();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({"destination": "/evil", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
        mounts.push(serde_json::json!({"destination": "/evil2/sub", "type": "bind", "source": src, "options": ["rbind"]}));
    });
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("cve-2021-30465")]);
    assert_eq!(out, "mountedmounted");
    // The targets were created inside the rootfs, and nothing appeared on the host side.
    let inside = b.rootfs().join(outside.path().strip_prefix("/").unwrap());
    assert!(inside.is_dir(), "{inside:?} was not created in the rootfs");
    assert!(b.rootfs().join("sub").is_dir());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!std::path::Path::new("/sub").exists());
}

#[test]
fn sensitive_proc_and_sys_paths_are_masked() {
    let runc = Runc::new();
    // Files masked with /dev/null read empty; directories get an empty read-only tmpfs.
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect();
    assert!(
        !files.is_empty(),
        "none of the masked /proc files exists on this host"
    );
    let script = format!(
        "for f in {}; do wc -c < $f; done; ls /sys/firmware | wc -l; touch /sys/firmware/x || echo fwro; \
         echo x > /proc/sysrq-trigger || echo ro; echo 1 > /proc/sys/kernel/panic || echo sysro; touch /sys/x || echo sysfsro",
        files.join(" ")
    );
    let b = Bundle::new(&runc, &["sh", "-c", &script]);
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("masked")]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut want = vec!["0"; files.len() + 1];
    want.extend(["fwro", "ro", "sysro", "sysfsro"]);
    assert_eq!(lines, want, "{out}");
}
