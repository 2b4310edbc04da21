//! Layer unpacking: writes one uncompressed OCI layer tar stream into an empty directory
//! that the runtime later stacks as an overlayfs lowerdir.
//!
//! The pull path calls [`unpack_layer`] once per layer, with the decompressed stream of the
//! blob it is hashing, into a fresh directory that it renames into the store afterwards
//! (durability comes from one `syncfs` there, so nothing here fsyncs).
//!
//! The `tar` crate only parses headers and hands out entry data; every file is created here,
//! relative to an fd of the destination, because a layer is untrusted input:
//! - A name may not be absolute nor contain `..`, and every parent directory is opened
//!   component by component with `O_NOFOLLOW|O_DIRECTORY`, so an entry can never be written
//!   through a symlink planted by an earlier entry (the "tar slip" / CVE-2018-15664 class).
//!   Missing parents are created with mode 0755, owned by the unpacking user (root), as tar does.
//! - Hard link targets get the same checks and must name an earlier entry of this layer.
//! - Symlink targets are stored verbatim; they are never followed while unpacking.
//!
//! OCI whiteouts become overlayfs ones (image-spec `layer.md`, "Whiteouts"; kernel
//! `Documentation/filesystems/overlayfs.rst`): `dir/.wh.NAME` is a 0/0 character device at
//! `dir/NAME`, `dir/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `dir`. Other `.wh..wh.*`
//! names are AUFS bookkeeping that old Docker layers carry; they are skipped, as containerd does.
//!
//! Metadata policy:
//! - Owner, then mode (chown clears setuid/setgid), then xattrs (chown also drops
//!   `security.capability`), then times. Symlinks are never chmod-ed.
//! - Hard links get no metadata of their own: they share the target's inode, which its own
//!   entry already set, and a differing hard-link header must not rewrite it.
//! - Directory times are applied after the last entry, children before parents, since
//!   creating a child changes its directory's mtime. atime is set to mtime.
//! - Every xattr failure is an error naming the xattr, except `EOPNOTSUPP` for `user.*`
//!   ones, which are skipped: they carry no security meaning and filesystems such as tmpfs
//!   before Linux 6.6 do not store them. `security.*`, `trusted.*` and ACLs change behaviour
//!   and are never dropped.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, Nsecs, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;
use thiserror::Error;

/// Size of the buffer file data is copied through: large enough that a 300 MB layer costs a
/// few thousand read/write pairs, small enough to stay in cache.
const COPY_BUF_SIZE: usize = 256 * 1024;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Flags for walking parent directories: `O_PATH` needs only search permission and
/// `O_NOFOLLOW` makes a symlink fail instead of being followed.
const WALK_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Flags for a directory whose owner, mode or xattrs we set through the fd.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// `O_EXCL` with `O_NOFOLLOW` never opens an existing file or a symlink's target.
const FILE_FLAGS: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// What one layer contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive members handled (PAX and GNU long-name meta headers not counted).
    pub entries: u64,
    /// Regular file data written, in bytes.
    pub bytes: u64,
}

/// The filesystem operation that failed, for [`UnpackError::Io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackOp {
    OpenDir,
    CreateDir,
    CreateFile,
    Write,
    Remove,
    Symlink,
    Link,
    Mknod,
    Chown,
    Chmod,
    SetTimes,
    Stat,
}

impl fmt::Display for UnpackOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OpenDir => "open directory",
            Self::CreateDir => "create directory",
            Self::CreateFile => "create file",
            Self::Write => "write",
            Self::Remove => "remove",
            Self::Symlink => "create symlink",
            Self::Link => "create hard link",
            Self::Mknod => "create device node",
            Self::Chown => "change owner of",
            Self::Chmod => "change mode of",
            Self::SetTimes => "set times of",
            Self::Stat => "stat",
        })
    }
}

