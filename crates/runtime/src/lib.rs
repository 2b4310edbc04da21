//! The OCI runtime: an OCI bundle (config.json + rootfs) to a process in namespaces, with
//! its rootfs, cgroups, capabilities and seccomp filter. Used by the container engine and
//! by `berth-runc`.
//!
//! Entry points: [`Container`] (create, start, state, kill, delete, exec, pause, update),
//! [`spec::Spec`] (config.json), and [`init_main`], which the binary must call when it is
//! started as `berth-runc init` (the runtime re-executes itself under that name to set up
//! each container process). See docs/runtime.md for the process model.

pub mod caps;
pub mod cgroups;
pub mod container;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod syscall;

pub use container::{Container, ContainerError, CreateOptions, ExecHandle, ExecOptions};
pub use process::init_main;
pub use spec::Spec;
pub use state::{OciState, Status};
