//! Regression tests for the container escapes runtimes have had, named after what they
//! guard.

use super::harness::{id, Bundle, Runc};

fn sha256(path: &std::path::Path) -> String {
    crate::support::sha256_hex(&std::fs::read(path).unwrap())
}

/// CVE-2019-5736: a process in the container opens the runtime's binary through
/// `/proc/<pid>/exe` (here pid 1, the init waiting for `start`) and writes to it.
#[test]
fn runtime_binary_cannot_be_overwritten_from_container() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("cve-2019-5736");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_berth"));
    let before = sha256(binary);
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    let out = runc.run(&[
        "exec", "--cap", "CAP_SYS_PTRACE", &id, "sh", "-c",
        "cat /proc/1/cmdline; echo; echo pwned >> /proc/1/exe && echo WROTE; exec 3</proc/1/exe && echo pwned >> /proc/self/fd/3 && echo WROTE",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("berth-runc\0init") || stdout.starts_with("berth-runcinit"),
        "pid 1 is not the init: {stdout:?}"
    );
    assert!(
        !stdout.contains("WROTE"),
        "the container wrote to the runtime binary: {stdout} {stderr}"
    );
    // Refused by the read-only mount, not merely because the binary was busy.
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    runc.ok(&["delete", "--force", &id]);
    assert_eq!(sha256(binary), before);
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
    let out = runc
        .cmd(&["run", "-d", "--bundle", b.arg(), &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = runc.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "ls /proc/$$/fd | sort -n | tr '\\n' ' '",
    ]);
    assert_eq!(out.trim(), "0 1 2", "exec'd process holds more than stdio");
    let links = runc.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for f in /proc/1/fd/*; do readlink $f; done",
    ]);
    for l in links.lines() {
        assert!(
            l == "/dev/null"
                || l.starts_with("pipe:")
                || l.starts_with("/dev/pts")
                || l.starts_with("socket:"),
            "the init holds {l}"
        );
    }
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
    let b = Bundle::new(
        &runc,
        &["sh", "-c", "wc -c < /proc/kcore; ls /sys/firmware | wc -l; echo x > /proc/sysrq-trigger || echo ro; echo 1 > /proc/sys/kernel/panic || echo sysro; touch /sys/x || echo sysfsro"],
    );
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("masked")]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "ro", "sysro", "sysfsro"], "{out}");
}