/// Why an entry name or hard link target was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeReason {
    #[error("absolute path")]
    Absolute,
    #[error("`..` component")]
    ParentDir,
    #[error("through symlink {0}")]
    Symlink(String),
    #[error("names the layer root")]
    Root,
}

#[derive(Debug, Error)]
pub enum UnpackError {
    #[error("open layer directory {}", path.display())]
    OpenDest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The archive itself is truncated or corrupt (a header could not be read).
    #[error("read tar entry")]
    ReadArchive {
        #[source]
        source: io::Error,
    },
    /// An entry's fields or data could not be read (bad number, truncated data).
    #[error("read tar entry {entry}")]
    ReadEntry {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("tar entry {entry} escapes the layer directory")]
    Escape {
        entry: String,
        #[source]
        reason: EscapeReason,
    },
    #[error("hard link {entry} to {target} escapes the layer directory")]
    LinkEscape {
        entry: String,
        target: String,
        #[source]
        reason: EscapeReason,
    },
    #[error("hard link {entry} to {target}: target is not an earlier entry of this layer")]
    LinkTargetMissing { entry: String, target: String },
    #[error("tar entry {entry}: parent {parent} is not a directory")]
    NotADirectory { entry: String, parent: String },
    #[error("tar entry {entry} would replace the layer root with a non-directory")]
    RootNotDirectory { entry: String },
    #[error("tar entry {entry} has unsupported type {:?}", char::from(*kind))]
    Unsupported { entry: String, kind: u8 },
    #[error("tar entry {entry} is a whiteout of an invalid name")]
    InvalidWhiteout { entry: String },
    #[error("{op} {} for tar entry {entry}", path.display())]
    Io {
        entry: String,
        op: UnpackOp,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("set xattr {name} on {} for tar entry {entry}", path.display())]
    Xattr {
        entry: String,
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("drain the layer stream after the end of the archive")]
    Drain {
        #[source]
        source: io::Error,
    },
}

/// Unpacks the uncompressed layer tar `reader` into `dest`, an existing empty directory.
///
/// Reads `reader` to its end, past the end-of-archive blocks, so that a caller hashing the
/// stream sees every byte. On error `dest` holds a partial tree and should be discarded.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::OpenDest {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        dest,
        root,
        parents: ParentCache::default(),
        link_parents: ParentCache::default(),
        path: Vec::new(),
        rel: Vec::new(),
        link: Vec::new(),
        link_rel: Vec::new(),
        xattrs: Vec::new(),
        buf: vec![0; COPY_BUF_SIZE].into_boxed_slice(),
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
    };

    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|source| UnpackError::ReadArchive { source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| UnpackError::ReadArchive { source })?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.set_dir_times()?;

    let mut reader = archive.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(|source| UnpackError::Drain { source })?;
    Ok(unpacker.stats)
}

/// One xattr from a PAX `SCHILY.xattr.<name>` record.
type Xattr = (Vec<u8>, Vec<u8>);

struct Meta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    mtime: Timespec,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

/// The kinds of entry that end up in the tree.
enum Kind {
    Dir,
    File,
    Symlink,
    HardLink,
    /// A device node or FIFO, made by mknod.
    Node(FileType),
}

