//! A VM's run directory and the truth about whether its QEMU is alive.
//!
//! ```text
//! <run_root>/vms/<name>/qmp.sock       QMP monitor
//! <run_root>/vms/<name>/console.sock   serial console (one client at a time)
//! <run_root>/vms/<name>/console.lock   flock(2) held by the attached console session
//! <run_root>/vms/<name>/qemu.pid       written (and locked) by QEMU itself
//! <run_root>/vms/<name>/runtime.json   what berth started it with (`RuntimeState`)
//! ```
//! The run root may survive a crash or a reboot (/run is not always tmpfs), so nothing here
//! is trusted on its own: a VM runs only if the pid in `qemu.pid` is alive *and* that
//! process is the QEMU serving this VM's QMP socket. Anything else means "shut off", and
//! the leftovers are removed by the next command that holds the VM's lock.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::qemu::args::Accel;
use crate::qemu::qmp::{Qmp, QmpError, RunStatus};
use crate::store::{io_err, write_atomic, StoreError};

/// The paths of one VM's run directory.
#[derive(Debug, Clone)]
pub struct RunPaths {
    pub dir: PathBuf,
    pub qmp: PathBuf,
    pub console: PathBuf,
    pub console_lock: PathBuf,
    pub pidfile: PathBuf,
    pub runtime: PathBuf,
}

impl RunPaths {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            qmp: dir.join("qmp.sock"),
            console: dir.join("console.sock"),
            console_lock: dir.join("console.lock"),
            pidfile: dir.join("qemu.pid"),
            runtime: dir.join("runtime.json"),
            dir,
        }
    }
}

/// What berth records about a running QEMU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeState {
    pub pid: u32,
    pub accel: Accel,
    /// Seconds since the epoch.
    pub started: u64,
    /// This run boots the install media (`-no-reboot`).
    pub install: bool,
    /// `host:port` of the VNC server.
    pub vnc: Option<String>,
    /// Tap devices made for this run, removed when it ends.
    #[serde(default)]
    pub taps: Vec<TapRecord>,
}

/// A tap device berth made for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapRecord {
    pub name: String,
    /// The berth network that reserved an address for it (none for `bridge=`).
    pub network: Option<String>,
    /// The guest's address on that network.
    pub ip: Option<String>,
}

/// A domain's state, named as virsh names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainState {
    Running,
    Paused,
    /// The guest is shutting down (QEMU still there, guest stopped).
    InShutdown,
    /// The guest panicked or QEMU hit an internal error; it needs destroy.
    Crashed,
    ShutOff,
}

impl DomainState {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Paused => "paused",
            DomainState::InShutdown => "in shutdown",
            DomainState::Crashed => "crashed",
            DomainState::ShutOff => "shut off",
        }
    }

    pub fn is_active(self) -> bool {
        self != DomainState::ShutOff
    }
}

impl std::fmt::Display for DomainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The observed state of a VM.
#[derive(Debug, Clone)]
pub struct Observed {
    pub state: DomainState,
    /// The QEMU process, when alive.
    pub pid: Option<u32>,
    pub runtime: Option<RuntimeState>,
    /// A run directory exists but its QEMU is gone: clean it under the VM's lock.
    pub stale: bool,
}

/// How long a state probe waits for QMP.
const QMP_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Looks at the run directory and, if QEMU is alive, asks it over QMP.
pub fn observe(paths: &RunPaths) -> Observed {
    let runtime = read_runtime(paths);
    let pid = read_pid(&paths.pidfile).filter(|&pid| is_our_qemu(pid, &paths.qmp));
    let Some(pid) = pid else {
        return Observed {
            state: DomainState::ShutOff,
            pid: None,
            stale: paths.dir.exists(),
            runtime,
        };
    };
    let state = match Qmp::connect(&paths.qmp, QMP_PROBE_TIMEOUT).and_then(|mut q| q.query_status())
    {
        Ok(RunStatus::Running) => DomainState::Running,
        Ok(RunStatus::Paused) => DomainState::Paused,
        Ok(RunStatus::Shutdown) => DomainState::InShutdown,
        Ok(RunStatus::Other(s)) if s == "guest-panicked" || s == "internal-error" => {
            DomainState::Crashed
        }
        Ok(RunStatus::Other(s)) if s == "io-error" || s == "watchdog" => DomainState::Paused,
        Ok(RunStatus::Other(_)) => DomainState::Running,
        // The process may have exited between the two checks.
        Err(_) if !is_our_qemu(pid, &paths.qmp) => {
            return Observed {
                state: DomainState::ShutOff,
                pid: None,
                stale: true,
                runtime,
            }
        }
        // Alive but QMP busy (another client) or slow: it is running in some state.
        Err(_) => DomainState::Running,
    };
    Observed {
        state,
        pid: Some(pid),
        runtime,
        stale: false,
    }
}

/// Connects to the VM's QMP monitor.
pub fn qmp(paths: &RunPaths, timeout: Duration) -> Result<Qmp, QmpError> {
    Qmp::connect(&paths.qmp, timeout)
}

pub fn read_runtime(paths: &RunPaths) -> Option<RuntimeState> {
    std::fs::read(&paths.runtime)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

pub fn write_runtime(paths: &RunPaths, rt: &RuntimeState) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(rt).expect("a RuntimeState always serializes");
    write_atomic(&paths.runtime, &bytes)
}

fn read_pid(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&p| p > 1)
}

/// The process is alive (not a zombie) and is a QEMU whose command line names `qmp` —
/// guarding against a pid reused after a crash or reboot.
pub fn is_our_qemu(pid: u32, qmp: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc.join("stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    if matches!(state, Some("Z" | "X")) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    let needle = qmp.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle)
}

/// Removes a dead VM's run directory.
pub fn clear(paths: &RunPaths) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(&paths.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &paths.dir)(e)),
    }
}

/// Waits until `pid` is no longer our QEMU, up to `timeout`; true if it went.
pub fn wait_gone(pid: u32, qmp: &Path, timeout: Duration) -> bool {
    // A timeout too large for an Instant means no deadline.
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        if !is_our_qemu(pid, qmp) {
            return true;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_or_foreign_pids_are_not_ours() {
        assert!(!is_our_qemu(u32::MAX - 1, Path::new("/run/x/qmp.sock")));
        // This test process is alive but its command line names no such socket.
        assert!(!is_our_qemu(
            std::process::id(),
            Path::new("/run/berth-nope/qmp.sock")
        ));
    }

    #[test]
    fn missing_run_dir_is_shut_off_and_not_stale() {
        let p = RunPaths::new(PathBuf::from("/nonexistent/berth/vms/x"));
        let o = observe(&p);
        assert_eq!(o.state, DomainState::ShutOff);
        assert!(!o.stale);
        assert!(o.pid.is_none());
    }
}
