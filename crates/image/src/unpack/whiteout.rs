//! OCI whiteouts turned into overlayfs ones (image-spec `layer.md`, "Whiteouts"; kernel
//! `Documentation/filesystems/overlayfs.rst`): `dir/.wh.NAME` becomes a 0/0 character
//! device at `dir/NAME`, and `dir/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `dir`.
//! Other `.wh..wh.*` names are AUFS bookkeeping that old Docker layers carry; they are
//! skipped, as containerd does.
//!
//! Called by the per-entry loop in `unpack/mod.rs` for every entry whose last component
//! starts with `.wh.`.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, XattrFlags};

use super::create::replacing;
use super::header::Meta;
use super::walk::{open_dir, split_last, Caches, WalkError, DIR_FLAGS};
use super::{Fail, Names, UnpackError, UnpackOp};

pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Handles `parent/.wh.*` entries: overlayfs keeps whiteouts as 0/0 character devices and
/// opaque directories as an xattr, where OCI layers use marker files.
pub(super) fn whiteout(
    names: &Names<'_>,
    root: BorrowedFd<'_>,
    caches: Caches<'_>,
    rel: &[u8],
    meta: &Meta,
) -> Result<(), UnpackError> {
    let (parent, name) = split_last(rel);
    if name == WHITEOUT_OPAQUE {
        let (grandparent, dir_name) = split_last(parent);
        let opened;
        let dir = if parent.is_empty() {
            // An opaque root hides every lower layer; unusual but well-formed.
            root
        } else {
            // The marked directory is reached like any entry, and made if it is missing.
            let grand = caches
                .parents
                .get(root, grandparent, true)
                .map_err(|e| names.walk(e, grandparent))?;
            opened = open_dir(grand, dir_name, true, DIR_FLAGS).map_err(|kind| {
                names.walk(
                    WalkError {
                        at: parent.len(),
                        kind,
                    },
                    parent,
                )
            })?;
            opened.as_fd()
        };
        return rfs::fsetxattr(dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(|e| {
            let fail = Fail::Xattr(OVERLAY_OPAQUE_XATTR.to_owned(), e.into());
            names.fail(fail, grandparent, dir_name)
        });
    }
    if name.starts_with(WHITEOUT_META_PREFIX) {
        // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): no meaning for overlayfs.
        return Ok(());
    }
    let target = &name[WHITEOUT_PREFIX.len()..];
    if target.is_empty() || target == b"." || target == b".." {
        return Err(UnpackError::InvalidWhiteout {
            entry: names.entry(),
        });
    }
    let dir = caches
        .parents
        .get(root, parent, true)
        .map_err(|e| names.walk(e, parent))?;
    // A whiteout hides whatever this layer itself put there earlier; a directory that is
    // not empty is refused by `remove_existing`.
    let mut removed_dir = false;
    replacing(dir, target, UnpackOp::Mknod, &mut removed_dir, || {
        // Mode 0, as the kernel's own whiteouts (`WHITEOUT_MODE` in fs/namei.c).
        let dev = rfs::makedev(0, 0);
        rfs::mknodat(dir, target, FileType::CharacterDevice, Mode::empty(), dev)
    })
    .map_err(|f| names.fail(f, parent, target))?;
    rfs::chownat(
        dir,
        target,
        Some(meta.uid),
        Some(meta.gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| names.io(UnpackOp::Chown, parent, target, e))?;
    if removed_dir {
        let mut path = parent.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(target);
        caches.forget_dir(&path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tar::EntryType;

    use crate::unpack::test_support::{lstat, require_root, unpack, xattr, Layer, TempDir};

    #[test]
    fn whiteout_becomes_char_device_0_0() {
        if !require_root("whiteout_becomes_char_device_0_0") {
            return;
        }
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.dir(b"d/");
        let mut header = layer.header(b"d/.wh.gone", EntryType::Regular);
        header.set_uid(1000);
        header.set_gid(1001);
        layer.append(header, b"");
        // The parent of a whiteout need not be in the layer.
        layer.file(b"e/.wh.x", b"");
        // AUFS bookkeeping, not a whiteout of ".wh.plnk".
        layer.file(b"d/.wh..wh.plnk", b"");
        unpack(&layer.finish(), dest.path()).unwrap();

        let gone = lstat(&dest.path().join("d/gone"));
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert_eq!((gone.uid(), gone.gid()), (1000, 1001));
        assert!(lstat(&dest.path().join("e/x")).file_type().is_char_device());
        assert_eq!(lstat(&dest.path().join("e")).mode() & 0o7777, 0o755);
        let names: Vec<_> = fs::read_dir(dest.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["gone"]);
    }

    #[test]
    fn invalid_whiteout_name_is_rejected() {
        for name in [&b"d/.wh."[..], b"d/.wh..", b"d/.wh..."] {
            let dest = TempDir::new();
            let mut layer = Layer::new();
            layer.file(name, b"");
            let err = unpack(&layer.finish(), dest.path()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::InvalidWhiteout { .. }),
                "{}: {err}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn opaque_dir_gets_overlay_xattr() {
        if !require_root("opaque_dir_gets_overlay_xattr") {
            return;
        }
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.dir(b"d/");
        layer.file(b"d/.wh..wh..opq", b"");
        layer.file(b"d/kept", b"");
        // Opaque marker for a directory the layer does not list itself.
        layer.file(b"n/m/.wh..wh..opq", b"");
        unpack(&layer.finish(), dest.path()).unwrap();
        for dir in ["d", "n/m"] {
            let path = dest.path().join(dir);
            assert_eq!(xattr(&path, OVERLAY_OPAQUE_XATTR), b"y", "{dir}");
            assert!(!path.join(".wh..wh..opq").exists(), "{dir}");
        }
        assert!(dest.path().join("d/kept").exists());
    }
}