struct Unpacker<'d> {
    dest: &'d Path,
    root: OwnedFd,
    /// Open parents of the last entry; entries of one directory come together.
    parents: ParentCache,
    /// Same for hard link targets, which need a second directory fd at once.
    link_parents: ParentCache,
    // Buffers reused across entries so the hot loop allocates only for what it keeps.
    /// The entry name as in the archive, for messages.
    path: Vec<u8>,
    /// The entry name normalized: no leading `./`, no empty or `.` components.
    rel: Vec<u8>,
    link: Vec<u8>,
    link_rel: Vec<u8>,
    xattrs: Vec<Xattr>,
    buf: Box<[u8]>,
    /// Directories (normalized path, mtime) whose times are set after the last entry.
    dir_times: Vec<(Box<[u8]>, Timespec)>,
    stats: UnpackStats,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let header = entry.header();
        let entry_type = header.entry_type();
        // The tar crate folds PAX local headers and GNU long names into the next entry
        // itself; what is left of them (global headers, or ones in a non-ustar header) is
        // not a file.
        if entry_type.is_pax_global_extensions()
            || entry_type.is_pax_local_extensions()
            || entry_type.is_gnu_longname()
            || entry_type.is_gnu_longlink()
        {
            return Ok(());
        }
        let old_style = header.as_ustar().is_none() && header.as_gnu().is_none();
        self.stats.entries += 1;

        let Self {
            dest,
            root,
            parents,
            link_parents,
            path,
            rel,
            link,
            link_rel,
            xattrs,
            buf,
            dir_times,
            stats,
        } = self;
        path.clear();
        path.extend_from_slice(&entry.path_bytes());
        let names = Names {
            dest,
            entry: &path[..],
        };

        normalize(path, rel).map_err(|reason| UnpackError::Escape {
            entry: names.entry(),
            reason,
        })?;
        let meta = read_meta(entry, xattrs).map_err(|source| names.read(source))?;
        let kind = match entry_type {
            // Pre-POSIX archives mark directories only by a trailing slash.
            EntryType::Regular if old_style && path.ends_with(b"/") => Kind::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::HardLink,
            EntryType::Char => Kind::Node(FileType::CharacterDevice),
            EntryType::Block => Kind::Node(FileType::BlockDevice),
            EntryType::Fifo => Kind::Node(FileType::Fifo),
            other => {
                return Err(UnpackError::Unsupported {
                    entry: names.entry(),
                    kind: other.as_byte(),
                })
            }
        };
        let root = root.as_fd();

        if rel.is_empty() {
            // `.` or `./`: the layer root itself.
            if !matches!(kind, Kind::Dir) {
                return Err(UnpackError::RootNotDirectory {
                    entry: names.entry(),
                });
            }
            apply_fd_meta(root, &meta, xattrs, false).map_err(|f| names.fail(f, b"", b""))?;
            dir_times.push((Box::default(), meta.mtime));
            return Ok(());
        }

        let (parent, name) = split_last(rel);
        if name.starts_with(WHITEOUT_PREFIX) {
            let caches = Caches {
                parents,
                link_parents,
                dir_times,
            };
            return whiteout(&names, root, caches, rel, &meta);
        }

        let dir = parents
            .get(root, parent, true)
            .map_err(|e| names.walk(e, parent))?;
        let mut removed_dir = false;
        match kind {
            Kind::Dir => {
                let fd = create_dir(dir, name, &mut removed_dir)
                    .map_err(|f| names.fail(f, parent, name))?;
                apply_fd_meta(fd.as_fd(), &meta, xattrs, false)
                    .map_err(|f| names.fail(f, parent, name))?;
                dir_times.push((Box::from(&rel[..]), meta.mtime));
            }
            Kind::File => {
                let fd = replacing(dir, name, UnpackOp::CreateFile, &mut removed_dir, || {
                    rfs::openat(dir, name, FILE_FLAGS, Mode::from_raw_mode(0o600))
                })
                .map_err(|f| names.fail(f, parent, name))?;
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
                stats.bytes += written;
                apply_fd_meta(file.as_fd(), &meta, xattrs, true)
                    .map_err(|f| names.fail(f, parent, name))?;
            }
            Kind::Symlink => {
                // Stored verbatim: absolute or `..` targets are fine, nothing follows them here.
                let target = entry.link_name_bytes().unwrap_or_default();
                replacing(dir, name, UnpackOp::Symlink, &mut removed_dir, || {
                    rfs::symlinkat(&*target, dir, name)
                })
                .map_err(|f| names.fail(f, parent, name))?;
                apply_path_meta(dir, name, &meta, xattrs, false, || names.host(parent, name))
                    .map_err(|f| names.fail(f, parent, name))?;
            }
            Kind::HardLink => {
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
                            StepError::Io(op, source) => {
                                names.io(op, b"", &target_parent[..e.at], source)
                            }
                        })?;
                // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never resolved.
                replacing(dir, name, UnpackOp::Link, &mut removed_dir, || {
                    rfs::linkat(target_dir, target_name, dir, name, AtFlags::empty())
                })
                .map_err(|f| match f {
                    Fail::Io(UnpackOp::Link, e) if e.kind() == io::ErrorKind::NotFound => missing(),
                    f => names.fail(f, parent, name),
                })?;
            }
            Kind::Node(file_type) => {
                let dev = match file_type {
                    FileType::Fifo => 0,
                    _ => device_number(entry).map_err(|e| names.read(e))?,
                };
                replacing(dir, name, UnpackOp::Mknod, &mut removed_dir, || {
                    rfs::mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(|f| names.fail(f, parent, name))?;
                apply_path_meta(dir, name, &meta, xattrs, true, || names.host(parent, name))
                    .map_err(|f| names.fail(f, parent, name))?;
            }
        }
        if removed_dir {
            let caches = Caches {
                parents,
                link_parents,
                dir_times,
            };
            caches.forget_dir(rel);
        }
        Ok(())
    }

    /// Sets the deferred directory times, children before parents.
    fn set_dir_times(&mut self) -> Result<(), UnpackError> {
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

/// Handles `parent/.wh.*` entries: overlayfs keeps whiteouts as 0/0 character devices and
/// opaque directories as an xattr, where OCI layers use marker files.
fn whiteout(
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

/// The state that must forget a directory once it is removed.
struct Caches<'a> {
    parents: &'a mut ParentCache,
    link_parents: &'a mut ParentCache,
    dir_times: &'a mut Vec<(Box<[u8]>, Timespec)>,
}

impl Caches<'_> {
    /// Drops what refers to directory `rel`, just removed: its pending times (which would
    /// otherwise land on whatever replaced it) and, defensively, the cached parent chains.
    fn forget_dir(self, rel: &[u8]) {
        self.parents.clear();
        self.link_parents.clear();
        self.dir_times.retain(|(path, _)| {
            !(path.starts_with(rel) && (path.len() == rel.len() || path[rel.len()] == b'/'))
        });
    }
}

