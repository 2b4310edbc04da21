//! Applying an entry's metadata: owner, then mode (chown clears setuid/setgid), then xattrs
//! (chown also drops `security.capability`), then times; and, after the last entry, the
//! deferred directory times, children before parents. See the metadata policy in the
//! `unpack` module doc for what is skipped and why.
//!
//! Called by `create` for each new entry and by the per-entry loop in `unpack/mod.rs` for
//! the layer root and, at the end, the directory times.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, Timestamps, XattrFlags};
use rustix::io::Errno;

use super::header::{Meta, Xattr};
use super::walk::split_last;
use super::{lossy, Fail, Names, UnpackError, UnpackOp, Unpacker};

/// Owner, mode, xattrs and (unless deferred) times, through an fd.
pub(super) fn apply_fd_meta(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    xattrs: &[Xattr],
    times: bool,
) -> Result<(), Fail> {
    rfs::fchown(fd, Some(meta.uid), Some(meta.gid))
        .map_err(|e| Fail::Io(UnpackOp::Chown, e.into()))?;
    rfs::fchmod(fd, meta.mode).map_err(|e| Fail::Io(UnpackOp::Chmod, e.into()))?;
    set_xattrs(xattrs, |name, value| {
        rfs::fsetxattr(fd, name, value, XattrFlags::empty())
    })?;
    if times {
        rfs::futimens(fd, &meta.times()).map_err(|e| Fail::Io(UnpackOp::SetTimes, e.into()))?;
    }
    Ok(())
}

/// Owner, mode (unless a symlink), xattrs and times of `name` in `dir`, for entries that
/// cannot be opened for writing (symlinks, device nodes, FIFOs).
pub(super) fn apply_path_meta(
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    xattrs: &[Xattr],
    chmod: bool,
    host: impl FnOnce() -> PathBuf,
) -> Result<(), Fail> {
    rfs::chownat(
        dir,
        name,
        Some(meta.uid),
        Some(meta.gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Fail::Io(UnpackOp::Chown, e.into()))?;
    if chmod {
        // Not a symlink (we just made the node), so following the last component is moot.
        rfs::chmodat(dir, name, meta.mode, AtFlags::empty())
            .map_err(|e| Fail::Io(UnpackOp::Chmod, e.into()))?;
    }
    if !xattrs.is_empty() {
        // There is no fd- and dirfd-relative l*setxattr before Linux 6.13; the host path is
        // safe since every parent was checked to be a real directory.
        let path = host();
        set_xattrs(xattrs, |name, value| {
            rfs::lsetxattr(&path, name, value, XattrFlags::empty())
        })?;
    }
    rfs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Fail::Io(UnpackOp::SetTimes, e.into()))
}

/// Sets each xattr; see the module doc of `unpack` for which failures are skipped.
fn set_xattrs(
    xattrs: &[Xattr],
    mut set: impl FnMut(&[u8], &[u8]) -> rustix::io::Result<()>,
) -> Result<(), Fail> {
    for (name, value) in xattrs {
        match set(name, value) {
            Ok(()) => {}
            Err(Errno::NOTSUP) if name.starts_with(b"user.") => {}
            Err(e) => return Err(Fail::Xattr(lossy(name), e.into())),
        }
    }
    Ok(())
}

