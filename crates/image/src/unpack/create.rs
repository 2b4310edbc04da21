//! Creating one entry of each kind in its (already safely opened) parent directory:
//! directories, regular files with their data, symlinks stored verbatim, hard links to an
//! earlier entry of the layer, and device nodes and FIFOs. A path the layer already wrote
//! is replaced, never written through.
//!
//! The per-entry loop in `unpack/mod.rs` builds a [`Slot`] for each entry and calls the
//! method for its kind; `whiteout` reuses [`replacing`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::header::{device_number, Meta, Xattr};
use super::metadata::{apply_fd_meta, apply_path_meta};
use super::walk::{normalize, split_last, ParentCache, StepError, DIR_FLAGS};
use super::{lossy, EscapeReason, Fail, Names, UnpackError, UnpackOp};

/// `O_EXCL` with `O_NOFOLLOW` never opens an existing file or a symlink's target.
const FILE_FLAGS: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Where one entry is created: its open parent `dir`, and the names errors report.
pub(super) struct Slot<'a> {
    pub(super) names: &'a Names<'a>,
    pub(super) dir: BorrowedFd<'a>,
    /// The normalized parent path, empty for the root.
    pub(super) parent: &'a [u8],
    pub(super) name: &'a [u8],
    /// Set once replacing an earlier entry removed a directory, which the caches must forget.
    pub(super) removed_dir: bool,
}

impl Slot<'_> {
    fn fail(&self, fail: Fail) -> UnpackError {
        self.names.fail(fail, self.parent, self.name)
    }

    /// Creates (or keeps) the directory and sets all but its times, which are deferred.
    pub(super) fn dir(&mut self, meta: &Meta, xattrs: &[Xattr]) -> Result<(), UnpackError> {
        let fd =
            create_dir(self.dir, self.name, &mut self.removed_dir).map_err(|f| self.fail(f))?;
        apply_fd_meta(fd.as_fd(), meta, xattrs, false).map_err(|f| self.fail(f))
    }

    /// Creates the file with the entry's data; returns the bytes written.
    pub(super) fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
        xattrs: &[Xattr],
        buf: &mut [u8],
    ) -> Result<u64, UnpackError> {
        let (names, dir, parent, name) = (self.names, self.dir, self.parent, self.name);
        let fd = replacing(
            dir,
            name,
            UnpackOp::CreateFile,
            &mut self.removed_dir,
            || rfs::openat(dir, name, FILE_FLAGS, Mode::from_raw_mode(0o600)),
        )
        .map_err(|f| self.fail(f))?;
        let mut file = File::from(fd);
        let written = copy_data(entry, &mut file, buf).map_err(|e| match e {
            CopyError::Read(source) => names.read(source),
            CopyError::Write(source) => names.io(UnpackOp::Write, parent, name, source),
        })?;
        if written != entry.size() {
            return Err(names.read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("data ends after {written} of {} bytes", entry.size()),
            )));
        }
        apply_fd_meta(file.as_fd(), meta, xattrs, true).map_err(|f| self.fail(f))?;
        Ok(written)
    }

    pub(super) fn symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        meta: &Meta,
        xattrs: &[Xattr],
    ) -> Result<(), UnpackError> {
        let (names, dir, parent, name) = (self.names, self.dir, self.parent, self.name);
        // Stored verbatim: absolute or `..` targets are fine, nothing follows them here.
        let target = entry.link_name_bytes().unwrap_or_default();
        replacing(dir, name, UnpackOp::Symlink, &mut self.removed_dir, || {
            rfs::symlinkat(&*target, dir, name)
        })
        .map_err(|f| self.fail(f))?;
        apply_path_meta(dir, name, meta, xattrs, false, || names.host(parent, name))
            .map_err(|f| self.fail(f))
    }

    /// Links the entry's target, which must be an earlier entry of this layer; `link` and
    /// `link_rel` are reused buffers, `link_parents` the target's parent cache.
    pub(super) fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        root: BorrowedFd<'_>,
        link: &mut Vec<u8>,
        link_rel: &mut Vec<u8>,
        link_parents: &mut ParentCache,
    ) -> Result<(), UnpackError> {
        let (names, dir, parent, name) = (self.names, self.dir, self.parent, self.name);
        link.clear();
        link.extend_from_slice(&entry.link_name_bytes().unwrap_or_default());
        let link_escape = |reason| UnpackError::LinkEscape {
            entry: names.entry(),
            target: lossy(link),
            reason,
        };
        normalize(link, link_rel).map_err(link_escape)?;
        if link_rel.is_empty() {
            return Err(link_escape(EscapeReason::Root));
        }
        let missing = || UnpackError::LinkTargetMissing {
            entry: names.entry(),
            target: lossy(link),
        };
        let (target_parent, target_name) = split_last(link_rel);
        let target_dir =
            link_parents
                .get(root, target_parent, false)
                .map_err(|e| match e.kind {
                    StepError::Symlink => {
                        link_escape(EscapeReason::Symlink(lossy(&target_parent[..e.at])))
                    }
                    StepError::Missing | StepError::NotDir => missing(),
                    StepError::Io(op, source) => names.io(op, b"", &target_parent[..e.at], source),
                })?;
        // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never resolved.
        replacing(dir, name, UnpackOp::Link, &mut self.removed_dir, || {
            rfs::linkat(target_dir, target_name, dir, name, AtFlags::empty())
        })
        .map_err(|f| match f {
            Fail::Io(UnpackOp::Link, e) if e.kind() == io::ErrorKind::NotFound => missing(),
            f => names.fail(f, parent, name),
        })?;
        Ok(())
    }

    /// A device node or FIFO.
    pub(super) fn node<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        file_type: FileType,
        meta: &Meta,
        xattrs: &[Xattr],
    ) -> Result<(), UnpackError> {
        let (names, dir, parent, name) = (self.names, self.dir, self.parent, self.name);
        let dev = match file_type {
            FileType::Fifo => 0,
            _ => device_number(entry).map_err(|e| names.read(e))?,
        };
        replacing(dir, name, UnpackOp::Mknod, &mut self.removed_dir, || {
            rfs::mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev)
        })
        .map_err(|f| self.fail(f))?;
        apply_path_meta(dir, name, meta, xattrs, true, || names.host(parent, name))
            .map_err(|f| self.fail(f))
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies an entry's data; returns the bytes copied, which the caller checks against the
/// header since the tar crate ends the data early, without error, when the stream is cut.
fn copy_data(reader: &mut impl Read, file: &mut File, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut written = 0;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(written),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(CopyError::Write)?;
        written += n as u64;
    }
}

