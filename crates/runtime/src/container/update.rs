//! `update`: new resource limits for a running container, written to its cgroups and
//! recorded in its state.

use super::{io_err, Container, ContainerError};
use crate::spec::Resources;
use crate::state::Status;

impl Container {
    pub fn update(&mut self, resources: &Resources) -> Result<(), ContainerError> {
        if self.status() == Status::Stopped {
            return Err(ContainerError::NotRunning {
                id: self.id().into(),
            });
        }
        self.state.cgroup.apply(resources)?;
        let linux = self.state.spec.linux.get_or_insert_with(Default::default);
        let current = linux.resources.get_or_insert_with(Default::default);
        merge(current, resources);
        self.state
            .write(&self.dir)
            .map_err(io_err("write state.json"))
    }
}

/// Overlays the fields `update` set.
fn merge(into: &mut Resources, from: &Resources) {
    if from.memory.is_some() {
        into.memory = from.memory.clone();
    }
    if from.cpu.is_some() {
        into.cpu = from.cpu.clone();
    }
    if from.pids.is_some() {
        into.pids = from.pids.clone();
    }
    if from.block_io.is_some() {
        into.block_io = from.block_io.clone();
    }
    if !from.unified.is_empty() {
        into.unified.extend(from.unified.clone());
    }
}
