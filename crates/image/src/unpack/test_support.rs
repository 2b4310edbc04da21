//! Test helpers shared by the `unpack` submodules' unit tests: a self-removing temp
//! directory, and a builder for layer tars that can also write names a real writer refuses.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs as rfs;
use tar::{EntryType, Header};

use super::{unpack_layer, UnpackError, UnpackStats};

/// A unique directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "berth-unpack-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).expect("create temp dir");
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Our own uid and gid: headers carry them where a test must also pass unprivileged.
pub(super) fn me() -> (u64, u64) {
    let dir = TempDir::new();
    let meta = fs::metadata(dir.path()).expect("stat temp dir");
    (u64::from(meta.uid()), u64::from(meta.gid()))
}

pub(super) fn require_root(test: &str) -> bool {
    if me().0 == 0 {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root (chown to other ids, mknod, trusted xattrs)");
    false
}

pub(super) fn set_bytes(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// Builds a layer tar in memory. Names are written into the header bytes directly, so
/// that `..` and absolute names the builder would refuse can be tested.
pub(super) struct Layer {
    tar: tar::Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Layer {
    pub(super) fn new() -> Self {
        let (uid, gid) = me();
        Self {
            tar: tar::Builder::new(Vec::new()),
            uid,
            gid,
        }
    }

    pub(super) fn header(&self, path: &[u8], kind: EntryType) -> Header {
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

    pub(super) fn append(&mut self, mut header: Header, data: &[u8]) {
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.tar.append(&header, data).expect("append entry");
    }

    pub(super) fn file(&mut self, path: &[u8], data: &[u8]) {
        let header = self.header(path, EntryType::Regular);
        self.append(header, data);
    }

    pub(super) fn dir(&mut self, path: &[u8]) {
        let header = self.header(path, EntryType::Directory);
        self.append(header, b"");
    }

    pub(super) fn link(&mut self, kind: EntryType, path: &[u8], target: &[u8]) {
        let mut header = self.header(path, kind);
        set_bytes(&mut header.as_old_mut().linkname, target);
        self.append(header, b"");
    }

    pub(super) fn symlink(&mut self, path: &[u8], target: &[u8]) {
        self.link(EntryType::Symlink, path, target);
    }

    pub(super) fn hardlink(&mut self, path: &[u8], target: &[u8]) {
        self.link(EntryType::Link, path, target);
    }

    /// A PAX local header describing the next entry.
    pub(super) fn pax(&mut self, records: &[(&str, &[u8])]) {
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

    pub(super) fn finish(self) -> Vec<u8> {
        self.tar.into_inner().expect("finish tar")
    }
}

pub(super) fn unpack(tar: &[u8], dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack_layer(tar, dest)
}

pub(super) fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

pub(super) fn xattr(path: &Path, name: &str) -> Vec<u8> {
    let mut buf = vec![0; 256];
    let len = rfs::lgetxattr(path, name, &mut buf[..])
        .unwrap_or_else(|e| panic!("get xattr {name} of {}: {e}", path.display()));
    buf.truncate(len);
    buf
}
