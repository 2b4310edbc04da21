//! What the runtime persists about a container (`<root>/<id>/state.json`), how its status
//! is derived, and the state JSON of runtime-spec runtime.md "State" that `state`, `list`
//! and hooks see.
//!
//! Status is never stored: a container is `created` while `exec.fifo` exists, `stopped`
//! once its init is gone (or is a zombie, or its pid now names another process: the start
//! time is recorded to tell), `paused` while its cgroup is frozen, `running` otherwise.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupState;
use crate::spec::Spec;

pub const STATE_FILE: &str = "state.json";
pub const FIFO_FILE: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The persisted record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// The init process, in the runtime's pid namespace.
    pub pid: i32,
    /// Its start time (`/proc/<pid>/stat` field 22), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    pub spec: Spec,
    pub cgroup: CgroupState,
}

/// The state JSON, field for field as runc prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

impl ContainerState {
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::spec::OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.spec.annotations.clone(),
            owner: self.owner.clone(),
        }
    }

    pub fn read(dir: &Path) -> io::Result<Self> {
        let data = std::fs::read(dir.join(STATE_FILE))?;
        serde_json::from_slice(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes atomically: a temp file, fsync, rename.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).expect("state serializes"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(STATE_FILE))
    }
}

/// The state a process is in and when it started, from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// True while `pid` is the process started at `start` and not a zombie.
pub fn is_alive(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((s, t)) if t == start && s != 'Z' && s != 'X')
}

/// RFC 3339 with nanoseconds in UTC, trailing zeros trimmed, as Go's `RFC3339Nano`.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut frac = format!("{:09}", d.subsec_nanos());
    while frac.ends_with('0') {
        frac.pop();
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_go_rfc3339nano() {
        let t = UNIX_EPOCH + Duration::new(1_795_500_537, 407_929_408);
        assert_eq!(rfc3339_nano(t), "2026-11-24T06:08:57.407929408Z");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::new(951_782_400, 500_000_000)),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn state_json_has_runc_field_order() {
        let s = ContainerState {
            id: "c1".into(),
            pid: 42,
            pid_start: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            spec: Spec::default(),
            cgroup: CgroupState::default(),
        };
        let json = serde_json::to_string(&s.oci_state(Status::Running)).unwrap();
        assert_eq!(
            json,
            r#"{"ociVersion":"1.2.0","id":"c1","pid":42,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#
        );
        let stopped = serde_json::to_value(s.oci_state(Status::Stopped)).unwrap();
        assert_eq!(stopped["pid"], 0);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1));
        assert!(!is_alive(0, 0));
    }
}
