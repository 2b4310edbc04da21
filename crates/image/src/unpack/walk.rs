//! Reaching an entry's parent directory without leaving the layer: entry names are
//! normalized (absolute names and `..` refused), then each parent is opened component by
//! component with `O_NOFOLLOW`, so that no symlink planted by an earlier entry is ever
//! traversed (the "tar slip" / CVE-2018-15664 class).
//!
//! The per-entry loop in `unpack/mod.rs`, the hard link and whiteout code and the deferred
//! directory times all reach their directories through the [`ParentCache`] here.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec};
use rustix::io::Errno;

use super::{lossy, EscapeReason, Names, UnpackError, UnpackOp};

/// Flags for walking parent directories: `O_PATH` needs only search permission and
/// `O_NOFOLLOW` makes a symlink fail instead of being followed.
const WALK_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Flags for a directory whose owner, mode or xattrs we set through the fd.
pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Normalizes an entry name into `out` as `a/b/c`: strips `./`, empty and `.` components;
/// refuses absolute names and `..` anywhere (even `a/../b`, which tar would accept, since
/// no legitimate layer writer produces it).
pub(super) fn normalize(path: &[u8], out: &mut Vec<u8>) -> Result<(), EscapeReason> {
    out.clear();
    if path.first() == Some(&b'/') {
        return Err(EscapeReason::Absolute);
    }
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(EscapeReason::ParentDir),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    Ok(())
}

/// Splits a normalized path into its parent (possibly empty) and its last component.
pub(super) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// Why opening one path component as a directory failed.
pub(super) enum StepError {
    Symlink,
    NotDir,
    Missing,
    Io(UnpackOp, io::Error),
}

pub(super) struct WalkError {
    /// Length of the prefix of the walked path that ends at the failing component.
    pub(super) at: usize,
    pub(super) kind: StepError,
}

/// Opens directory `name` in `dir` without following a symlink, creating it (mode 0755)
/// when `create` is set and it is missing.
pub(super) fn open_dir(
    dir: BorrowedFd<'_>,
    name: &[u8],
    create: bool,
    flags: OFlags,
) -> Result<OwnedFd, StepError> {
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) if create => {
            rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
                .map_err(|e| StepError::Io(UnpackOp::CreateDir, e.into()))?;
            let fd = rfs::openat(dir, name, flags, Mode::empty())
                .map_err(|e| StepError::Io(UnpackOp::OpenDir, e.into()))?;
            // mkdir honours the umask; implicit parents are 0755 whatever it is. An O_PATH
            // fd cannot be fchmod-ed, so go through the name (just made by us, a directory).
            rfs::chmodat(dir, name, Mode::from_raw_mode(0o755), AtFlags::empty())
                .map_err(|e| StepError::Io(UnpackOp::Chmod, e.into()))?;
            Ok(fd)
        }
        Err(Errno::NOENT) => Err(StepError::Missing),
        // O_NOFOLLOW|O_DIRECTORY fails on a symlink with ELOOP or ENOTDIR; lstat tells
        // which of the two the component is.
        Err(err @ (Errno::LOOP | Errno::NOTDIR)) => {
            let stat = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| StepError::Io(UnpackOp::Stat, e.into()))?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => Err(StepError::Symlink),
                FileType::Directory => Err(StepError::Io(UnpackOp::OpenDir, err.into())),
                _ => Err(StepError::NotDir),
            }
        }
        Err(e) => Err(StepError::Io(UnpackOp::OpenDir, e.into())),
    }
}

/// The open directory chain of the last parent looked up, so that consecutive entries in
/// one directory cost no path walk and a sibling directory costs one `openat`.
///
/// A cached fd stays valid for its path because directories are only ever removed when
/// empty and replaced by a later entry, and [`Caches::forget_dir`] clears the cache when that happens.
#[derive(Default)]
pub(super) struct ParentCache {
    /// The normalized path whose components `chain` holds.
    path: Vec<u8>,
    /// For each component of `path`: where it ends in `path`, and its fd.
    chain: Vec<(usize, OwnedFd)>,
}

