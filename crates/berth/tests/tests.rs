//! End-to-end tests of the `berth` binary against real parts: Debian's docker-registry on
//! 127.0.0.1, skopeo as an independent oracle, real files on disk. They run as root (CI
//! does) and build their fixtures with `scripts/fixtures`.

mod containers;
mod images;
mod runtime;
mod support;
mod vm;
