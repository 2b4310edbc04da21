//! The image store on disk: content-addressed blobs, unpacked layers shared between images,
//! and an index of images and tags. Every change is crash-safe: files and directories are
//! staged under `tmp/` and renamed into place, the index is replaced atomically under a lock.
//!
//! Layout under `<root>/images`:
//! ```text
//! blobs/sha256/<hex>    manifests, configs, layer blobs as the registry sent them
//! layers/<diff_id hex>/ one unpacked layer (an overlayfs lowerdir), keyed by its diff id
//! index.json            images by id and tags (see `index.rs`)
//! tmp/<pid>-<n>         staging; entries of dead processes are removed on open
//! lock, gc.lock         flock(2) files: index updates; pulls (shared) vs collection (exclusive)
//! ```
//! See docs/store.md for why things are this way.

mod gc;
mod index;

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use gc::GcStats;
pub use index::{ImageIndex, ImageRecord, LayerRecord};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed image index {path}")]
    MalformedIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {digest} is corrupt: its content hashes to {actual}")]
    CorruptBlob { digest: Digest, actual: Digest },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The image store rooted at `<state root>/images`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A staged file or directory that is removed unless committed.
#[derive(Debug)]
pub struct Staged {
    path: Option<PathBuf>,
}

impl Staged {
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("staged path used after commit")
    }

    fn take(mut self) -> PathBuf {
        self.path.take().expect("staged path committed twice")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            remove_any(&p);
        }
    }
}

fn remove_any(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// An flock(2) held until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

static STAGE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store under `state_root`, and removes staging entries
    /// left by processes that no longer exist.
    pub fn open(state_root: &Path) -> Result<Self, StoreError> {
        let root = state_root.join("images");
        for dir in ["blobs/sha256", "layers", "tmp", "partial"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        let store = Self { root };
        store.clean_stale_staging();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn clean_stale_staging(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                remove_any(&entry.path());
            }
        }
    }

    fn stage_path(&self, kind: &str) -> PathBuf {
        let n = STAGE_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir()
            .join(format!("{}-{n}-{kind}", std::process::id()))
    }

    /// A new empty staging file, open for writing.
    pub fn stage_file(&self) -> Result<(File, Staged), StoreError> {
        let path = self.stage_path("blob");
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok((f, Staged { path: Some(path) }))
    }

    /// A new empty staging directory.
    pub fn stage_dir(&self) -> Result<Staged, StoreError> {
        let path = self.stage_path("layer");
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        Ok(Staged { path: Some(path) })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a blob and checks that it still hashes to its name.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob(d.clone()))
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(StoreError::CorruptBlob {
                digest: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores a small blob (manifest, config) durably and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let (mut f, staged) = self.stage_file()?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err("write", staged.path()))?;
        self.commit_blob(staged, &d)?;
        Ok(d)
    }

    /// Moves a verified staging file into place as blob `d`. If another process stored the
    /// same blob meanwhile, the staged copy is dropped: content addressing makes them equal.
    pub fn commit_blob(&self, staged: Staged, d: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(d);
        let src = staged.take();
        fs::rename(&src, &dest).map_err(io_err("rename", &dest))
    }

    /// Where an interrupted download of blob `d` keeps what it received, so the next pull
    /// asks only for the rest (an HTTP range request).
    pub fn partial_path(&self, d: &Digest) -> PathBuf {
        self.root.join("partial").join(d.hex())
    }

    /// Moves a verified partial download into place as blob `d`.
    pub fn commit_partial(&self, path: &Path, d: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(d);
        fs::rename(path, &dest).map_err(io_err("rename", &dest))
    }

    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_path(diff_id).is_dir()
    }

    /// Moves a fully unpacked staging directory into place as layer `diff_id`.
    pub fn commit_layer(&self, staged: Staged, diff_id: &Digest) -> Result<(), StoreError> {
        let dest = self.layer_path(diff_id);
        let src = staged.take();
        match fs::rename(&src, &dest) {
            Ok(()) => Ok(()),
            // A concurrent pull committed the same layer first: keep theirs.
            Err(e) if dest.is_dir() && matches!(e.raw_os_error(), Some(39) | Some(17)) => {
                remove_any(&src);
                Ok(())
            }
            Err(e) => {
                remove_any(&src);
                Err(io_err("rename", &dest)(e))
            }
        }
    }

    /// Flushes everything written to the store's filesystem. Called once before an image
    /// becomes visible in the index, so the index never names data a power cut could lose.
    pub fn sync(&self) -> Result<(), StoreError> {
        let f = File::open(&self.root).map_err(io_err("open", &self.root))?;
        rustix::fs::syncfs(f.as_fd()).map_err(|e| io_err("syncfs", &self.root)(e.into()))
    }

    fn lock_file(
        &self,
        name: &str,
        mode: rustix::fs::FlockOperation,
    ) -> Result<StoreLock, StoreError> {
        let path = self.root.join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(&file, mode).map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(StoreLock { _file: file })
    }

    /// Held by anything that adds blobs or layers before they are referenced by the index
    /// (pull, load), so that garbage collection cannot remove them half way.
    pub fn writer_lock(&self) -> Result<StoreLock, StoreError> {
        self.lock_file("gc.lock", rustix::fs::FlockOperation::LockShared)
    }

    fn collector_lock(&self) -> Result<StoreLock, StoreError> {
        self.lock_file("gc.lock", rustix::fs::FlockOperation::LockExclusive)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Reads the current index (no lock needed: it is only ever replaced whole).
    pub fn index(&self) -> Result<ImageIndex, StoreError> {
        ImageIndex::load(&self.index_path())
    }

    /// Runs `f` on the index under the index lock and writes the result back atomically if
    /// `f` succeeds.
    pub fn update_index<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self.lock_file("lock", rustix::fs::FlockOperation::LockExclusive)?;
        let mut index = self.index()?;
        let out = f(&mut index)?;
        index.save(&self.index_path(), self)?;
        Ok(out)
    }
}
