//! The OCI runtime spec for a container, built the way Docker builds it: Docker's default
//! capability set, masked and read-only /proc and /sys paths, a default seccomp filter,
//! /etc/hosts, /etc/resolv.conf and /etc/hostname bound in from the container's directory,
//! cgroup limits from `--memory`/`--cpus`/`--pids-limit`; `--privileged` lifts the
//! restrictions.

use std::path::{Path, PathBuf};

use berth_runtime::spec::{
    default_spec, Capabilities, Cpu, DeviceRule, Linux, Memory, Mount, Namespace, Pids, Resources,
    Root, Seccomp, SeccompSyscall, Spec, User,
};

use crate::caps::capabilities;
use crate::state::{ContainerConfig, MountKind};
use crate::user::ResolvedUser;

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls the default filter refuses with EPERM. Docker's profile is an allowlist of
/// ~350 syscalls; berth's default denies the ones that profile exists to keep from
/// containers (kernel modules, reboot, clock and keyring changes, tracing and BPF, raw I/O
/// ports, namespaces and mounts without CAP_SYS_ADMIN...). See docs/engine.md.
const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_mount",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "open_tree",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// How the container gets its network namespace.
#[derive(Debug, Clone)]
pub enum NetNs {
    /// A new, empty one (bridge networks are connected to it after create; `none`).
    New,
    /// The host's.
    Host,
}

/// A volume or bind mount resolved to a host path.
#[derive(Debug, Clone)]
pub struct ResolvedMount {
    pub kind: MountKind,
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

pub struct SpecInput<'a> {
    pub config: &'a ContainerConfig,
    pub user: &'a ResolvedUser,
    pub rootfs: &'a Path,
    /// Host files bound over /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub hosts: &'a Path,
    pub resolv_conf: &'a Path,
    pub hostname_file: &'a Path,
    pub mounts: &'a [ResolvedMount],
    pub netns: NetNs,
    pub cgroups_path: String,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn bind(dest: &str, source: &Path, readonly: bool) -> Mount {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".into());
    }
    Mount {
        destination: dest.into(),
        kind: Some("bind".into()),
        source: Some(source.display().to_string()),
        options,
    }
}

