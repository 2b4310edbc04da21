//! Containers on disk: `<root>/containers/<id>/{config.json,state.json,lock,...}` and a
//! name registry `<root>/containers/names/<name>` (created with O_EXCL, so two concurrent
//! `berth run --name x` cannot both win). Everything is written crash-safely.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::state::{ContainerConfig, ContainerState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    #[error("the container name \"/{name}\" is already in use by container \"{id}\"; remove or rename that container to be able to reuse the name")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed {path}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", path)(e)
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Malformed {
        path: path.to_path_buf(),
        source,
    })
}

/// An flock held until dropped.
pub struct Lock(#[allow(dead_code, reason = "held only for its flock, released on drop")] File);

#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

impl ContainerStore {
    pub fn open(state_root: &Path) -> Result<Self, StoreError> {
        let dir = state_root.join("containers");
        let names = dir.join("names");
        fs::create_dir_all(&names).map_err(io_err("create", &names))?;
        Ok(Self { dir })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn name_path(&self, name: &str) -> PathBuf {
        self.dir.join("names").join(name)
    }

    /// Reserves `name` for `id`; fails if another container holds it.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), StoreError> {
        if !crate::id::valid_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let path = self.name_path(name);
        loop {
            match File::options().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(id.as_bytes()).map_err(io_err("write", &path))?;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    // A name left by a container whose directory is gone (a crash between
                    // the two steps of create or remove) is free again.
                    if holder.is_empty() || !self.dir(holder.trim()).join("config.json").exists() {
                        if holder.is_empty() {
                            // The holder may be writing its id right now: give it a moment.
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            if !fs::read_to_string(&path).unwrap_or_default().is_empty() {
                                continue;
                            }
                        }
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    return Err(StoreError::NameInUse {
                        name: name.to_string(),
                        id: holder.trim().to_string(),
                    });
                }
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.name_path(name);
        if fs::read_to_string(&path).is_ok_and(|holder| holder.trim() == id) {
            let _ = fs::remove_file(path);
        }
    }

    /// Records a new container: name, directory, config and initial state.
    pub fn create(&self, config: &ContainerConfig) -> Result<(), StoreError> {
        self.reserve_name(&config.name, &config.id)?;
        let dir = self.dir(&config.id);
        let result = fs::create_dir(&dir)
            .map_err(io_err("create", &dir))
            .and_then(|()| self.save_state(&config.id, &ContainerState::default()))
            .and_then(|()| self.save_config(config));
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
            self.release_name(&config.name, &config.id);
        }
        result
    }

    pub fn save_config(&self, config: &ContainerConfig) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(config).expect("config serializes");
        write_atomic(&self.dir(&config.id).join("config.json"), &data)
    }

    pub fn save_state(&self, id: &str, state: &ContainerState) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(state).expect("state serializes");
        write_atomic(&self.dir(id).join("state.json"), &data)
    }

    pub fn config(&self, id: &str) -> Result<ContainerConfig, StoreError> {
        let path = self.dir(id).join("config.json");
        if !path.exists() {
            return Err(StoreError::NoSuchContainer(id.to_string()));
        }
        read_json(&path)
    }

    pub fn state(&self, id: &str) -> Result<ContainerState, StoreError> {
        read_json(&self.dir(id).join("state.json"))
    }

    /// Ids of every container whose config is complete (a half-created one is skipped).
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(io_err("read", &self.dir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && e.path().join("config.json").exists() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Finds a container by name, full id or unique id prefix, as Docker does.
    pub fn resolve(&self, key: &str) -> Result<String, StoreError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Ok(id) = fs::read_to_string(self.name_path(key)) {
            let id = id.trim().to_string();
            if self.dir(&id).join("config.json").exists() {
                return Ok(id);
            }
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NoSuchContainer(key.to_string()));
        }
        let mut hits = self.ids()?.into_iter().filter(|id| id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(key.to_string())),
            (None, _) => Err(StoreError::NoSuchContainer(key.to_string())),
        }
    }

    /// Takes the container's lock (serializes start/stop/rm on one container).
    pub fn lock(&self, id: &str) -> Result<Lock, StoreError> {
        let path = self.dir(id).join("lock");
        let f = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(Lock(f))
    }

    /// Deletes the container's records. The directory is renamed away first so a crash
    /// half way never leaves a half-deleted container that still looks real.
    pub fn remove(&self, config: &ContainerConfig) -> Result<(), StoreError> {
        let dir = self.dir(&config.id);
        let doomed = self.dir.join(format!(".removing-{}", config.id));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir)(e)),
        }
        self.release_name(&config.name, &config.id);
        let _ = fs::remove_dir_all(&doomed);
        Ok(())
    }

    /// Gives a container a new name.
    pub fn rename(&self, config: &mut ContainerConfig, new_name: &str) -> Result<(), StoreError> {
        self.reserve_name(new_name, &config.id)?;
        let old = std::mem::replace(&mut config.name, new_name.to_string());
        if let Err(e) = self.save_config(config) {
            config.name = old;
            self.release_name(new_name, &config.id);
            return Err(e);
        }
        self.release_name(&old, &config.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (ContainerStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "berth-cstore-{}-{}",
            std::process::id(),
            crate::id::new_id()
        ));
        (ContainerStore::open(&dir).unwrap(), dir)
    }

    fn config(name: &str) -> ContainerConfig {
        ContainerConfig {
            id: crate::id::new_id(),
            name: name.into(),
            ..ContainerConfig::default()
        }
    }

    #[test]
    fn names_are_unique_and_resolve() {
        let (s, dir) = store();
        let a = config("web");
        s.create(&a).unwrap();
        let err = s.create(&config("web")).unwrap_err();
        assert!(
            err.to_string().contains("\"/web\" is already in use"),
            "{err}"
        );
        assert_eq!(s.resolve("web").unwrap(), a.id);
        assert_eq!(s.resolve(&a.id[..6]).unwrap(), a.id);
        assert!(matches!(
            s.resolve("nope"),
            Err(StoreError::NoSuchContainer(_))
        ));
        s.remove(&a).unwrap();
        s.create(&config("web")).unwrap();
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn rename_moves_the_name() {
        let (s, dir) = store();
        let mut a = config("old");
        s.create(&a).unwrap();
        s.rename(&mut a, "new").unwrap();
        assert_eq!(s.resolve("new").unwrap(), a.id);
        assert!(s.resolve("old").is_err());
        assert_eq!(s.config(&a.id).unwrap().name, "new");
        let _ = fs::remove_dir_all(dir);
    }
}
