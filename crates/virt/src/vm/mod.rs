//! [`Vms`]: the virt-install and virsh verbs over the store, the host checks and QEMU.
//! One file per verb group: `create.rs` (define), `start.rs`, `stop.rs` (shutdown, destroy,
//! reboot, reset, suspend, resume), `info.rs` (list, dominfo, domstate), `undefine.rs`,
//! `snapshot.rs`, `disk.rs`, `console.rs`, `taps.rs` (tap devices for bridged NICs).
//!
//! Every verb that changes a VM holds its lock (`store.rs`) while it does, so concurrent
//! berth commands on one VM serialize; waiting for a guest (shutdown) happens without it.

mod console;
mod create;
pub mod disk;
mod info;
mod snapshot;
mod start;
mod stop;
mod taps;
mod undefine;

use std::io;
use std::path::{Path, PathBuf};

pub use console::ConsoleSession;
pub use create::Created;
pub use info::{VmInfo, VmSummary};
pub use start::{StartOptions, Started};
pub use undefine::{StorageRemoval, Undefined};

use crate::cloudinit::CloudInitError;
use crate::config::ConfigError;
use crate::location::LocationError;
use crate::osinfo::OsinfoError;
use crate::qemu::img::ImgError;
use crate::qemu::qmp::QmpError;
use crate::runtime::{self, Observed, RunPaths, TapRecord};
use crate::store::{StoreError, VmLock, VmStore};

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Osinfo(#[from] OsinfoError),
    #[error(transparent)]
    Img(#[from] ImgError),
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(transparent)]
    CloudInit(#[from] CloudInitError),
    #[error("domain {0} already exists")]
    Exists(String),
    #[error("domain {0} is already active")]
    AlreadyActive(String),
    #[error("domain {0} is not running")]
    NotRunning(String),
    #[error("domain {0} is not paused")]
    NotPaused(String),
    #[error("domain {0} is active: shut it down or destroy it first")]
    Active(String),
    #[error("{what} {path} does not exist")]
    Missing { what: &'static str, path: PathBuf },
    #[error("{what} {path}")]
    Access {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--memory {requested}: more than the host's memory ({host} MiB)")]
    MemoryTooLarge { requested: u64, host: u64 },
    #[error("an install method is required: --cdrom, --location, --import or --kernel")]
    NoInstallMethod,
    #[error("{0} and {1} exclude each other")]
    Conflict(&'static str, &'static str),
    #[error("{0} needs {1}")]
    Needs(&'static str, &'static str),
    #[error("qemu-system-x86_64 is not installed (Debian: apt install qemu-system-x86)")]
    QemuMissing,
    #[error("--accel kvm: KVM is not usable here: {0}")]
    KvmUnusable(String),
    #[error("no UEFI firmware found for --boot uefi (Debian: apt install ovmf)")]
    NoUefi,
    #[error("os variant {0} cannot boot with BIOS firmware: use --boot uefi")]
    NeedsUefi(String),
    #[error("{count} SATA disks and CD-ROMs do not fit on the {ports} ports of q35's AHCI controller (use bus=virtio)")]
    TooManySata { count: usize, ports: usize },
    #[error("bridge {0} does not exist")]
    NoBridge(String),
    #[error("{path} is a {actual} image, not {given}")]
    FormatMismatch {
        path: PathBuf,
        actual: String,
        given: String,
    },
    #[error("{0} already exists")]
    FileExists(PathBuf),
    #[error("unix socket path {0} is too long (use a shorter --run-root)")]
    SocketPath(PathBuf),
    #[error("start {name}: {message}")]
    Launch { name: String, message: String },
    #[error("start {name}: run qemu")]
    Spawn {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("domain {name}")]
    Qmp {
        name: String,
        #[source]
        source: QmpError,
    },
    #[error("domain {name} did not shut down within {seconds} s (a guest that ignores ACPI stops with destroy)")]
    ShutdownTimeout { name: String, seconds: u64 },
    #[error("domain {name}: qemu (pid {pid}) did not exit")]
    KillFailed { name: String, pid: u32 },
    #[error("domain {name} has no snapshot {snapshot}")]
    NoSnapshot { name: String, snapshot: String },
    #[error("domain {name} already has a snapshot {snapshot}")]
    SnapshotExists { name: String, snapshot: String },
    #[error("snapshot name {0:?}: use letters, digits, '_', '.', '-'")]
    BadSnapshotName(String),
    #[error("internal snapshots need qcow2 disks, and {target} ({path}) is {format}")]
    SnapshotNeedsQcow2 {
        target: String,
        path: PathBuf,
        format: String,
    },
    #[error("domain {name}: {command}: {message}")]
    Monitor {
        name: String,
        command: String,
        message: String,
    },
    #[error("domain {name} has no disk {target}")]
    NoDisk { name: String, target: String },
    #[error("{path}: cannot shrink a disk ({current} bytes) to {requested} bytes")]
    Shrink {
        path: PathBuf,
        current: u64,
        requested: u64,
    },
    #[error("an active console session exists for domain {0}")]
    ConsoleBusy(String),
    #[error("domain {0} has no VNC display (it was defined with --graphics none)")]
    NoVnc(String),
    #[error("network for domain {name}")]
    Net {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The VMs of one state root.
#[derive(Debug, Clone)]
pub struct Vms {
    store: VmStore,
    state_root: PathBuf,
    osinfo_dir: PathBuf,
}

impl Vms {
    /// Opens the VM store under `state_root` (definitions) and `run_root` (sockets, pids).
    pub fn open(state_root: &Path, run_root: &Path) -> Result<Self, VmError> {
        Ok(Self {
            store: VmStore::open(state_root, run_root)?,
            state_root: state_root.to_path_buf(),
            osinfo_dir: crate::osinfo::default_db_dir(),
        })
    }

    /// Reads OS variants from `dir` instead of /usr/share/osinfo (tests).
    pub fn with_osinfo_dir(mut self, dir: PathBuf) -> Self {
        self.osinfo_dir = dir;
        self
    }

    pub fn store(&self) -> &VmStore {
        &self.store
    }

    pub(crate) fn run_paths(&self, name: &str) -> RunPaths {
        RunPaths::new(self.store.run_dir(name))
    }

    pub(crate) fn console_log(&self, name: &str) -> PathBuf {
        self.store.vm_dir(name).join("console.log")
    }

    /// Locks an existing VM; `NotFound` without leaving a lock file behind otherwise.
    pub(crate) fn lock_existing(&self, name: &str) -> Result<VmLock, VmError> {
        crate::config::check_name(name).map_err(|_| StoreError::NotFound(name.to_string()))?;
        if !self.store.exists(name) {
            return Err(StoreError::NotFound(name.to_string()).into());
        }
        let mut lock = self.store.lock(name)?;
        if !self.store.exists(name) {
            lock.remove_on_release();
            return Err(StoreError::NotFound(name.to_string()).into());
        }
        Ok(lock)
    }

    /// Observes the VM and, holding its lock, removes what a dead QEMU left behind.
    pub(crate) fn observe_locked(&self, name: &str) -> Observed {
        let paths = self.run_paths(name);
        let o = runtime::observe(&paths);
        if o.stale {
            let taps = o
                .runtime
                .as_ref()
                .map(|r| r.taps.as_slice())
                .unwrap_or_default();
            self.cleanup_run(name, &paths, taps);
        }
        o
    }

    /// Tears down what a run left: its taps and run directory. Best effort: a failure here
    /// must not hide the verb's own result, and a leftover directory is retried by the
    /// next command.
    pub(crate) fn cleanup_run(&self, name: &str, paths: &RunPaths, taps: &[TapRecord]) {
        taps::remove(&self.state_root, name, taps);
        let _ = runtime::clear(paths);
    }

    pub(crate) fn qmp_err(name: &str) -> impl FnOnce(QmpError) -> VmError + '_ {
        move |source| VmError::Qmp {
            name: name.to_string(),
            source,
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
