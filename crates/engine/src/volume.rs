//! Named volumes (`berth volume create/ls/rm/inspect/prune`, `-v name:/path`): a directory
//! `<root>/volumes/<name>/_data` per volume, with its metadata beside it, as Docker's local
//! driver lays them out.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {0:?} already exists")]
    Exists(String),
    #[error("invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("remove volume {name}: volume is in use by container {container}")]
    InUse { name: String, container: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeState {
    pub name: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container's `-v /path` (removed with it by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Volumes {
    pub fn open(state_root: &Path) -> Result<Self, VolumeError> {
        let dir = state_root.join("volumes");
        fs::create_dir_all(&dir).map_err(|source| VolumeError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates a volume; `exist_ok` makes an existing one a success (implicit creation by
    /// `run -v name:/path`).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
        exist_ok: bool,
    ) -> Result<VolumeState, VolumeError> {
        if !valid(name) {
            return Err(VolumeError::InvalidName(name.into()));
        }
        let dir = self.dir.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return if exist_ok {
                    self.get(name)
                } else {
                    Err(VolumeError::Exists(name.into()))
                };
            }
            Err(source) => {
                return Err(VolumeError::Io {
                    op: "create",
                    path: dir,
                    source,
                })
            }
        }
        let state = VolumeState {
            name: name.into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels,
            anonymous,
        };
        let result = fs::create_dir(dir.join("_data"))
            .map_err(|source| VolumeError::Io {
                op: "create",
                path: dir.join("_data"),
                source,
            })
            .and_then(|()| {
                write_atomic(
                    &dir.join("volume.json"),
                    &serde_json::to_vec_pretty(&state).expect("json"),
                )
                .map_err(|e| VolumeError::Io {
                    op: "write",
                    path: dir.join("volume.json"),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(state)
    }

    pub fn get(&self, name: &str) -> Result<VolumeState, VolumeError> {
        let path = self.dir.join(name).join("volume.json");
        let bytes = fs::read(&path).map_err(|_| VolumeError::NoSuchVolume(name.into()))?;
        serde_json::from_slice(&bytes).map_err(|_| VolumeError::NoSuchVolume(name.into()))
    }

    pub fn list(&self) -> Vec<VolumeState> {
        let mut out: Vec<VolumeState> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes a volume unless `user_of` names a container that uses it.
    pub fn remove(
        &self,
        name: &str,
        user_of: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), VolumeError> {
        self.get(name)?;
        if let Some(container) = user_of(name) {
            return Err(VolumeError::InUse {
                name: name.into(),
                container,
            });
        }
        let dir = self.dir.join(name);
        let doomed = self.dir.join(format!(".removing-{name}"));
        fs::rename(&dir, &doomed).map_err(|source| VolumeError::Io {
            op: "remove",
            path: dir,
            source,
        })?;
        let _ = fs::remove_dir_all(doomed);
        Ok(())
    }

    pub fn inspect_json(&self, v: &VolumeState) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": v.created,
            "Driver": "local",
            "Labels": v.labels,
            "Mountpoint": self.data_path(&v.name).display().to_string(),
            "Name": v.name,
            "Options": {},
            "Scope": "local",
        })
    }
}

/// Fills a new, empty volume with what the image has at the mount point (Docker's
/// copy-up), keeping ownership and modes.
pub fn copy_up(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.is_dir() || fs::read_dir(to)?.next().is_some() {
        return Ok(());
    }
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cp -a {} failed",
            from.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_remove() {
        let root = std::env::temp_dir().join(format!("berth-vol-{}", crate::id::new_id()));
        let v = Volumes::open(&root).unwrap();
        v.create("data", BTreeMap::new(), false, false).unwrap();
        assert!(matches!(
            v.create("data", BTreeMap::new(), false, false),
            Err(VolumeError::Exists(_))
        ));
        v.create("data", BTreeMap::new(), false, true).unwrap();
        assert!(v.data_path("data").is_dir());
        assert_eq!(v.list().len(), 1);
        let err = v.remove("data", &|_| Some("web".into())).unwrap_err();
        assert!(err.to_string().contains("in use by container web"));
        v.remove("data", &|_| None).unwrap();
        assert!(v.list().is_empty());
        assert!(matches!(
            v.create("bad/name", BTreeMap::new(), false, false),
            Err(VolumeError::InvalidName(_))
        ));
        let _ = fs::remove_dir_all(root);
    }
}
