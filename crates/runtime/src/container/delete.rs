//! `delete`: remove a stopped container (a created one is killed first, as runc does;
//! a running one only with `force`), its cgroups and its state, then run poststop hooks.

use std::time::Duration;

use super::{Container, ContainerError};
use crate::hooks;
use crate::state::Status;

impl Container {
    /// Returns poststop hook failures as warnings.
    pub fn delete(self, force: bool) -> Result<Vec<String>, ContainerError> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait()?,
            _ if force => self.kill_and_wait()?,
            _ => {
                return Err(ContainerError::DeleteNotStopped {
                    id: self.id().into(),
                    status,
                })
            }
        }
        // Without its own pid namespace, the init's death does not take its children along.
        if self
            .spec()
            .namespace("pid")
            .is_none_or(|n| n.path.is_some())
        {
            let _ = self.kill(libc::SIGKILL, true);
        }
        self.state.cgroup.destroy()?;
        let mut warnings = Vec::new();
        if let Some(h) = &self.spec().hooks {
            let st = serde_json::to_vec(&self.state.oci_state(Status::Stopped))
                .expect("state serializes");
            if let Err(e) = hooks::run("poststop", &h.poststop, &st) {
                warnings.push(crate::process::init::chain(&e));
            }
        }
        std::fs::remove_dir_all(&self.dir)
            .map_err(super::io_err(format!("remove {}", self.dir.display())))?;
        Ok(warnings)
    }

    fn kill_and_wait(&self) -> Result<(), ContainerError> {
        let Some(fd) = self.init_pidfd() else {
            return Ok(());
        };
        let _ = self.kill(libc::SIGKILL, false);
        super::wait_exit(&fd, Duration::from_secs(10))
    }
}
