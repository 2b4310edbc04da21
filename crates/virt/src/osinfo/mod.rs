//! `--os-variant`: what berth knows about a guest OS — its minimum memory, disk and vCPUs
//! (which become the defaults), whether it has virtio drivers (else SATA and e1000e), and
//! whether it needs UEFI. Looked up in the osinfo database (Debian's osinfo-db, the one
//! virt-install reads) when it is installed, then in a built-in table of the common
//! variants, so that berth works without it and knows releases newer than the database.

mod builtin;
mod db;

use std::path::{Path, PathBuf};

pub use db::OsinfoDbError;

#[derive(Debug, thiserror::Error)]
pub enum OsinfoError {
    #[error("unknown os variant {name:?} (see `osinfo-query os` for the names, or use generic)")]
    Unknown { name: String },
    #[error("read the osinfo database")]
    Db(#[from] OsinfoDbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    Linux,
    Windows,
    Other,
}

/// Where an [`OsVariant`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    OsinfoDb,
    Builtin,
}

/// What berth uses from an OS description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsVariant {
    pub short_id: String,
    pub name: String,
    pub family: OsFamily,
    pub min_memory_mib: Option<u64>,
    pub min_storage_bytes: Option<u64>,
    pub min_vcpus: Option<u32>,
    /// The guest has virtio drivers: virtio-blk and virtio-net are preferred.
    pub virtio: bool,
    /// The guest cannot boot with BIOS firmware.
    pub requires_uefi: bool,
    pub source: Source,
}

impl OsVariant {
    /// The `generic` variant: nothing known, virtio assumed (virt-install does the same).
    pub fn generic() -> Self {
        OsVariant {
            short_id: "generic".into(),
            name: "Generic OS".into(),
            family: OsFamily::Other,
            min_memory_mib: None,
            min_storage_bytes: None,
            min_vcpus: None,
            virtio: true,
            requires_uefi: false,
            source: Source::Builtin,
        }
    }
}

/// The directory osinfo-db installs to; `$OSINFO_SYSTEM_DIR` overrides it, as for libosinfo.
pub fn default_db_dir() -> PathBuf {
    std::env::var_os("OSINFO_SYSTEM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/osinfo"))
}

/// Finds `name` (a short id such as `ubuntu20.04`, or `name=...`/`short-id=...` as
/// virt-install also accepts) in the database at `db_dir`, if present, then in the
/// built-in table.
pub fn lookup(name: &str, db_dir: &Path) -> Result<OsVariant, OsinfoError> {
    let name = name
        .strip_prefix("name=")
        .or_else(|| name.strip_prefix("short-id="))
        .unwrap_or(name);
    if name == "generic" {
        return Ok(OsVariant::generic());
    }
    if db_dir.join("os").is_dir() {
        if let Some(v) = db::lookup(db_dir, name)? {
            return Ok(v);
        }
    }
    builtin::lookup(name).ok_or_else(|| OsinfoError::Unknown {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_without_a_database() {
        let nowhere = Path::new("/nonexistent-osinfo");
        let u = lookup("ubuntu20.04", nowhere).unwrap();
        assert_eq!(u.min_memory_mib, Some(2048));
        assert_eq!(u.source, Source::Builtin);
        assert!(u.virtio);
        let w = lookup("win11", nowhere).unwrap();
        assert_eq!(w.family, OsFamily::Windows);
        assert!(!w.virtio && w.requires_uefi);
        assert_eq!(w.min_vcpus, Some(2));
        assert_eq!(lookup("generic", nowhere).unwrap().short_id, "generic");
        assert_eq!(
            lookup("name=debian12", nowhere).unwrap().short_id,
            "debian12"
        );
        let e = lookup("plan9", nowhere).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown os variant \"plan9\" (see `osinfo-query os` for the names, or use generic)"
        );
    }

    #[test]
    fn every_builtin_entry_is_found_by_its_id() {
        for v in builtin::TABLE {
            let found = builtin::lookup(v.id).unwrap();
            assert_eq!(found.short_id, v.id);
            assert!(found.min_memory_mib.unwrap() >= 512);
        }
    }
}
