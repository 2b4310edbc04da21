//! The OCI runtime: an OCI bundle (config.json + rootfs) to a process in namespaces, with its rootfs, cgroups, capabilities and seccomp filter. Used by the container engine and by `berth-runc`.