impl ParentCache {
    /// Returns an fd of directory `parent` (normalized, empty for the root), opening each
    /// component with `O_NOFOLLOW` so that no symlink is ever traversed.
    pub(super) fn get<'a>(
        &'a mut self,
        root: BorrowedFd<'a>,
        parent: &[u8],
        create: bool,
    ) -> Result<BorrowedFd<'a>, WalkError> {
        let keep = self
            .chain
            .iter()
            .take_while(|&&(end, _)| {
                parent.len() >= end
                    && parent[..end] == self.path[..end]
                    && (parent.len() == end || parent[end] == b'/')
            })
            .count();
        self.chain.truncate(keep);
        self.path.clear();
        self.path.extend_from_slice(parent);

        let mut start = self.chain.last().map_or(0, |&(end, _)| end + 1);
        while start < parent.len() {
            let end = parent[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(parent.len(), |i| start + i);
            let dir = self.chain.last().map_or(root, |(_, fd)| fd.as_fd());
            let fd = open_dir(dir, &parent[start..end], create, WALK_FLAGS)
                .map_err(|kind| WalkError { at: end, kind })?;
            self.chain.push((end, fd));
            start = end + 1;
        }
        Ok(self.chain.last().map_or(root, |(_, fd)| fd.as_fd()))
    }

    fn clear(&mut self) {
        self.path.clear();
        self.chain.clear();
    }
}

/// The state that must forget a directory once it is removed.
pub(super) struct Caches<'a> {
    pub(super) parents: &'a mut ParentCache,
    pub(super) link_parents: &'a mut ParentCache,
    pub(super) dir_times: &'a mut Vec<(Box<[u8]>, Timespec)>,
}

impl Caches<'_> {
    /// Drops what refers to directory `rel`, just removed: its pending times (which would
    /// otherwise land on whatever replaced it) and, defensively, the cached parent chains.
    pub(super) fn forget_dir(self, rel: &[u8]) {
        self.parents.clear();
        self.link_parents.clear();
        self.dir_times.retain(|(path, _)| {
            !(path.starts_with(rel) && (path.len() == rel.len() || path[rel.len()] == b'/'))
        });
    }
}

impl Names<'_> {
    /// Turns a failed walk down `walked` (a normalized path) into the entry's error.
    pub(super) fn walk(&self, err: WalkError, walked: &[u8]) -> UnpackError {
        let prefix = &walked[..err.at];
        match err.kind {
            StepError::Symlink => UnpackError::Escape {
                entry: self.entry(),
                reason: EscapeReason::Symlink(lossy(prefix)),
            },
            StepError::NotDir => UnpackError::NotADirectory {
                entry: self.entry(),
                parent: lossy(prefix),
            },
            StepError::Missing => self.io(
                UnpackOp::OpenDir,
                b"",
                prefix,
                io::Error::from(io::ErrorKind::NotFound),
            ),
            StepError::Io(op, source) => self.io(op, b"", prefix, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;

    use crate::unpack::test_support::{unpack, Layer, TempDir};
    use crate::unpack::{EscapeReason, UnpackError};

    #[test]
    fn tar_dotdot_entry_is_rejected() {
        let dest = TempDir::new();
        let marker = format!("berth-dotdot-{}", std::process::id());
        for name in [
            format!("../{marker}"),
            format!("a/../../{marker}"),
            format!("./a/../{marker}"),
        ] {
            let mut layer = Layer::new();
            layer.file(name.as_bytes(), b"x");
            let err = unpack(&layer.finish(), dest.path()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::Escape { entry, reason: EscapeReason::ParentDir }
                    if *entry == name),
                "{name}: {err}"
            );
        }
        assert!(!std::env::temp_dir().join(&marker).exists());
        assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 0);
    }

    #[test]
    fn tar_absolute_entry_is_rejected() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"/etc/passwd", b"root::0:0::/:/bin/sh\n");
        let err = unpack(&layer.finish(), dest.path()).unwrap_err();
        assert!(
            matches!(
                &err,
                UnpackError::Escape {
                    reason: EscapeReason::Absolute,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "tar entry /etc/passwd escapes the layer directory"
        );
    }

    #[test]
    fn tar_symlink_parent_escape_is_rejected() {
        let outside = TempDir::new();
        let target = outside.path().as_os_str().as_bytes();
        let cases: [(&[u8], &str); 5] = [
            (b"a/evil", "a"),
            (b"a/sub/evil", "a"),
            (b"a/.wh.evil", "a"),
            (b"a/.wh..wh..opq", "a"),
            (b"d/l/evil", "d/l"),
        ];
        for (entry, symlink) in cases {
            let dest = TempDir::new();
            let mut layer = Layer::new();
            layer.symlink(b"a", target);
            layer.dir(b"d/");
            // Relative and pointing inside the layer at first sight: still never traversed.
            layer.symlink(b"d/l", b"../../../../../../../..");
            layer.file(entry, b"pwned");
            let err = unpack(&layer.finish(), dest.path()).unwrap_err();
            assert!(
                matches!(&err, UnpackError::Escape { reason: EscapeReason::Symlink(s), .. }
                    if s == symlink),
                "{}: {err}",
                String::from_utf8_lossy(entry)
            );
            assert_eq!(
                fs::read_dir(outside.path()).unwrap().count(),
                0,
                "{}: wrote outside",
                String::from_utf8_lossy(entry)
            );
        }
    }
}