impl Unpacker<'_> {
    /// Sets the deferred directory times, children before parents.
    pub(super) fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        // Reverse byte order puts `a/b` before its prefix `a` and keeps siblings together,
        // so the parent cache stays warm. The sort is stable: when a directory appears
        // twice, its later entry is applied last and wins.
        self.dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        let root = self.root.as_fd();
        for (rel, mtime) in &self.dir_times {
            let names = Names {
                dest: self.dest,
                entry: &rel[..],
            };
            let times = Timestamps {
                last_access: *mtime,
                last_modification: *mtime,
            };
            if rel.is_empty() {
                rfs::futimens(root, &times)
                    .map_err(|e| names.io(UnpackOp::SetTimes, b"", b"", e))?;
                continue;
            }
            let (parent, name) = split_last(rel);
            let dir = self
                .parents
                .get(root, parent, false)
                .map_err(|e| names.walk(e, parent))?;
            rfs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| names.io(UnpackOp::SetTimes, parent, name, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use tar::EntryType;

    use crate::unpack::test_support::{
        lstat, require_root, set_bytes, unpack, xattr, Layer, TempDir,
    };
    use crate::unpack::UnpackStats;

    #[test]
    fn ownership_mode_and_mtime_are_kept() {
        if !require_root("ownership_mode_and_mtime_are_kept") {
            return;
        }
        let dest = TempDir::new();
        let mut layer = Layer::new();
        let mut entry = |path: &[u8], kind, mode, ids: (u64, u64), mtime, data: &[u8]| {
            let mut header = layer.header(path, kind);
            header.set_mode(mode);
            header.set_uid(ids.0);
            header.set_gid(ids.1);
            header.set_mtime(mtime);
            if kind == EntryType::Symlink {
                set_bytes(&mut header.as_old_mut().linkname, b"suid");
            }
            layer.append(header, data);
        };
        entry(
            b"d/",
            EntryType::Directory,
            0o750,
            (1000, 1001),
            1_000_000,
            b"",
        );
        entry(
            b"d/suid",
            EntryType::Regular,
            0o4755,
            (1000, 1001),
            2_000_000,
            b"#!/bin/sh\n",
        );
        entry(
            b"d/sgid/",
            EntryType::Directory,
            0o2775,
            (0, 1001),
            1_500_000,
            b"",
        );
        entry(
            b"d/sgid/tmp/",
            EntryType::Directory,
            0o1777,
            (0, 0),
            1_700_000,
            b"",
        );
        entry(
            b"d/sgid/tmp/f",
            EntryType::Regular,
            0o600,
            (1002, 1002),
            1_800_000,
            b"x",
        );
        entry(
            b"d/link",
            EntryType::Symlink,
            0o777,
            (1003, 1004),
            3_000_000,
            b"",
        );
        let stats = unpack(&layer.finish(), dest.path()).unwrap();
        assert_eq!(
            stats,
            UnpackStats {
                entries: 6,
                bytes: 11
            }
        );

        let expect = |path: &str, mode: u32, ids: (u32, u32), mtime: i64| {
            let meta = lstat(&dest.path().join(path));
            assert_eq!(meta.mode() & 0o7777, mode, "{path} mode");
            assert_eq!((meta.uid(), meta.gid()), ids, "{path} owner");
            // Directories are checked after their children were written.
            assert_eq!(
                (meta.mtime(), meta.mtime_nsec()),
                (mtime, 0),
                "{path} mtime"
            );
            assert_eq!(meta.atime(), mtime, "{path} atime");
        };
        expect("d", 0o750, (1000, 1001), 1_000_000);
        expect("d/suid", 0o4755, (1000, 1001), 2_000_000);
        expect("d/sgid", 0o2775, (0, 1001), 1_500_000);
        expect("d/sgid/tmp", 0o1777, (0, 0), 1_700_000);
        expect("d/sgid/tmp/f", 0o600, (1002, 1002), 1_800_000);
        expect("d/link", 0o777, (1003, 1004), 3_000_000);
        assert_eq!(
            fs::read_link(dest.path().join("d/link")).unwrap(),
            Path::new("suid")
        );
        assert_eq!(
            fs::read(dest.path().join("d/suid")).unwrap(),
            b"#!/bin/sh\n"
        );
    }

    #[test]
    fn pax_xattr_is_applied() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.pax(&[("SCHILY.xattr.user.berth", b"hello")]);
        layer.file(b"f", b"");
        layer.pax(&[("SCHILY.xattr.user.dir", b"\x00\x01binary")]);
        layer.dir(b"d/");
        let tar = layer.finish();

        let probe = dest.path().join("probe");
        fs::write(&probe, b"").unwrap();
        let supported = rfs::lsetxattr(&probe, "user.probe", b"1", XattrFlags::empty());
        fs::remove_file(&probe).unwrap();
        match supported {
            Err(Errno::NOTSUP) => {
                eprintln!(
                    "SKIPPED pax_xattr_is_applied: {} has no user xattrs; checking only that \
                     they are skipped without error",
                    dest.path().display()
                );
                unpack(&tar, dest.path()).expect("unsupported user.* xattrs are skipped");
            }
            Err(e) => panic!("probe user xattr: {e}"),
            Ok(()) => {
                unpack(&tar, dest.path()).unwrap();
                assert_eq!(xattr(&dest.path().join("f"), "user.berth"), b"hello");
                assert_eq!(xattr(&dest.path().join("d"), "user.dir"), b"\x00\x01binary");
            }
        }
    }

    #[test]
    fn pax_xattr_on_symlink_and_fifo_is_set_without_following() {
        // user.* xattrs exist only on files and directories; trusted.* needs root.
        if !require_root("pax_xattr_on_symlink_and_fifo_is_set_without_following") {
            return;
        }
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"target", b"");
        layer.pax(&[("SCHILY.xattr.trusted.berth", b"link")]);
        layer.symlink(b"l", b"target");
        layer.pax(&[("SCHILY.xattr.trusted.berth", b"fifo")]);
        layer.link(EntryType::Fifo, b"p", b"");
        unpack(&layer.finish(), dest.path()).unwrap();
        assert_eq!(xattr(&dest.path().join("l"), "trusted.berth"), b"link");
        assert_eq!(xattr(&dest.path().join("p"), "trusted.berth"), b"fifo");
        let on_target =
            rfs::lgetxattr(dest.path().join("target"), "trusted.berth", &mut [0; 8][..]);
        assert_eq!(on_target, Err(Errno::NODATA), "followed the symlink");
    }

    #[test]
    fn pax_xattr_failure_names_entry_and_xattr() {
        let dest = TempDir::new();
        let name = format!("user.{}", "x".repeat(300));
        let mut layer = Layer::new();
        layer.pax(&[(&format!("SCHILY.xattr.{name}"), b"v")]);
        layer.file(b"f", b"");
        let err = unpack(&layer.finish(), dest.path()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Xattr { entry, name: n, .. } if entry == "f" && *n == name),
            "{err}"
        );
    }
}
