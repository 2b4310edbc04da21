//! ISO 9660 images, the subset berth needs: reading files out of installer ISOs for
//! `--location` (`read`), and writing the small NoCloud seed for `--cloud-init` (`write`).
//!
//! Both follow ECMA-119 (ISO 9660) for the volume and directory structures and the Rock
//! Ridge Interchange Protocol (RRIP 1.09, on top of SUSP 1.09) for POSIX names, which is
//! how Linux's isofs driver and cloud-init see lower-case names such as `user-data`.

pub mod read;
pub mod write;

pub use read::{IsoEntry, IsoError, IsoReader};
pub use write::{write_iso, IsoFile, IsoWriteError};

/// Bytes per logical sector (ECMA-119 6.1.2: 2048 on every disc berth meets).
pub const SECTOR: u64 = 2048;
/// The first volume descriptor lives in sector 16, after the system area.
pub const FIRST_DESCRIPTOR: u64 = 16;

/// Directory record flag: the entry is a directory (ECMA-119 9.1.6).
const FLAG_DIRECTORY: u8 = 0x02;

/// A both-byte-order 32-bit field (ECMA-119 7.3.3): little-endian then big-endian.
fn both_u32(v: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..].copy_from_slice(&v.to_be_bytes());
    b
}

/// A both-byte-order 16-bit field (ECMA-119 7.2.3).
fn both_u16(v: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&v.to_le_bytes());
    b[2..].copy_from_slice(&v.to_be_bytes());
    b
}
