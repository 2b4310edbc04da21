//! The persisted definition of a VM (`vm.json`): everything needed to build its QEMU
//! command line again at every start, as a libvirt domain XML is for virsh.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{
    DiskBus, DiskDevice, Firmware, GraphicsConfig, NicKind, NicModel, PortForward,
};
use crate::qemu::args::{Accel, CacheMode, ImageFormat};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    pub version: u32,
    pub name: String,
    pub uuid: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub os_variant: String,
    pub firmware: Firmware,
    /// `None`: decided at each start (KVM when usable).
    pub accel: Option<Accel>,
    pub disks: Vec<DiskState>,
    /// Direct kernel boot at every start (`--kernel`).
    pub boot: Option<DirectBoot>,
    /// The install boot, pending until the VM has been started once.
    pub install: Option<InstallState>,
    pub nics: Vec<NicState>,
    pub ports: Vec<PortForward>,
    pub graphics: GraphicsConfig,
    /// The UEFI variable store (with `Firmware::Uefi`).
    pub nvram: Option<PathBuf>,
    /// Windows keeps the RTC in local time.
    pub rtc_localtime: bool,
    pub autostart: bool,
    #[serde(default)]
    pub snapshots: Vec<SnapshotState>,
}

impl VmState {
    pub const VERSION: u32 = 1;

    pub fn disk(&self, target: &str) -> Option<&DiskState> {
        self.disks.iter().find(|d| d.target == target)
    }
}

/// One attached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskState {
    /// The guest-visible name berth assigns: `vda`, `vdb` on virtio; `sda`, `sdb` on SATA.
    pub target: String,
    pub path: PathBuf,
    pub format: ImageFormat,
    pub bus: DiskBus,
    pub device: DiskDevice,
    pub readonly: bool,
    pub cache: Option<CacheMode>,
    /// berth created this image (for `vm create --disk size=`).
    pub created: bool,
    /// Attached only during the install boot (a `--location` ISO).
    #[serde(default)]
    pub install_only: bool,
    /// Booted first during the install (the `--cdrom` ISO).
    #[serde(default)]
    pub install_boot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
}

/// How the first start boots: from the install CD-ROM, or the install tree's kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallState {
    /// Set for `--location`: the kernel and initrd copied from the tree.
    pub direct: Option<DirectBoot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicState {
    pub kind: NicKind,
    pub model: NicModel,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    pub name: String,
    pub created: u64,
    /// The domain state when taken: `running`, `paused` or `shut off`.
    pub state: String,
    /// Machine state (memory, devices) was saved with the disks.
    pub vm_state: bool,
}
