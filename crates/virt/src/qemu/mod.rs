//! The QEMU backend: the typed command-line builder (`args`), the QMP client (`qmp`),
//! `qemu-img` for disk images (`img`) and the translation of a VM definition into a
//! command line (`plan`).

pub mod args;
pub mod img;
pub mod plan;
pub mod qmp;

use std::path::PathBuf;

/// The system emulator berth runs guests with.
pub const SYSTEM_BINARY: &str = "qemu-system-x86_64";

/// The first `name` on `$PATH` (then in /usr/bin and /usr/sbin, which a minimal `$PATH`
/// may lack).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