pub fn build(input: &SpecInput<'_>) -> Spec {
    let c = input.config;
    let mut spec = default_spec();
    spec.hostname = Some(c.hostname.clone());
    spec.root = Some(Root {
        path: input.rootfs.display().to_string(),
        readonly: c.read_only,
    });
    let caps = capabilities(c);
    let process = spec.process.get_or_insert_with(Default::default);
    process.terminal = c.tty;
    process.args = if c.init {
        [crate::bundle::INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(c.argv())
            .collect()
    } else {
        c.argv()
    };
    process.cwd = if c.working_dir.is_empty() {
        "/".into()
    } else {
        c.working_dir.clone()
    };
    process.env = environment(c, &input.user.home);
    process.user = User {
        uid: input.user.uid,
        gid: input.user.gid,
        umask: None,
        additional_gids: input.user.additional_gids.clone(),
    };
    process.capabilities = Some(Capabilities {
        bounding: Some(caps.clone()),
        effective: Some(caps.clone()),
        inheritable: None,
        permitted: Some(caps),
        ambient: None,
    });
    // Docker leaves rlimits and no_new_privileges to the daemon's defaults: inherited.
    process.rlimits.clear();
    process.no_new_privileges = false;

    // /sys read-write only when privileged; cgroups read-only always.
    for m in &mut spec.mounts {
        if m.destination == "/sys" && c.privileged {
            m.options.retain(|o| o != "ro");
        }
    }
    spec.mounts.push(bind("/etc/hosts", input.hosts, false));
    spec.mounts
        .push(bind("/etc/resolv.conf", input.resolv_conf, false));
    spec.mounts
        .push(bind("/etc/hostname", input.hostname_file, false));
    for m in input.mounts {
        match m.kind {
            MountKind::Tmpfs => spec.mounts.push(Mount {
                destination: m.target.clone(),
                kind: Some("tmpfs".into()),
                source: Some("tmpfs".into()),
                options: strings(&["nosuid", "nodev", "mode=1777"]),
            }),
            MountKind::Bind | MountKind::Volume => {
                spec.mounts.push(bind(&m.target, &m.source, m.readonly))
            }
        }
    }

    let linux = spec.linux.get_or_insert_with(Linux::default);
    linux.namespaces = ["pid", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|k| Namespace {
            kind: k.to_string(),
            path: None,
        })
        .collect();
    if matches!(input.netns, NetNs::New) {
        linux.namespaces.push(Namespace {
            kind: "network".into(),
            path: None,
        });
    }
    linux.cgroups_path = Some(input.cgroups_path.clone());
    if c.privileged {
        linux.masked_paths.clear();
        linux.readonly_paths.clear();
        linux.seccomp = None;
    } else {
        linux.masked_paths = strings(MASKED);
        linux.readonly_paths = strings(READONLY);
        linux.seccomp = Some(seccomp_for(&capabilities(c)));
    }
    linux.resources = Some(resources(c));
    spec
}

fn environment(c: &ContainerConfig, home: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    for e in &c.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if !has(&env, "PATH") {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", c.hostname));
    }
    if c.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn resources(c: &ContainerConfig) -> Resources {
    let r = &c.resources;
    let mut res = Resources {
        devices: device_rules(c.privileged),
        ..Resources::default()
    };
    if let Some(limit) = r.memory {
        // Docker: without --memory-swap, memory+swap may use twice the limit.
        res.memory = Some(Memory {
            limit: Some(limit),
            swap: Some(limit * 2),
            ..Memory::default()
        });
    }
    if let Some(cpus) = r.cpus {
        let period = 100_000u64;
        res.cpu = Some(Cpu {
            quota: Some((cpus * period as f64).round() as i64),
            period: Some(period),
            ..Cpu::default()
        });
    }
    if let Some(limit) = r.pids_limit {
        res.pids = Some(Pids { limit });
    }
    res
}

/// Docker's default device cgroup rules: deny all, then allow the usual character devices
/// and mknod of anything.
fn device_rules(privileged: bool) -> Vec<DeviceRule> {
    let rule = |allow: bool, kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        DeviceRule {
            allow,
            kind: Some(kind.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    };
    if privileged {
        return vec![rule(true, "a", None, None, "rwm")];
    }
    vec![
        rule(false, "a", None, None, "rwm"),
        rule(true, "c", None, None, "m"),
        rule(true, "b", None, None, "m"),
        rule(true, "c", Some(1), Some(3), "rwm"),    // null
        rule(true, "c", Some(1), Some(5), "rwm"),    // zero
        rule(true, "c", Some(1), Some(7), "rwm"),    // full
        rule(true, "c", Some(1), Some(8), "rwm"),    // random
        rule(true, "c", Some(1), Some(9), "rwm"),    // urandom
        rule(true, "c", Some(5), Some(0), "rwm"),    // tty
        rule(true, "c", Some(5), Some(1), "rwm"),    // console
        rule(true, "c", Some(5), Some(2), "rwm"),    // ptmx
        rule(true, "c", Some(136), None, "rwm"),     // pts
        rule(true, "c", Some(10), Some(200), "rwm"), // tun
    ]
}

/// Capabilities that give back denied syscalls, as Docker's profile grants them when the
/// capability is added: a container with CAP_SYS_ADMIN may mount and unshare, one with
/// CAP_SYS_PTRACE may trace, and so on.
const UNLOCKED_BY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "fsopen",
            "fsmount",
            "fsconfig",
            "fspick",
            "move_mount",
            "open_tree",
            "quotactl",
            "lookup_dcookie",
            "name_to_handle_at",
            "bpf",
            "perf_event_open",
        ],
    ),
    (
        "CAP_SYS_PTRACE",
        &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"],
    ),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_NICE",
        &["get_mempolicy", "mbind", "set_mempolicy", "move_pages"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The default filter for a container holding `caps`.
pub fn seccomp_for(caps: &[String]) -> Seccomp {
    let unlocked: Vec<&str> = UNLOCKED_BY
        .iter()
        .filter(|(cap, _)| caps.iter().any(|c| c == cap))
        .flat_map(|(_, calls)| calls.iter().copied())
        .collect();
    let mut filter = default_seccomp();
    for rule in &mut filter.syscalls {
        rule.names.retain(|n| !unlocked.contains(&n.as_str()));
    }
    filter
}

pub fn default_seccomp() -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        default_errno_ret: None,
        architectures: strings(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        flags: Vec::new(),
        listener_path: None,
        syscalls: vec![SeccompSyscall {
            names: strings(DENIED_SYSCALLS),
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(1),
            args: Vec::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_capabilities_give_back_their_syscalls() {
        let denied = |caps: &[&str]| -> Vec<String> {
            let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
            seccomp_for(&caps).syscalls[0].names.clone()
        };
        assert!(denied(&[]).contains(&"mount".to_string()));
        assert!(!denied(&["CAP_SYS_ADMIN"]).contains(&"mount".to_string()));
        assert!(denied(&["CAP_SYS_ADMIN"]).contains(&"ptrace".to_string()));
        assert!(!denied(&["CAP_SYS_PTRACE"]).contains(&"ptrace".to_string()));
        assert!(denied(&["CAP_SYS_PTRACE"]).contains(&"reboot".to_string()));
    }

    #[test]
    fn memory_cpu_and_pids_become_cgroup_limits() {
        let mut c = ContainerConfig::default();
        c.resources.memory = Some(64 << 20);
        c.resources.cpus = Some(1.5);
        c.resources.pids_limit = Some(50);
        let r = resources(&c);
        assert_eq!(r.memory.unwrap().limit, Some(64 << 20));
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.quota, cpu.period), (Some(150_000), Some(100_000)));
        assert_eq!(r.pids.unwrap().limit, 50);
    }

    #[test]
    fn environment_defaults() {
        let c = ContainerConfig {
            env: vec!["A=1".into(), "A=2".into()],
            hostname: "h".into(),
            tty: true,
            ..ContainerConfig::default()
        };
        let env = environment(&c, "/root");
        assert!(env.contains(&"A=2".to_string()) && !env.contains(&"A=1".to_string()));
        assert!(env[0].starts_with("PATH="));
        assert!(env.contains(&"HOSTNAME=h".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
        assert!(env.contains(&"HOME=/root".to_string()));
    }
}