/// Builds errors; only called once something failed, so it may allocate.
struct Names<'a> {
    dest: &'a Path,
    /// The entry name as in the archive.
    entry: &'a [u8],
}

impl Names<'_> {
    fn entry(&self) -> String {
        lossy(self.entry)
    }

    fn host(&self, parent: &[u8], name: &[u8]) -> PathBuf {
        let mut path = self.dest.to_path_buf();
        for part in [parent, name] {
            if !part.is_empty() {
                path.push(OsStr::from_bytes(part));
            }
        }
        path
    }

    fn read(&self, source: io::Error) -> UnpackError {
        UnpackError::ReadEntry {
            entry: self.entry(),
            source,
        }
    }

    fn io(
        &self,
        op: UnpackOp,
        parent: &[u8],
        name: &[u8],
        source: impl Into<io::Error>,
    ) -> UnpackError {
        UnpackError::Io {
            entry: self.entry(),
            op,
            path: self.host(parent, name),
            source: source.into(),
        }
    }

    fn fail(&self, fail: Fail, parent: &[u8], name: &[u8]) -> UnpackError {
        match fail {
            Fail::Io(op, source) => self.io(op, parent, name, source),
            Fail::Xattr(xattr, source) => UnpackError::Xattr {
                entry: self.entry(),
                name: xattr,
                path: self.host(parent, name),
                source,
            },
        }
    }

    /// Turns a failed walk down `walked` (a normalized path) into the entry's error.
    fn walk(&self, err: WalkError, walked: &[u8]) -> UnpackError {
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

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failed operation on an entry, before the entry's names are attached.
enum Fail {
    Io(UnpackOp, io::Error),
    Xattr(String, io::Error),
}

/// Normalizes an entry name into `out` as `a/b/c`: strips `./`, empty and `.` components;
/// refuses absolute names and `..` anywhere (even `a/../b`, which tar would accept, since
/// no legitimate layer writer produces it).
fn normalize(path: &[u8], out: &mut Vec<u8>) -> Result<(), EscapeReason> {
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
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, xattrs: &mut Vec<Xattr>) -> io::Result<Meta> {
    let header = entry.header();
    // The tar crate already applied PAX `uid`/`gid` (ids above 2097151) to the header.
    let uid = id(header.uid()?, "uid")?;
    let gid = id(header.gid()?, "gid")?;
    let mode = Mode::from_raw_mode(header.mode()? & 0o7777);
    let secs = i64::try_from(header.mtime()?).map_err(|_| invalid("mtime out of range"))?;
    let mut mtime = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    xattrs.clear();
    if let Some(pax) = entry.pax_extensions()? {
        for record in pax {
            let record = record?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
            } else if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes())
                    .ok_or_else(|| invalid("invalid pax mtime"))?;
            }
        }
    }
    Ok(Meta {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
        mode,
        mtime,
    })
}

