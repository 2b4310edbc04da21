//! `vm disk create PATH --size` (a standalone image, like `virsh vol-create-as`) and
//! `vm disk resize VM|PATH --size` (like `virsh blockresize`): a running VM's disk grows
//! over QMP so the guest sees the new size at once; otherwise qemu-img resizes the image.
//! Disks only grow: shrinking loses data, so berth refuses it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{VmError, Vms};
use crate::config::DiskDevice;
use crate::qemu::args::ImageFormat;
use crate::qemu::{img, plan};
use crate::runtime;

/// What a resize did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resized {
    pub path: PathBuf,
    pub old: u64,
    pub new: u64,
    /// Grown under a running guest.
    pub live: bool,
}

impl Vms {
    /// Creates a new image (never overwrites one).
    pub fn disk_create(&self, path: &Path, bytes: u64, format: ImageFormat) -> Result<(), VmError> {
        if path.exists() {
            return Err(VmError::FileExists(path.to_path_buf()));
        }
        Ok(img::create(path, format, bytes, false)?)
    }

    /// Resizes disk `target` (default: the first disk) of VM `vm_or_path`, or the image at
    /// that path when no VM has that name.
    pub fn disk_resize(
        &self,
        vm_or_path: &str,
        target: Option<&str>,
        bytes: u64,
    ) -> Result<Resized, VmError> {
        let is_vm = crate::config::check_name(vm_or_path).is_ok() && self.store.exists(vm_or_path);
        if !is_vm {
            let path = PathBuf::from(vm_or_path);
            if !path.exists() {
                return Err(VmError::Missing {
                    what: "domain or disk image",
                    path,
                });
            }
            let info = img::info(&path)?;
            check_grow(&path, info.virtual_size, bytes)?;
            img::resize(&path, info.format, bytes)?;
            return Ok(Resized {
                path,
                old: info.virtual_size,
                new: bytes,
                live: false,
            });
        }
        let name = vm_or_path;
        let _lock = self.lock_existing(name)?;
        let vm = self.store.load(name)?;
        let disk = match target {
            Some(t) => vm.disk(t),
            None => vm.disks.iter().find(|d| d.device == DiskDevice::Disk),
        }
        .filter(|d| d.device == DiskDevice::Disk)
        .ok_or_else(|| VmError::NoDisk {
            name: name.to_string(),
            target: target.unwrap_or("(any)").to_string(),
        })?
        .clone();
        let info = img::info(&disk.path)?;
        check_grow(&disk.path, info.virtual_size, bytes)?;
        let live = self.observe_locked(name).state.is_active();
        if live {
            runtime::qmp(&self.run_paths(name), Duration::from_secs(30))
                .and_then(|mut q| q.block_resize(&plan::drive_id(&disk.target), bytes))
                .map_err(Self::qmp_err(name))?;
        } else {
            img::resize(&disk.path, disk.format, bytes)?;
        }
        Ok(Resized {
            path: disk.path,
            old: info.virtual_size,
            new: bytes,
            live,
        })
    }
}

fn check_grow(path: &Path, current: u64, requested: u64) -> Result<(), VmError> {
    if requested < current {
        return Err(VmError::Shrink {
            path: path.to_path_buf(),
            current,
            requested,
        });
    }
    Ok(())
}
