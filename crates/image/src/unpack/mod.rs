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
//!
//! This file holds the public API and the per-entry loop, which classifies each header and
//! hands it to one of the submodules:
//! - `walk`: entry name normalization and the symlink-safe, cached walk to a parent directory.
//! - `header`: an entry's owner, mode, times and xattrs read from its header and PAX records.
//! - `create`: creating directories, files, symlinks, hard links and device nodes.
//! - `metadata`: applying owner, mode, xattrs and times, and the deferred directory times.
//! - `whiteout`: OCI whiteouts and opaque markers turned into overlayfs ones.

mod create;
mod header;
mod metadata;
#[cfg(test)]
mod test_support;
mod walk;
mod whiteout;

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, Timespec};
use tar::EntryType;
use thiserror::Error;

use self::create::Slot;
use self::header::{read_meta, Xattr};
use self::metadata::apply_fd_meta;
use self::walk::{normalize, split_last, Caches, ParentCache};
use self::whiteout::{whiteout, WHITEOUT_PREFIX};

/// Size of the buffer file data is copied through: large enough that a 300 MB layer costs a
/// few thousand read/write pairs, small enough to stay in cache.
const COPY_BUF_SIZE: usize = 256 * 1024;

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
        let mut slot = Slot {
            names: &names,
            dir,
            parent,
            name,
            removed_dir: false,
        };
        match kind {
            Kind::Dir => {
                slot.dir(&meta, xattrs)?;
                dir_times.push((Box::from(&rel[..]), meta.mtime));
            }
            Kind::File => stats.bytes += slot.file(entry, &meta, xattrs, buf)?,
            Kind::Symlink => slot.symlink(entry, &meta, xattrs)?,
            Kind::HardLink => slot.hard_link(entry, root, link, link_rel, link_parents)?,
            Kind::Node(file_type) => slot.node(entry, file_type, &meta, xattrs)?,
        }
        if slot.removed_dir {
            let caches = Caches {
                parents,
                link_parents,
                dir_times,
            };
            caches.forget_dir(rel);
        }
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use tar::Header;

    use super::test_support::{lstat, me, set_bytes, unpack, Layer, TempDir};

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
