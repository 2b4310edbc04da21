//! Containers, Docker-style: create, start, stop, remove, logs, exec, on top of the image
//! store (`berth-image`), the OCI runtime (`berth-runtime`) and networking (`berth-net`).
//! Each running container has its own small supervisor process (`supervisor`), like
//! Podman's conmon; the CLI is a thin layer over this crate.

pub mod id;
pub mod logs;
pub mod state;
pub mod store;
pub mod rootfs;