fn id(raw: u64, what: &str) -> io::Result<u32> {
    // u32::MAX is -1, which chown reads as "leave unchanged".
    u32::try_from(raw)
        .ok()
        .filter(|&id| id != u32::MAX)
        .ok_or_else(|| invalid(&format!("{what} {raw} out of range")))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Parses a PAX time, `[-]seconds[.fraction]` (POSIX pax "keywords": mtime). Digits past
/// nanoseconds are truncated.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let (negative, value) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (secs, frac) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if secs.is_empty() || !secs.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut tv_sec: i64 = 0;
    for &digit in secs {
        tv_sec = tv_sec
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
    }
    let mut tv_nsec: Nsecs = 0;
    let mut digits = frac.iter();
    for _ in 0..9 {
        tv_nsec = tv_nsec * 10 + digits.next().map_or(0, |&digit| Nsecs::from(digit - b'0'));
    }
    if negative {
        // -1.25 s is 2 s before the epoch plus 0.75 s: tv_nsec stays non-negative.
        tv_sec = -tv_sec;
        if tv_nsec != 0 {
            tv_sec -= 1;
            tv_nsec = 1_000_000_000 - tv_nsec;
        }
    }
    Some(Timespec { tv_sec, tv_nsec })
}

fn device_number<R: Read>(entry: &tar::Entry<'_, R>) -> io::Result<rfs::Dev> {
    let header = entry.header();
    // Pre-POSIX headers have no device fields.
    let major = header.device_major()?.unwrap_or(0);
    let minor = header.device_minor()?.unwrap_or(0);
    Ok(rfs::makedev(major, minor))
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
fn replacing<T>(
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

/// Owner, mode, xattrs and (unless deferred) times, through an fd.
fn apply_fd_meta(
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
fn apply_path_meta(
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

/// Sets each xattr; see the module doc for which failures are skipped.
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

/// Why opening one path component as a directory failed.
enum StepError {
    Symlink,
    NotDir,
    Missing,
    Io(UnpackOp, io::Error),
}

struct WalkError {
    /// Length of the prefix of the walked path that ends at the failing component.
    at: usize,
    kind: StepError,
}

/// Opens directory `name` in `dir` without following a symlink, creating it (mode 0755)
/// when `create` is set and it is missing.
fn open_dir(
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
struct ParentCache {
    /// The normalized path whose components `chain` holds.
    path: Vec<u8>,
    /// For each component of `path`: where it ends in `path`, and its fd.
    chain: Vec<(usize, OwnedFd)>,
}

impl ParentCache {
    /// Returns an fd of directory `parent` (normalized, empty for the root), opening each
    /// component with `O_NOFOLLOW` so that no symlink is ever traversed.
    fn get<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tar::Header;

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "berth-unpack-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&path).expect("create temp dir");
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Our own uid and gid: headers carry them where a test must also pass unprivileged.
    fn me() -> (u64, u64) {
        let dir = TempDir::new();
        let meta = fs::metadata(dir.path()).expect("stat temp dir");
        (u64::from(meta.uid()), u64::from(meta.gid()))
    }

    fn require_root(test: &str) -> bool {
        if me().0 == 0 {
            return true;
        }
        eprintln!("SKIPPED {test}: needs root (chown to other ids, mknod, trusted xattrs)");
        false
    }

    fn set_bytes(field: &mut [u8], value: &[u8]) {
        field.fill(0);
        field[..value.len()].copy_from_slice(value);
    }

    /// Builds a layer tar in memory. Names are written into the header bytes directly, so
    /// that `..` and absolute names the builder would refuse can be tested.
    struct Layer {
        tar: tar::Builder<Vec<u8>>,
        uid: u64,
        gid: u64,
    }

    impl Layer {
        fn new() -> Self {
            let (uid, gid) = me();
            Self {
                tar: tar::Builder::new(Vec::new()),
                uid,
                gid,
            }
        }

        fn header(&self, path: &[u8], kind: EntryType) -> Header {
            let mut header = Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            header.set_uid(self.uid);
            header.set_gid(self.gid);
            header.set_mtime(1_600_000_000);
            set_bytes(&mut header.as_old_mut().name, path);
            header
        }

        fn append(&mut self, mut header: Header, data: &[u8]) {
            header.set_size(data.len() as u64);
            header.set_cksum();
            self.tar.append(&header, data).expect("append entry");
        }

        fn file(&mut self, path: &[u8], data: &[u8]) {
            let header = self.header(path, EntryType::Regular);
            self.append(header, data);
        }

        fn dir(&mut self, path: &[u8]) {
            let header = self.header(path, EntryType::Directory);
            self.append(header, b"");
        }

        fn link(&mut self, kind: EntryType, path: &[u8], target: &[u8]) {
            let mut header = self.header(path, kind);
            set_bytes(&mut header.as_old_mut().linkname, target);
            self.append(header, b"");
        }

        fn symlink(&mut self, path: &[u8], target: &[u8]) {
            self.link(EntryType::Symlink, path, target);
        }

        fn hardlink(&mut self, path: &[u8], target: &[u8]) {
            self.link(EntryType::Link, path, target);
        }

        /// A PAX local header describing the next entry.
        fn pax(&mut self, records: &[(&str, &[u8])]) {
            let mut data = Vec::new();
            for (key, value) in records {
                // The length prefix counts itself.
                let rest = key.len() + value.len() + 3;
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                data.extend_from_slice(format!("{len} {key}=").as_bytes());
                data.extend_from_slice(value);
                data.push(b'\n');
            }
            let header = self.header(b"PaxHeaders/entry", EntryType::XHeader);
            self.append(header, &data);
        }

        fn finish(self) -> Vec<u8> {
            self.tar.into_inner().expect("finish tar")
        }
    }

    fn unpack(tar: &[u8], dest: &Path) -> Result<UnpackStats, UnpackError> {
        unpack_layer(tar, dest)
    }

    fn lstat(path: &Path) -> fs::Metadata {
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
    }

    fn xattr(path: &Path, name: &str) -> Vec<u8> {
        let mut buf = vec![0; 256];
        let len = rfs::lgetxattr(path, name, &mut buf[..])
            .unwrap_or_else(|e| panic!("get xattr {name} of {}: {e}", path.display()));
        buf.truncate(len);
        buf
    }

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
    fn dot_entry_sets_root_metadata() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        let mut header = layer.header(b"./", EntryType::Directory);
        header.set_mode(0o711);
        header.set_mtime(123);
        layer.append(header, b"");
        layer.file(b"./a", b"");
        unpack(&layer.finish(), dest.path()).unwrap();
        let root = lstat(dest.path());
        assert_eq!(root.mode() & 0o7777, 0o711);
        assert_eq!(root.mtime(), 123);
        assert!(dest.path().join("a").exists());
    }

    #[test]
    fn root_entry_must_be_a_directory() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.file(b"./", b"");
        let err = unpack(&layer.finish(), dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::RootNotDirectory { .. }), "{err}");
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

    #[test]
    fn pax_fractional_mtime_is_kept() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.pax(&[("mtime", b"1234567890.5")]);
        layer.file(b"f", b"");
        unpack(&layer.finish(), dest.path()).unwrap();
        let meta = lstat(&dest.path().join("f"));
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_234_567_890, 500_000_000)
        );
    }

    #[test]
    fn pax_time_parses_fraction_and_sign() {
        let parse = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(parse("12"), Some((12, 0)));
        assert_eq!(parse("1.123456789999"), Some((1, 123_456_789)));
        assert_eq!(parse("1."), Some((1, 0)));
        assert_eq!(parse("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse("-3"), Some((-3, 0)));
        for bad in ["", "-", ".5", "1.2.3", "1e3", "+1", "99999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn old_style_regular_type_is_a_file() {
        let dest = TempDir::new();
        let (uid, gid) = me();
        let mut tar = Vec::new();
        let mut builder = tar::Builder::new(&mut tar);
        for (path, data) in [(&b"olddir/"[..], &b""[..]), (b"olddir/f", b"v7")] {
            let mut header = Header::new_old();
            set_bytes(&mut header.as_old_mut().name, path);
            header.as_old_mut().linkflag = [0];
            header.set_mode(0o755);
            header.set_uid(uid);
            header.set_gid(gid);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.finish().unwrap();
        drop(builder);
        unpack(&tar, dest.path()).unwrap();
        assert!(lstat(&dest.path().join("olddir")).is_dir());
        assert_eq!(fs::read(dest.path().join("olddir/f")).unwrap(), b"v7");
    }

    #[test]
    fn unknown_type_is_rejected() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        let header = layer.header(b"vol", EntryType::new(b'V'));
        layer.append(header, b"");
        let err = unpack(&layer.finish(), dest.path()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Unsupported { entry, kind: b'V' } if entry == "vol"),
            "{err}"
        );
    }

    #[test]
    fn truncated_tar_is_an_error() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut layer = Layer::new();
        layer.file(b"big", &data);
        layer.file(b"next", b"n");
        let tar = layer.finish();

        // Cut inside the file data: the tar crate ends the data early without an error.
        let dest = TempDir::new();
        let err = unpack(&tar[..512 + 3000], dest.path()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::ReadEntry { entry, source }
                if entry == "big" && source.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );

        // Cut inside the next header.
        let dest = TempDir::new();
        let next_header = 512 + 10_240;
        let err = unpack(&tar[..next_header + 100], dest.path()).unwrap_err();
        assert!(matches!(err, UnpackError::ReadArchive { .. }), "{err}");
    }

    #[test]
    fn trailing_data_is_drained() {
        struct Counting<'a> {
            inner: &'a [u8],
            read: u64,
        }
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.inner.read(buf)?;
                self.read += n as u64;
                Ok(n)
            }
        }

        let mut layer = Layer::new();
        layer.file(b"f", b"data");
        let mut tar = layer.finish();
        // Writers pad to a 10 KiB record after the two end-of-archive blocks.
        tar.resize(tar.len() + 20 * 1024, 0);
        let dest = TempDir::new();
        let mut reader = Counting {
            inner: &tar,
            read: 0,
        };
        let stats = unpack_layer(&mut reader, dest.path()).unwrap();
        assert_eq!(reader.read, tar.len() as u64);
        assert_eq!(
            stats,
            UnpackStats {
                entries: 1,
                bytes: 4
            }
        );
    }
}
