//! `berth rm`: stop if asked (`-f`), clean up what a crashed supervisor left, delete the
//! container's records and (with `-v`) its anonymous volumes.

use crate::runtime::Runtime;
use crate::state::{ContainerConfig, MountKind, Status};
use crate::{Engine, EngineError};

impl Engine {
    /// Deletes a container that is not running (the caller stops it first). `torn_down`
    /// says the runtime state, network and mounts are already gone (the supervisor's own
    /// `--rm`); otherwise they are undone here, for a supervisor that was killed.
    pub fn remove_records(
        &self,
        config: &ContainerConfig,
        volumes: bool,
        torn_down: bool,
    ) -> Result<(), EngineError> {
        if !torn_down {
            self.teardown(config, &Runtime::new(&self.run_root));
        }
        self.containers.remove(config)?;
        let _ = std::fs::remove_dir_all(self.run_root.join("containers").join(&config.id));
        if volumes {
            for m in config.mounts.iter().filter(|m| m.kind == MountKind::Volume) {
                if self.volumes.get(&m.source).is_ok_and(|v| v.anonymous) {
                    let _ = self.volumes.remove(&m.source, &|_| None);
                }
            }
        }
        Ok(())
    }

    /// `rm [-f] [-v]`.
    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<String, EngineError> {
        let id = self.containers.resolve(key)?;
        let _lock = self.containers.lock(&id)?;
        let (config, state) = self.load(&id)?;
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            if !force {
                return Err(EngineError::Running {
                    name: config.name.clone(),
                });
            }
            self.kill_now(&config, &state)?;
        }
        self.remove_records(&config, volumes, false)?;
        Ok(id)
    }

    /// The volume's user, if any container mounts it.
    pub fn volume_user(&self, name: &str) -> Option<String> {
        self.containers.ids().ok()?.into_iter().find_map(|id| {
            let c = self.containers.config(&id).ok()?;
            c.mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == name)
                .then(|| c.name.clone())
        })
    }
}