/// Creates (or keeps) directory `name` in `dir` and opens it; anything else at `name` is
/// replaced.
fn create_dir(dir: BorrowedFd<'_>, name: &[u8], removed_dir: &mut bool) -> Result<OwnedFd, Fail> {
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(Errno::EXIST) => match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
            // The same directory again (or one made for an earlier child): it stays.
            Ok(fd) => return Ok(fd),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                *removed_dir |= remove_existing(dir, name)?;
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| Fail::Io(UnpackOp::CreateDir, e.into()))?;
            }
            Err(e) => return Err(Fail::Io(UnpackOp::OpenDir, e.into())),
        },
        Err(e) => return Err(Fail::Io(UnpackOp::CreateDir, e.into())),
    }
    rfs::openat(dir, name, DIR_FLAGS, Mode::empty())
        .map_err(|e| Fail::Io(UnpackOp::OpenDir, e.into()))
}

/// Runs `create`; if `name` already exists (the same path twice in one layer), removes it
/// and runs `create` once more.
pub(super) fn replacing<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    op: UnpackOp,
    removed_dir: &mut bool,
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, Fail> {
    match create() {
        Err(Errno::EXIST) => {
            *removed_dir |= remove_existing(dir, name)?;
            create().map_err(|e| Fail::Io(op, e.into()))
        }
        result => result.map_err(|e| Fail::Io(op, e.into())),
    }
}

