//! `pause` and `resume`: the cgroup freezer.

use super::{Container, ContainerError};
use crate::state::Status;

impl Container {
    pub fn pause(&self) -> Result<(), ContainerError> {
        match self.status() {
            Status::Running | Status::Created => Ok(self.state.cgroup.freeze(true)?),
            _ => Err(ContainerError::NotRunning {
                id: self.id().into(),
            }),
        }
    }

    pub fn resume(&self) -> Result<(), ContainerError> {
        match self.status() {
            Status::Paused => Ok(self.state.cgroup.freeze(false)?),
            _ => Err(ContainerError::NotPaused {
                id: self.id().into(),
            }),
        }
    }
}
