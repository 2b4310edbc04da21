//! What berth remembers about networks, on disk under `<state root>/networks`:
//!
//! ```text
//! <id>.json            one network: its bridge, subnet, endpoints, taps and IPAM state
//! ports.json           published ports of all containers (see `ports.rs`)
//! lock                 flock(2) taken for every change (opened anew each time, so that
//!                      threads of one process exclude each other as processes do)
//! containers/<id>/     the hosts and resolv.conf files a container bind-mounts
//! ```
//! Files are replaced whole (temp file, fsync, rename, fsync of the directory), so a
//! reader never needs the lock and a crash leaves either the old or the new state.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::addr::{Ipv4Net, MacAddr};
use crate::ipam::IpamState;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed network state file {path}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The network driver, with Docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// One network as persisted in `<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge behind a `bridge` network; `None` for `host` and `none`.
    #[serde(default)]
    pub bridge: Option<BridgeState>,
    /// Attached containers, by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointState>,
    /// Tap devices of VMs on this network, by device name.
    #[serde(default)]
    pub taps: BTreeMap<String, TapState>,
    #[serde(default)]
    pub ipam: IpamState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeState {
    /// The Linux bridge device (`berth0`, `br-<12 hex of id>`).
    pub device: String,
    pub subnet: Ipv4Net,
    /// The bridge's own address, the containers' default gateway.
    pub gateway: Ipv4Addr,
    /// True for the default `bridge` network (no name resolution between containers).
    #[serde(default)]
    pub default: bool,
}

/// A container attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointState {
    /// 64 hex digits, for `network inspect`.
    pub endpoint_id: String,
    pub container_id: String,
    pub container_name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    /// The host end of the veth pair, a port of the bridge.
    pub host_veth: String,
    /// The container end's name inside the container (`eth0`, `eth1`…).
    pub ifname: String,
    /// Whether the container's default route goes through this network.
    #[serde(default)]
    pub default_route: bool,
}

/// A VM's tap device attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapState {
    pub name: String,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

impl NetworkState {
    /// Whether this is a bridge network the user created (not `bridge`, `host`, `none`).
    /// Only these give containers name resolution, as in Docker.
    pub fn is_user_defined(&self) -> bool {
        self.bridge.as_ref().is_some_and(|b| !b.default)
    }

    /// `host`, `none` and the default `bridge` cannot be removed.
    pub fn is_predefined(&self) -> bool {
        !self.is_user_defined()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// True if anything (container or tap) is attached.
    pub fn has_endpoints(&self) -> bool {
        !self.endpoints.is_empty() || !self.taps.is_empty()
    }
}

/// The network state directory and its lock.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The store lock, held until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating) `<state_root>/networks` and removes temp files of dead processes.
    pub fn open(state_root: &Path) -> Result<Self, StateError> {
        let dir = state_root.join("networks");
        let containers = dir.join("containers");
        fs::create_dir_all(&containers).map_err(io_err("create", &containers))?;
        let store = Self { dir };
        store.remove_stale_temp_files();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock that every change holds. The lock file is opened per call:
    /// flock(2) locks belong to the open file description, so sharing one descriptor
    /// between threads would let them all in at once.
    pub fn lock(&self) -> Result<StoreLock, StateError> {
        let path = self.dir.join("lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(StoreLock { _file: file })
    }

    fn network_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// All networks, sorted by name.
    pub fn networks(&self) -> Result<Vec<NetworkState>, StateError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !name.ends_with(".json") || name == "ports.json" {
                continue;
            }
            if let Some(net) = read_json::<NetworkState>(&entry.path())? {
                out.push(net);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn save_network(&self, net: &NetworkState) -> Result<(), StateError> {
        write_json(&self.network_path(&net.id), net)
    }

    pub fn delete_network(&self, id: &str) -> Result<(), StateError> {
        let path = self.network_path(id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Reads `name` (a JSON file in the store), or the default value if it does not exist.
    pub fn read<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, StateError> {
        Ok(read_json(&self.dir.join(name))?.unwrap_or_default())
    }

    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        write_json(&self.dir.join(name), value)
    }

    /// The directory holding a container's hosts and resolv.conf files.
    pub fn container_dir(&self, container_id: &str) -> PathBuf {
        self.dir.join("containers").join(container_id)
    }

    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.starts_with('.'))
                .and_then(|n| n.rsplit_once(".tmp-"))
                .and_then(|(_, rest)| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Malformed {
            path: path.to_path_buf(),
            source,
        })
}

/// Replaces `path` atomically and durably with `value` as JSON.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let dir = path.parent().expect("state files live in a directory");
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("state file names are utf-8");
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(value).expect("network state always serializes");
    let result = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .map_err(io_err("write", &tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err("rename", path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// 64 random hex digits, Docker's id format.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current time as RFC 3339 in UTC with nanoseconds (`2024-05-01T12:00:00.123456789Z`).
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = i64::try_from(secs / 86_400).expect("days since 1970 fit");
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_714_564_800, 0), "2024-05-01T12:00:00.000000000Z");
    }

    #[test]
    fn random_ids_are_hex() {
        let id = random_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, random_id());
    }
}
