//! The serial console: a session on the VM's console socket (one at a time, like
//! `virsh console`; the session holds a lock in the run directory), and the console log
//! that QEMU writes for readers who are not attached (`--noautoconsole`, tests).
//! The terminal side (raw mode, Ctrl-] to detach) is the CLI's.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use rustix::fs::{flock, FlockOperation};

use super::{VmError, Vms};

/// An attached console: the socket, and the lock that keeps others out.
#[derive(Debug)]
pub struct ConsoleSession {
    pub stream: UnixStream,
    _lock: File,
}

impl Vms {
    /// Attaches to the running VM's serial console.
    pub fn console(&self, name: &str) -> Result<ConsoleSession, VmError> {
        self.load_checked(name)?;
        let paths = self.run_paths(name);
        let o = crate::runtime::observe(&paths);
        if !o.state.is_active() {
            return Err(VmError::NotRunning(name.to_string()));
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&paths.console_lock)
            .map_err(|source| VmError::Access {
                what: "open",
                path: paths.console_lock.clone(),
                source,
            })?;
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(VmError::ConsoleBusy(name.to_string()));
        }
        let stream = UnixStream::connect(&paths.console).map_err(|source| VmError::Access {
            what: "connect to console",
            path: paths.console.clone(),
            source,
        })?;
        Ok(ConsoleSession {
            stream,
            _lock: lock,
        })
    }

    /// The file holding everything the console printed since the last start.
    pub fn console_log_path(&self, name: &str) -> Result<PathBuf, VmError> {
        self.load_checked(name)?;
        Ok(self.console_log(name))
    }
}
