//! `berth pause` / `unpause`: freeze and thaw every process of a container (the runtime's
//! freezer cgroup).

use crate::runtime::Runtime;
use crate::state::Status;
use crate::{Engine, EngineError};

impl Engine {
    pub fn pause(&self, key: &str, pause: bool) -> Result<String, EngineError> {
        let id = self.containers.resolve(key)?;
        let _lock = self.containers.lock(&id)?;
        let (config, mut state) = self.load(&id)?;
        let runtime = Runtime::new(&self.run_root);
        match (state.status, pause) {
            (Status::Running, true) => {
                runtime.pause(&id)?;
                state.status = Status::Paused;
            }
            (Status::Paused, false) => {
                runtime.resume(&id)?;
                state.status = Status::Running;
            }
            (Status::Paused, true) => return Err(EngineError::AlreadyPaused { name: config.name }),
            (_, true) => return Err(EngineError::NotRunning { name: config.name }),
            (_, false) => return Err(EngineError::NotPaused { name: config.name }),
        }
        self.containers.save_state(&id, &state)?;
        Ok(id)
    }
}
