//! The OCI runtime configuration (`config.json`, runtime-spec `config.md` and
//! `config-linux.md`, versions 1.0 to 1.3): only the fields berth acts on, lenient to the
//! rest. Unknown fields are ignored and `null` reads as empty, because Go writers (Podman,
//! containerd) emit `null` for nil slices and maps.
//!
//! Read by `Container::create` and `exec`; the engine builds a `Spec` from an image config
//! and hands it over directly.

mod default;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

pub use default::{default_spec, rootless_spec};

/// The runtime-spec version this runtime writes (`spec`, `state`).
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("JSON specification file {} not found", path.display())]
    NotFound { path: PathBuf },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported ociVersion {0:?} (supported: 1.0 to 1.3)")]
    Version(String),
    #[error("namespace {0:?} does not exist")]
    UnknownNamespace(String),
    #[error("duplicate namespace {0:?}")]
    DuplicateNamespace(String),
    #[error("{0}")]
    Invalid(&'static str),
}

/// Deserializes `null` as the type's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default, deserialize_with = "nullable")]
    pub oci_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: User,
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rlimits: Vec<Rlimit>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<IoPriority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IoPriority {
    pub class: String,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scheduler {
    pub policy: String,
    #[serde(default)]
    pub nice: i32,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, deserialize_with = "nullable")]
    pub flags: Vec<String>,
    #[serde(default)]
    pub runtime: u64,
    #[serde(default)]
    pub deadline: u64,
    #[serde(default)]
    pub period: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Root {
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prestart: Vec<Hook>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub create_runtime: Vec<Hook>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub create_container: Vec<Hook>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub start_container: Vec<Hook>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub poststart: Vec<Hook>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hook {
    pub path: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysctl: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespaces: Vec<Namespace>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub masked_paths: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub readonly_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<Personality>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub time_offsets: BTreeMap<String, TimeOffset>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TimeOffset {
    #[serde(default)]
    pub secs: i64,
    #[serde(default)]
    pub nanosecs: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Personality {
    pub domain: String,
    #[serde(default, deserialize_with = "nullable")]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "blockIO")]
    pub block_io: Option<BlockIo>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub unified: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceRule {
    #[serde(default)]
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "kernelTCP")]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "disableOOMKiller"
    )]
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub weight_device: Vec<WeightDevice>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty",
        rename = "throttleReadIOPSDevice"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty",
        rename = "throttleWriteIOPSDevice"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub syscalls: Vec<SeccompSyscall>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompSyscall {
    #[serde(default, deserialize_with = "nullable")]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<SeccompArg>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompArg {
    pub index: u32,
    #[serde(default)]
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// Namespace types the runtime knows, in the order they are joined (user first: it grants
/// the capabilities the other `setns` calls need; mount last but before pid-dependent work).
pub const NAMESPACE_TYPES: [&str; 8] = [
    "user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount",
];

impl Spec {
    /// Reads and validates `<bundle>/config.json`.
    pub fn load(bundle: &Path) -> Result<Self, SpecError> {
        let path = bundle.join("config.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpecError::NotFound {
                    path: PathBuf::from("config.json"),
                })
            }
            Err(source) => return Err(SpecError::Read { path, source }),
        };
        let spec: Spec =
            serde_json::from_slice(&data).map_err(|source| SpecError::Parse { path, source })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what the runtime needs before it creates anything.
    pub fn validate(&self) -> Result<(), SpecError> {
        let v = &self.oci_version;
        let major_minor_ok = v.strip_prefix("1.").is_some_and(|rest| {
            let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
            minor.parse::<u32>().is_ok_and(|m| m <= 3)
        });
        if !major_minor_ok {
            return Err(SpecError::Version(v.clone()));
        }
        if self.root.as_ref().is_none_or(|r| r.path.is_empty()) {
            return Err(SpecError::Invalid("root.path is required"));
        }
        if let Some(p) = &self.process {
            if p.args.is_empty() {
                return Err(SpecError::Invalid("process.args must not be empty"));
            }
            if !p.cwd.starts_with('/') {
                return Err(SpecError::Invalid("process.cwd must be an absolute path"));
            }
        }
        if let Some(linux) = &self.linux {
            let mut seen = Vec::new();
            for ns in &linux.namespaces {
                if !NAMESPACE_TYPES.contains(&ns.kind.as_str()) {
                    return Err(SpecError::UnknownNamespace(ns.kind.clone()));
                }
                if seen.contains(&ns.kind) {
                    return Err(SpecError::DuplicateNamespace(ns.kind.clone()));
                }
                seen.push(ns.kind.clone());
            }
            let has_userns = seen.iter().any(|k| k == "user");
            if !has_userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
                return Err(SpecError::Invalid(
                    "uid/gid mappings require a user namespace",
                ));
            }
            if !linux.time_offsets.is_empty() && !seen.iter().any(|k| k == "time") {
                return Err(SpecError::Invalid("timeOffsets require a time namespace"));
            }
        }
        for m in &self.mounts {
            if !m.destination.starts_with('/') {
                return Err(SpecError::Invalid("mount destinations must be absolute"));
            }
        }
        Ok(())
    }

    /// The namespace entry of a type, if the config asks for one.
    pub fn namespace(&self, kind: &str) -> Option<&Namespace> {
        self.linux
            .as_ref()?
            .namespaces
            .iter()
            .find(|n| n.kind == kind)
    }

    /// The rootfs path, resolved against the bundle when relative.
    pub fn rootfs(&self, bundle: &Path) -> PathBuf {
        let root = self.root.as_ref().map(|r| r.path.as_str()).unwrap_or("");
        bundle.join(root)
    }

    /// The Linux section, or an empty one.
    pub fn linux_or_default(&self) -> std::borrow::Cow<'_, Linux> {
        match &self.linux {
            Some(l) => std::borrow::Cow::Borrowed(l),
            None => std::borrow::Cow::Owned(Linux::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Spec, SpecError> {
        let spec: Spec = serde_json::from_str(json).map_err(|source| SpecError::Parse {
            path: "config.json".into(),
            source,
        })?;
        spec.validate()?;
        Ok(spec)
    }

    #[test]
    fn go_nulls_read_as_empty() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":null,
                "process":{"args":["sh"],"cwd":"/","env":null,"rlimits":null},
                "linux":{"namespaces":null,"maskedPaths":null,"resources":{"devices":null}},
                "unknownField":{"x":1}}"#,
        )
        .unwrap();
        assert!(spec.mounts.is_empty());
        assert!(spec.process.unwrap().env.is_empty());
    }

    #[test]
    fn unknown_namespace_is_rejected() {
        let err = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"r"},"linux":{"namespaces":[{"type":"foo"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), r#"namespace "foo" does not exist"#);
    }

    #[test]
    fn versions_one_zero_to_one_three_are_accepted() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0"] {
            parse(&format!(r#"{{"ociVersion":"{v}","root":{{"path":"r"}}}}"#)).unwrap();
        }
        for v in ["2.0.0", "0.9", "", "1.10.0"] {
            assert!(parse(&format!(r#"{{"ociVersion":"{v}","root":{{"path":"r"}}}}"#)).is_err());
        }
    }

    #[test]
    fn relative_cwd_is_rejected() {
        let err = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["a"],"cwd":"x"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cwd"));
    }

    #[test]
    fn resources_round_trip_with_go_names() {
        let json = r#"{"memory":{"limit":1048576,"kernelTCP":5,"disableOOMKiller":true},
            "blockIO":{"weight":100,"throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":10}]},
            "cpu":{"shares":512,"quota":5000,"period":10000,"cpus":"0"},"pids":{"limit":10}}"#;
        let r: Resources = serde_json::from_str(json).unwrap();
        assert_eq!(r.memory.as_ref().unwrap().kernel_tcp, Some(5));
        assert_eq!(
            r.block_io.as_ref().unwrap().throttle_read_iops_device[0].rate,
            10
        );
        let back: Resources = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
