//! `vm undefine [--remove-all-storage]` (virsh undefine): removes the definition and
//! every file berth keeps for the VM (console log, UEFI variables, cloud-init seed, the
//! install kernel). Disks stay unless `--remove-all-storage`, which removes every writable
//! disk image of the VM — those berth created and those given with `--disk path=` — but
//! never a CD-ROM image. A running VM is refused: berth has no transient domains.

use std::path::PathBuf;

use super::{VmError, Vms};
use crate::config::DiskDevice;

/// Which disk images `undefine` removes with the definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageRemoval {
    /// None: the images stay where they are.
    Keep,
    /// Those berth created (a `create` that could not start the VM rolls back with this).
    Created,
    /// Every writable disk image (`--remove-all-storage`).
    All,
}

/// What `undefine` did with the disks: `(target, path)` pairs.
#[derive(Debug, Clone, Default)]
pub struct Undefined {
    pub removed: Vec<(String, PathBuf)>,
    pub kept: Vec<(String, PathBuf)>,
}

impl Vms {
    pub fn undefine(&self, name: &str, remove_all_storage: bool) -> Result<Undefined, VmError> {
        let removal = if remove_all_storage {
            StorageRemoval::All
        } else {
            StorageRemoval::Keep
        };
        self.undefine_with(name, removal)
    }

    pub fn undefine_with(&self, name: &str, removal: StorageRemoval) -> Result<Undefined, VmError> {
        let mut lock = self.lock_existing(name)?;
        if self.observe_locked(name).state.is_active() {
            return Err(VmError::Active(name.to_string()));
        }
        let vm = self.store.load(name)?;
        let mut result = Undefined::default();
        let storage = vm
            .disks
            .iter()
            .filter(|d| d.device == DiskDevice::Disk && !d.readonly);
        for d in storage {
            let remove = match removal {
                StorageRemoval::Keep => false,
                StorageRemoval::Created => d.created,
                StorageRemoval::All => true,
            };
            if remove {
                result.removed.push((d.target.clone(), d.path.clone()));
            } else {
                result.kept.push((d.target.clone(), d.path.clone()));
            }
        }
        let keep: Vec<PathBuf> = result.kept.iter().map(|(_, p)| p.clone()).collect();
        self.store.remove(name, &keep)?;
        for (_, p) in &result.removed {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(VmError::Access {
                        what: "remove",
                        path: p.clone(),
                        source,
                    })
                }
            }
        }
        lock.remove_on_release();
        Ok(result)
    }
}
