//! VM definitions on disk, crash-safe and locked per VM.
//!
//! ```text
//! <root>/vms/<name>/vm.json        the definition (`VmState`), replaced atomically
//! <root>/vms/<name>/<name>.qcow2   disks berth created (then <name>-1.qcow2, ...)
//! <root>/vms/<name>/console.log    everything the serial console printed since the last start
//! <root>/vms/<name>/OVMF_VARS.fd   the UEFI variable store (--boot uefi)
//! <root>/vms/<name>/seed.iso       the NoCloud seed (--cloud-init)
//! <root>/vms/<name>/boot/          kernel and initrd taken from a --location tree
//! <root>/vms/.locks/<name>.lock    flock(2): commands on one VM serialize on it
//! <run_root>/vms/<name>/           sockets, pidfile, runtime.json (see runtime.rs)
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::state::VmState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("domain {0} not found")]
    NotFound(String),
    #[error("domain {0} already exists")]
    Exists(String),
    #[error("malformed definition {path}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("definition {path} has version {found}; this berth reads version {supported}")]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
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

/// Writes `bytes` to `path` through a temporary file, fsync and rename, then fsyncs the
/// directory: after a crash the file holds either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map_or("file".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive flock(2) on one VM, held until dropped.
#[derive(Debug)]
pub struct VmLock {
    _file: File,
    path: PathBuf,
    remove: bool,
}

impl VmLock {
    /// Removes the lock file when released (the VM is gone). Waiters hold the unlinked
    /// file and notice (see [`VmStore::lock`]).
    pub fn remove_on_release(&mut self) {
        self.remove = true;
    }
}

impl Drop for VmLock {
    fn drop(&mut self) {
        if self.remove {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The VM definitions under a state root, and their run directories.
#[derive(Debug, Clone)]
pub struct VmStore {
    root: PathBuf,
    run_root: PathBuf,
}

const DEFINITION: &str = "vm.json";
/// Lock files live apart from the VM directories, so that no VM name can collide with
/// another VM's lock file (names never start with a dot).
const LOCKS: &str = ".locks";

impl VmStore {
    /// `<root>/vms` and `<run_root>/vms`, created when missing.
    pub fn open(state_root: &Path, run_root: &Path) -> Result<Self, StoreError> {
        let root = state_root.join("vms");
        let run_root = run_root.join("vms");
        for d in [&root.join(LOCKS), &run_root] {
            fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        Ok(Self { root, run_root })
    }

    pub fn vms_dir(&self) -> &Path {
        &self.root
    }

    pub fn run_vms_dir(&self) -> &Path {
        &self.run_root
    }

    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.run_root.join(name)
    }

    fn definition(&self, name: &str) -> PathBuf {
        self.vm_dir(name).join(DEFINITION)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.definition(name).is_file()
    }

    /// Takes the VM's lock, waiting for other berth processes that hold it.
    pub fn lock(&self, name: &str) -> Result<VmLock, StoreError> {
        self.lock_with(name, FlockOperation::LockExclusive)
            .map(|l| l.expect("a blocking lock always returns one"))
    }

    /// Takes the lock if nobody holds it.
    pub fn try_lock(&self, name: &str) -> Result<Option<VmLock>, StoreError> {
        self.lock_with(name, FlockOperation::NonBlockingLockExclusive)
    }

    fn lock_with(&self, name: &str, op: FlockOperation) -> Result<Option<VmLock>, StoreError> {
        let path = self.root.join(LOCKS).join(format!("{name}.lock"));
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            match flock(&file, op) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io_err("lock", &path)(e.into())),
            }
            // The holder may have removed the file (undefine) before we got it: then our
            // lock protects nothing; take a fresh one.
            let held = file.metadata().map_err(io_err("stat", &path))?;
            match fs::metadata(&path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {
                    return Ok(Some(VmLock {
                        _file: file,
                        path,
                        remove: false,
                    }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", &path)(e)),
            }
        }
    }

    pub fn load(&self, name: &str) -> Result<VmState, StoreError> {
        let path = self.definition(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let state: VmState =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Malformed {
                path: path.clone(),
                source,
            })?;
        if state.version != VmState::VERSION {
            return Err(StoreError::Version {
                path,
                found: state.version,
                supported: VmState::VERSION,
            });
        }
        Ok(state)
    }

    /// Writes the definition (the VM directory must exist).
    pub fn save(&self, state: &VmState) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(state).expect("a VmState always serializes");
        write_atomic(&self.definition(&state.name), &bytes)
    }

    /// The names of all defined VMs, sorted.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err("read", &self.root))? {
            let e = e.map_err(io_err("read", &self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().join(DEFINITION).is_file() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the definition and the files berth keeps for the VM, but not the disks in
    /// `keep` (images the user keeps when undefining without `--remove-all-storage`).
    pub fn remove(&self, name: &str, keep: &[PathBuf]) -> Result<(), StoreError> {
        let dir = self.vm_dir(name);
        // The definition first: once it is gone the VM no longer exists, whatever else
        // a crash leaves behind.
        let def = self.definition(name);
        fs::remove_file(&def).map_err(io_err("remove", &def))?;
        for e in fs::read_dir(&dir).map_err(io_err("read", &dir))?.flatten() {
            let p = e.path();
            if keep.iter().any(|k| k == &p) {
                continue;
            }
            let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(io_err("remove", &p))?;
        }
        if keep.iter().all(|k| !k.starts_with(&dir)) {
            fs::remove_dir(&dir).map_err(io_err("remove", &dir))?;
        }
        let run = self.run_dir(name);
        if run.exists() {
            fs::remove_dir_all(&run).map_err(io_err("remove", &run))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let d = std::env::temp_dir().join(format!("berth-store-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn locks_exclude_and_survive_removal() {
        let d = std::env::temp_dir().join(format!("berth-lock-{}", std::process::id()));
        let s = VmStore::open(&d.join("root"), &d.join("run")).unwrap();
        let mut held = s.lock("a").unwrap();
        assert!(s.try_lock("a").unwrap().is_none());
        held.remove_on_release();
        drop(held);
        assert!(!s.vms_dir().join(".locks/a.lock").exists());
        let again = s.try_lock("a").unwrap();
        assert!(again.is_some());
        fs::remove_dir_all(d).unwrap();
    }
}
