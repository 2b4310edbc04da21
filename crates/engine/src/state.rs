//! What berth records about a container: `ContainerConfig` (what the user asked for, fixed
//! at create) and `ContainerState` (what happened since, updated by the supervisor).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A mount the user asked for (`-v`, `--mount`, `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    pub kind: MountKind,
    /// Host path (bind), volume name (volume), empty (tmpfs).
    pub source: String,
    pub target: String,
    pub readonly: bool,
}

/// `--restart`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure(u32),
    Always,
    UnlessStopped,
}

/// Limits: `--memory`, `--cpus`, `--pids-limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
}

/// One published port, as given to `-p` after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image id (`sha256:...`).
    pub image_id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub labels: BTreeMap<String, String>,
    /// `bridge`, `host`, `none`, or a network name.
    pub network: String,
    pub ports: Vec<PortConfig>,
    pub mounts: Vec<MountConfig>,
    pub resources: Resources,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub init: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
}

impl ContainerConfig {
    /// The process the container runs: entrypoint then command.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// The container's init process, as seen from the host.
    pub pid: Option<i32>,
    /// The supervisor process and its start time (to tell a reused pid apart).
    pub supervisor_pid: Option<i32>,
    pub supervisor_start: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// RFC 3339, empty until it happens.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Set by `stop`/`kill` so `unless-stopped`/`always` do not restart it.
    pub stopped_by_user: bool,
    /// The last error starting it, if any.
    pub error: String,
    /// The container's address on each network it joined.
    pub networks: BTreeMap<String, String>,
    /// The ports as published (host ports picked for `-p 80` and `-P` filled in).
    #[serde(default)]
    pub published: Vec<PortConfig>,
}
