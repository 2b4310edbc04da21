//! `vm snapshot create|list|revert|delete`: qcow2 internal snapshots, as virsh makes them
//! for QEMU guests. A running (or paused) VM is snapshotted whole — disks and machine
//! state — by QEMU's `savevm` over the monitor; a shut-off VM's disks with `qemu-img
//! snapshot`. Reverting a running VM loads the snapshot in place (`loadvm`); reverting a
//! shut-off VM to a snapshot taken while it ran starts it from that state (`-loadvm`), as
//! virsh does; to a disk-only snapshot, rewinds the disks and leaves it shut off.

use std::time::Duration;

use super::{now, StartOptions, VmError, Vms};
use crate::config::DiskDevice;
use crate::qemu::args::ImageFormat;
use crate::qemu::img::{self, SnapshotOp};
use crate::runtime::{self, DomainState};
use crate::state::{SnapshotState, VmState};

/// savevm of a few GiB of RAM under TCG takes a while.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(600);

impl Vms {
    pub fn snapshot_create(
        &self,
        name: &str,
        snapshot: Option<&str>,
    ) -> Result<SnapshotState, VmError> {
        let _lock = self.lock_existing(name)?;
        let mut vm = self.store.load(name)?;
        let snap = snapshot.map_or_else(|| now().to_string(), str::to_string);
        check_snapshot_name(&snap)?;
        if vm.snapshots.iter().any(|s| s.name == snap) {
            return Err(VmError::SnapshotExists {
                name: name.to_string(),
                snapshot: snap,
            });
        }
        needs_qcow2(&vm)?;
        let state = self.observe_locked(name).state;
        let running = state.is_active();
        if running {
            self.monitor(name, &format!("savevm {snap}"))?;
        } else {
            for d in writable(&vm) {
                img::snapshot(&d.path, SnapshotOp::Create, &snap)?;
            }
        }
        let s = SnapshotState {
            name: snap,
            created: now(),
            state: state.as_str().to_string(),
            vm_state: running,
        };
        vm.snapshots.push(s.clone());
        self.store.save(&vm)?;
        Ok(s)
    }

    pub fn snapshot_list(&self, name: &str) -> Result<Vec<SnapshotState>, VmError> {
        Ok(self.load_checked(name)?.snapshots)
    }

    /// Returns the state the VM is in afterwards.
    pub fn snapshot_revert(&self, name: &str, snapshot: &str) -> Result<DomainState, VmError> {
        let lock = self.lock_existing(name)?;
        let vm = self.store.load(name)?;
        let snap = find(&vm, name, snapshot)?.clone();
        let state = self.observe_locked(name).state;
        if state.is_active() {
            if snap.vm_state {
                self.monitor(name, &format!("loadvm {snapshot}"))?;
                return Ok(runtime::observe(&self.run_paths(name)).state);
            }
            // A disk-only snapshot cannot be loaded under a running guest.
            return Err(VmError::Active(name.to_string()));
        }
        if snap.vm_state {
            self.start_locked(
                name,
                &StartOptions {
                    loadvm: Some(snapshot.to_string()),
                },
            )?;
            drop(lock);
            return Ok(runtime::observe(&self.run_paths(name)).state);
        }
        for d in writable(&vm) {
            img::snapshot(&d.path, SnapshotOp::Apply, snapshot)?;
        }
        Ok(DomainState::ShutOff)
    }

    pub fn snapshot_delete(&self, name: &str, snapshot: &str) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        let mut vm = self.store.load(name)?;
        find(&vm, name, snapshot)?;
        if self.observe_locked(name).state.is_active() {
            self.monitor(name, &format!("delvm {snapshot}"))?;
        } else {
            for d in writable(&vm) {
                let present = img::list_snapshots(&d.path)?
                    .iter()
                    .any(|s| s.name == snapshot);
                if present {
                    img::snapshot(&d.path, SnapshotOp::Delete, snapshot)?;
                }
            }
        }
        vm.snapshots.retain(|s| s.name != snapshot);
        self.store.save(&vm)?;
        Ok(())
    }

    /// Runs a human monitor command; its output is an error message when non-empty
    /// (`savevm`, `loadvm` and `delvm` print nothing when they succeed).
    fn monitor(&self, name: &str, command: &str) -> Result<(), VmError> {
        let out = runtime::qmp(&self.run_paths(name), MONITOR_TIMEOUT)
            .and_then(|mut q| q.human(command))
            .map_err(Self::qmp_err(name))?;
        let out = out.trim();
        if out.is_empty() {
            Ok(())
        } else {
            Err(VmError::Monitor {
                name: name.to_string(),
                command: command.to_string(),
                message: out.lines().last().unwrap_or(out).trim().to_string(),
            })
        }
    }
}

fn writable(vm: &VmState) -> impl Iterator<Item = &crate::state::DiskState> {
    vm.disks
        .iter()
        .filter(|d| d.device == DiskDevice::Disk && !d.readonly && !d.install_only)
}

fn needs_qcow2(vm: &VmState) -> Result<(), VmError> {
    match writable(vm).find(|d| d.format != ImageFormat::Qcow2) {
        Some(d) => Err(VmError::SnapshotNeedsQcow2 {
            target: d.target.clone(),
            path: d.path.clone(),
            format: d.format.to_string(),
        }),
        None => Ok(()),
    }
}

fn find<'a>(vm: &'a VmState, name: &str, snapshot: &str) -> Result<&'a SnapshotState, VmError> {
    vm.snapshots
        .iter()
        .find(|s| s.name == snapshot)
        .ok_or_else(|| VmError::NoSnapshot {
            name: name.to_string(),
            snapshot: snapshot.to_string(),
        })
}

/// Snapshot names go into a monitor command line: keep them to one plain word.
fn check_snapshot_name(s: &str) -> Result<(), VmError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VmError::BadSnapshotName(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_single_words() {
        check_snapshot_name("before-upgrade.1").unwrap();
        assert!(check_snapshot_name("a b").is_err());
        assert!(check_snapshot_name("x;quit").is_err());
        assert!(check_snapshot_name("").is_err());
    }
}
