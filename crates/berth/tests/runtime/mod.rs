//! The OCI runtime through `berth-runc`: real containers from the busybox fixture, real
//! namespaces and cgroups, Podman and containerd driving it as their runtime.

mod bad_input;
mod console;
mod harness;
mod lifecycle;
mod peers;
mod resources;
mod security;
