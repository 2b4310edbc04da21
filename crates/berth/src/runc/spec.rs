//! `spec` (an example config.json, as `runc spec` writes it) and `features`
//! (runtime-spec features.md).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_runtime::{caps, spec, syscall};

pub fn spec(bundle: &Path, rootless: bool) -> Result<ExitCode> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let s = if rootless {
        spec::rootless_spec(syscall::getuid(), syscall::getgid())
    } else {
        spec::default_spec()
    };
    let out = reindent(&serde_json::to_string_pretty(&s)?, "\t");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .with_context(|| format!("write {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Re-indents serde_json's two-space pretty output with `unit` per level (runc writes
/// config.json with tabs and features with four spaces). JSON strings hold no raw
/// newlines, so every leading run of spaces is indentation.
fn reindent(pretty: &str, unit: &str) -> String {
    pretty
        .lines()
        .map(|l| {
            let trimmed = l.trim_start_matches(' ');
            unit.repeat((l.len() - trimmed.len()) / 2) + trimmed
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn features() -> Result<ExitCode> {
    let mount_options = [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "tmpcopyup",
        "unbindable",
    ];
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options.to_vec(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::NAMES.to_vec(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
        },
        "annotations": {"org.opencontainers.runc.version": env!("CARGO_PKG_VERSION")},
    });
    let out = reindent(&serde_json::to_string_pretty(&v)?, "    ");
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