/// Removes `name` from `dir`: any non-directory, or an empty directory. A non-empty one is
/// an error rather than a recursive delete. Returns whether a directory was removed.
fn remove_existing(dir: BorrowedFd<'_>, name: &[u8]) -> Result<bool, Fail> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => Ok(false),
        Err(Errno::ISDIR) => rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
            .map(|()| true)
            .map_err(|e| Fail::Io(UnpackOp::Remove, e.into())),
        Err(e) => Err(Fail::Io(UnpackOp::Remove, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tar::EntryType;

    use crate::unpack::test_support::{lstat, require_root, unpack, Layer, TempDir};
    use crate::unpack::UnpackStats;

    #[test]
    fn file_replaces_symlink_instead_of_following_it() {
        let outside = TempDir::new();
        let victim = outside.path().join("victim");
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.symlink(b"f", victim.as_os_str().as_bytes());
        layer.file(b"f", b"data");
        unpack(&layer.finish(), dest.path()).unwrap();
        assert!(!victim.exists(), "wrote through the symlink");
        assert!(lstat(&dest.path().join("f")).file_type().is_file());
        assert_eq!(fs::read(dest.path().join("f")).unwrap(), b"data");
    }

    #[test]
    fn tar_hardlink_outside_is_rejected() {
        let cases: [(&[u8], EscapeReason); 4] = [
            (b"../../etc/passwd", EscapeReason::ParentDir),
            (b"/etc/passwd", EscapeReason::Absolute),
            (b"s/passwd", EscapeReason::Symlink("s".into())),
            (b"./", EscapeReason::Root),
        ];
        for (target, reason) in cases {
            let dest = TempDir::new();
            let mut layer = Layer::new();
            layer.symlink(b"s", b"/etc");
            layer.hardlink(b"h", target);
            let err = unpack(&layer.finish(), dest.path()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::LinkEscape { entry, reason: r, .. }
                    if entry == "h" && *r == reason),
                "{}: {err}",
                String::from_utf8_lossy(target)
            );
            assert!(!dest.path().join("h").exists());
        }
    }

    #[test]
    fn hardlink_to_missing_target_is_rejected() {
        for target in [&b"nope"[..], b"nodir/x", b"later"] {
            let dest = TempDir::new();
            let mut layer = Layer::new();
            layer.hardlink(b"h", target);
            layer.file(b"later", b"too late");
            let err = unpack(&layer.finish(), dest.path()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::LinkTargetMissing { entry, .. } if entry == "h"),
                "{}: {err}",
                String::from_utf8_lossy(target)
            );
        }
    }

    #[test]
    fn hardlink_shares_inode() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"a", b"shared");
        layer.hardlink(b"b", b"./a");
        layer.hardlink(b"sub/c", b"a");
        let stats = unpack(&layer.finish(), dest.path()).unwrap();
        let a = lstat(&dest.path().join("a"));
        for other in ["b", "sub/c"] {
            assert_eq!(lstat(&dest.path().join(other)).ino(), a.ino(), "{other}");
        }
        assert_eq!(a.nlink(), 3);
        assert_eq!(
            stats,
            UnpackStats {
                entries: 3,
                bytes: 6
            }
        );
    }

    #[test]
    fn same_path_twice_is_replaced() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"a", b"one");
        layer.file(b"a", b"two");
        let mut header = layer.header(b"d/", EntryType::Directory);
        header.set_mode(0o700);
        layer.append(header, b"");
        layer.file(b"d/x", b"");
        layer.dir(b"d/");
        layer.file(b"e", b"");
        layer.dir(b"e/");
        layer.dir(b"f/");
        layer.symlink(b"f", b"elsewhere");
        unpack(&layer.finish(), dest.path()).unwrap();
        assert_eq!(fs::read(dest.path().join("a")).unwrap(), b"two");
        assert_eq!(lstat(&dest.path().join("d")).mode() & 0o7777, 0o755);
        assert!(dest.path().join("d/x").exists());
        assert!(lstat(&dest.path().join("e")).is_dir());
        assert!(lstat(&dest.path().join("f")).file_type().is_symlink());
    }

    #[test]
    fn non_empty_dir_is_not_replaced() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"g/x", b"");
        layer.file(b"g", b"");
        let err = unpack(&layer.finish(), dest.path()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Io { op: UnpackOp::Remove, entry, .. } if entry == "g"),
            "{err}"
        );
    }

    #[test]
    fn device_node_and_fifo_are_created() {
        if !require_root("device_node_and_fifo_are_created") {
            return;
        }
        let dest = TempDir::new();
        let mut layer = Layer::new();
        for (path, kind, major, minor, mode) in [
            (&b"dev/null"[..], EntryType::Char, 1, 3, 0o666),
            (b"dev/loop0", EntryType::Block, 7, 0, 0o660),
            (b"run/fifo", EntryType::Fifo, 0, 0, 0o620),
        ] {
            let mut header = layer.header(path, kind);
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
            header.set_mode(mode);
            layer.append(header, b"");
        }
        unpack(&layer.finish(), dest.path()).unwrap();
        let null = lstat(&dest.path().join("dev/null"));
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rfs::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666);
        let lo = lstat(&dest.path().join("dev/loop0"));
        assert!(lo.file_type().is_block_device());
        assert_eq!(lo.rdev(), rfs::makedev(7, 0));
        let fifo = lstat(&dest.path().join("run/fifo"));
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o620);
    }
}
