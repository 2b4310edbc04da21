//! `--location ISO|DIR`: finds the installer's kernel and initrd in an install tree, as
//! virt-install does, and copies them into the VM's directory for the install boot. An
//! ISO is read with berth's own ISO 9660 reader (nothing is mounted); a directory is read
//! as it is.

use std::io;
use std::path::{Path, PathBuf};

use crate::iso::{IsoError, IsoReader};

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("no installer kernel in {path} (looked for {tried})")]
    NoKernel { path: PathBuf, tried: String },
    #[error("read install tree {path}")]
    Iso {
        path: PathBuf,
        #[source]
        source: IsoError,
    },
    #[error("copy {from} to {to}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where distributions keep the installer's kernel and initrd, as (kernel, initrd).
pub const LAYOUTS: &[(&str, &str, &str)] = &[
    ("casper/vmlinuz", "casper/initrd", "Ubuntu live server"),
    ("casper/vmlinuz", "casper/initrd.gz", "Ubuntu live"),
    ("casper/vmlinuz", "casper/initrd.lz", "Ubuntu live (older)"),
    ("install.amd/vmlinuz", "install.amd/initrd.gz", "Debian"),
    (
        "install/vmlinuz",
        "install/initrd.gz",
        "Ubuntu alternate / Debian",
    ),
    (
        "images/pxeboot/vmlinuz",
        "images/pxeboot/initrd.img",
        "Fedora, RHEL, CentOS",
    ),
    ("isolinux/vmlinuz", "isolinux/initrd.img", "isolinux media"),
    (
        "boot/x86_64/loader/linux",
        "boot/x86_64/loader/initrd",
        "openSUSE",
    ),
    ("boot/vmlinuz-lts", "boot/initramfs-lts", "Alpine"),
    ("live/vmlinuz", "live/initrd.img", "Debian live"),
];

/// The kernel and initrd copied out of a tree, and what the tree looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The layout's kernel path inside the tree, e.g. `casper/vmlinuz`.
    pub kernel_in_tree: &'static str,
    /// The ISO's volume id (none for a directory).
    pub volume_id: Option<String>,
}

/// Finds the kernel and initrd in `location` (an ISO file or a directory) and copies them
/// to `dest_dir/vmlinuz` and `dest_dir/initrd`.
pub fn extract(location: &Path, dest_dir: &Path) -> Result<Extracted, LocationError> {
    let kernel = dest_dir.join("vmlinuz");
    let initrd = dest_dir.join("initrd");
    if location.is_dir() {
        for (k, i, _) in LAYOUTS {
            let (ks, is) = (location.join(k), location.join(i));
            if ks.is_file() && is.is_file() {
                copy(&ks, &kernel)?;
                copy(&is, &initrd)?;
                return Ok(Extracted {
                    kernel,
                    initrd,
                    kernel_in_tree: k,
                    volume_id: None,
                });
            }
        }
        return Err(no_kernel(location));
    }
    let iso_err = |source| LocationError::Iso {
        path: location.to_path_buf(),
        source,
    };
    let iso = IsoReader::open(location).map_err(iso_err)?;
    for (k, i, _) in LAYOUTS {
        let (Some(ke), Some(ie)) = (iso.find(k).map_err(iso_err)?, iso.find(i).map_err(iso_err)?)
        else {
            continue;
        };
        if ke.is_dir || ie.is_dir {
            continue;
        }
        iso.extract(&ke, &kernel).map_err(iso_err)?;
        iso.extract(&ie, &initrd).map_err(iso_err)?;
        return Ok(Extracted {
            kernel,
            initrd,
            kernel_in_tree: k,
            volume_id: Some(iso.volume_id().to_string()).filter(|v| !v.is_empty()),
        });
    }
    Err(no_kernel(location))
}

fn no_kernel(location: &Path) -> LocationError {
    let mut tried: Vec<&str> = LAYOUTS.iter().map(|(k, _, _)| *k).collect();
    tried.dedup();
    LocationError::NoKernel {
        path: location.to_path_buf(),
        tried: tried.join(", "),
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), LocationError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| LocationError::Copy {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        })
}

/// Kernel arguments an installer from this tree needs to find the rest of itself on the
/// CD-ROM, as virt-install adds them: anaconda (Fedora, RHEL) wants its stage 2 by label.
pub fn install_args(e: &Extracted) -> Option<String> {
    let label = e.volume_id.as_ref()?;
    (e.kernel_in_tree == "images/pxeboot/vmlinuz")
        .then(|| format!("inst.stage2=hd:LABEL={}", label.replace(' ', "\\x20")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::{write_iso, IsoFile};

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-loc-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn directory_trees() {
        let d = tmp("dir");
        let tree = d.join("tree");
        std::fs::create_dir_all(tree.join("images/pxeboot")).unwrap();
        std::fs::write(tree.join("images/pxeboot/vmlinuz"), b"K").unwrap();
        std::fs::write(tree.join("images/pxeboot/initrd.img"), b"I").unwrap();
        let out = d.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let e = extract(&tree, &out).unwrap();
        assert_eq!(e.kernel_in_tree, "images/pxeboot/vmlinuz");
        assert_eq!(std::fs::read(&e.kernel).unwrap(), b"K");
        assert_eq!(std::fs::read(&e.initrd).unwrap(), b"I");
        assert_eq!(install_args(&e), None);
        let empty = d.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = extract(&empty, &out).unwrap_err().to_string();
        assert!(
            err.contains("looked for casper/vmlinuz, install.amd/vmlinuz"),
            "{err}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn flat_iso_without_a_tree_is_refused() {
        let d = tmp("iso");
        let iso = d.join("x.iso");
        write_iso(
            &iso,
            "Fedora-S-dvd-x86_64-39",
            &[IsoFile {
                name: "vmlinuz".into(),
                data: b"K".to_vec(),
            }],
        )
        .unwrap();
        assert!(matches!(
            extract(&iso, &d),
            Err(LocationError::NoKernel { .. })
        ));
        let e = Extracted {
            kernel: "k".into(),
            initrd: "i".into(),
            kernel_in_tree: "images/pxeboot/vmlinuz",
            volume_id: Some("Fedora-S-dvd-x86_64-39 x".into()),
        };
        assert_eq!(
            install_args(&e).as_deref(),
            Some("inst.stage2=hd:LABEL=Fedora-S-dvd-x86_64-39\\x20x")
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
