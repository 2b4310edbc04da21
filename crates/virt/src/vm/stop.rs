//! Stopping and pausing: `shutdown` (the ACPI power button over QMP, then waiting for
//! QEMU to exit), `destroy` (SIGTERM, then SIGKILL: works whatever the guest does),
//! `reboot` (a graceful shutdown and a new start), `reset` (the reset button),
//! `suspend`/`resume` (QMP stop/cont).

use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

use super::{VmError, Vms};
use crate::runtime::{self, DomainState};

/// How long QEMU gets to exit on SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

impl Vms {
    /// Presses the power button and waits up to `timeout` for the guest to power off.
    pub fn shutdown(&self, name: &str, timeout: Duration) -> Result<(), VmError> {
        let pid = self.request_shutdown(name)?;
        let paths = self.run_paths(name);
        if !runtime::wait_gone(pid, &paths.qmp, timeout) {
            return Err(VmError::ShutdownTimeout {
                name: name.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        // Clean the run directory now rather than at the next command.
        if let Ok(_lock) = self.lock_existing(name) {
            self.observe_locked(name);
        }
        Ok(())
    }

    /// Presses the power button; returns QEMU's pid without waiting.
    pub fn request_shutdown(&self, name: &str) -> Result<u32, VmError> {
        let _lock = self.lock_existing(name)?;
        let o = self.observe_locked(name);
        let Some(pid) = o.pid.filter(|_| o.state.is_active()) else {
            return Err(VmError::NotRunning(name.to_string()));
        };
        let paths = self.run_paths(name);
        runtime::qmp(&paths, QMP_TIMEOUT)
            .and_then(|mut q| q.system_powerdown())
            .map_err(Self::qmp_err(name))?;
        Ok(pid)
    }

    /// Stops QEMU at once, whatever the guest is doing.
    pub fn destroy(&self, name: &str) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        let o = self.observe_locked(name);
        let Some(pid) = o.pid.filter(|_| o.state.is_active()) else {
            return Err(VmError::NotRunning(name.to_string()));
        };
        let paths = self.run_paths(name);
        let raw = Pid::from_raw(pid as i32).expect("observe yields only pids above 1");
        let _ = kill_process(raw, Signal::TERM);
        if !runtime::wait_gone(pid, &paths.qmp, TERM_GRACE) {
            let _ = kill_process(raw, Signal::KILL);
            if !runtime::wait_gone(pid, &paths.qmp, TERM_GRACE) {
                return Err(VmError::KillFailed {
                    name: name.to_string(),
                    pid,
                });
            }
        }
        let taps = o
            .runtime
            .as_ref()
            .map(|r| r.taps.as_slice())
            .unwrap_or_default();
        self.cleanup_run(name, &paths, taps);
        Ok(())
    }

    /// Shuts the guest down gracefully and starts it again.
    pub fn reboot(&self, name: &str, timeout: Duration) -> Result<super::Started, VmError> {
        self.shutdown(name, timeout)?;
        self.start(name)
    }

    /// Resets the machine, like its reset button.
    pub fn reset(&self, name: &str) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        if !self.observe_locked(name).state.is_active() {
            return Err(VmError::NotRunning(name.to_string()));
        }
        runtime::qmp(&self.run_paths(name), QMP_TIMEOUT)
            .and_then(|mut q| q.system_reset())
            .map_err(Self::qmp_err(name))
    }

    /// Pauses the vCPUs.
    pub fn suspend(&self, name: &str) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        match self.observe_locked(name).state {
            DomainState::Paused => Ok(()),
            DomainState::Running => runtime::qmp(&self.run_paths(name), QMP_TIMEOUT)
                .and_then(|mut q| q.stop())
                .map_err(Self::qmp_err(name)),
            _ => Err(VmError::NotRunning(name.to_string())),
        }
    }

    /// Resumes paused vCPUs.
    pub fn resume(&self, name: &str) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        match self.observe_locked(name).state {
            DomainState::Paused => runtime::qmp(&self.run_paths(name), QMP_TIMEOUT)
                .and_then(|mut q| q.cont())
                .map_err(Self::qmp_err(name)),
            DomainState::ShutOff => Err(VmError::NotRunning(name.to_string())),
            _ => Err(VmError::NotPaused(name.to_string())),
        }
    }

    /// Waits until the VM is shut off (its QEMU exited), up to `timeout` (forever when
    /// `None`); true if it is.
    pub fn wait_shut_off(&self, name: &str, timeout: Option<Duration>) -> bool {
        let paths = self.run_paths(name);
        let o = runtime::observe(&paths);
        let Some(pid) = o.pid else {
            return true;
        };
        let gone = runtime::wait_gone(pid, &paths.qmp, timeout.unwrap_or(Duration::MAX));
        if gone {
            if let Ok(_lock) = self.lock_existing(name) {
                self.observe_locked(name);
            }
        }
        gone
    }
}
