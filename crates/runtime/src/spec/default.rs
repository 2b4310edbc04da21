//! The example configuration `berth-runc spec` writes: the same container `runc spec`
//! describes (a `sh` on a terminal, three capabilities, a read-only busybox-style rootfs),
//! and its rootless variant (`--rootless`).

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(source.into()),
        options: strings(options),
    }
}

/// `runc spec`'s configuration.
pub fn default_spec() -> Spec {
    let caps = strings(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    Spec {
        oci_version: OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            user: User::default(),
            args: strings(&["sh"]),
            env: strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: Some(caps.clone()),
                effective: Some(caps.clone()),
                inheritable: None,
                permitted: Some(caps.clone()),
                ambient: Some(caps),
            }),
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Process::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("runc".into()),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Some(Linux {
            resources: Some(Resources {
                devices: vec![DeviceRule {
                    allow: false,
                    access: Some("rwm".into()),
                    ..DeviceRule::default()
                }],
                ..Resources::default()
            }),
            namespaces: ["pid", "network", "ipc", "uts", "mount"]
                .iter()
                .map(|k| Namespace {
                    kind: k.to_string(),
                    path: None,
                })
                .collect(),
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
            ..Linux::default()
        }),
        ..Spec::default()
    }
}

/// `runc spec --rootless`: a user namespace mapping the caller to root, no network
/// namespace, sysfs bound from the host and no cgroup limits.
pub fn rootless_spec(uid: u32, gid: u32) -> Spec {
    let mut spec = default_spec();
    let linux = spec.linux.get_or_insert_with(Linux::default);
    linux.resources = None;
    linux.namespaces.retain(|n| n.kind != "network");
    linux.namespaces.push(Namespace {
        kind: "user".into(),
        path: None,
    });
    linux.uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: uid,
        size: 1,
    }];
    linux.gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: gid,
        size: 1,
    }];
    spec.mounts.retain(|m| m.destination != "/sys/fs/cgroup");
    for m in &mut spec.mounts {
        if m.destination == "/sys" {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
        }
        // The gid=5 option needs a mapped tty group, which a single-id mapping lacks.
        m.options.retain(|o| o != "gid=5");
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_matches_runc_layout() {
        let spec = default_spec();
        spec.validate().unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        let order = [
            "ociVersion",
            "process",
            "root",
            "hostname",
            "mounts",
            "linux",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["process"]["capabilities"].get("inheritable"), None);
        assert_eq!(v["linux"]["resources"]["devices"][0]["access"], "rwm");
    }

    #[test]
    fn rootless_spec_maps_the_caller_and_drops_the_network_namespace() {
        let spec = rootless_spec(1000, 1000);
        spec.validate().unwrap();
        let linux = spec.linux.unwrap();
        assert!(linux.namespaces.iter().all(|n| n.kind != "network"));
        assert_eq!(linux.uid_mappings[0].host_id, 1000);
    }
}
