//! Virtual machines, the way virt-install and virsh users work: definitions persisted in
//! the state root, disks (qcow2/raw through qemu-img), install media (ISO 9660 reading for
//! `--location`, a NoCloud seed writer for `--cloud-init`), and the QEMU backend (a typed
//! command-line builder and a QMP client). Each running VM is one daemonized QEMU process;
//! berth keeps no daemon of its own. The CLI (`berth vm ...`) calls [`Vms`].
//!
//! See docs/vm.md for the layout on disk and the decisions behind it.

pub mod cloudinit;
pub mod config;
pub mod host;
pub mod iso;
pub mod location;
pub mod osinfo;
pub mod qemu;
pub mod random;
pub mod runtime;
pub mod state;
pub mod store;
pub mod vm;

pub use config::VmConfig;
pub use runtime::DomainState;
pub use vm::{VmError, Vms};
