//! Reading verbs: `list`, `dominfo`, `domstate`, `vnc`, and `autostart` (which only
//! flips a flag in the definition).

use std::path::PathBuf;

use super::{VmError, Vms};
use crate::runtime::{self, DomainState, RuntimeState};
use crate::state::VmState;

/// One row of `vm list`.
#[derive(Debug, Clone)]
pub struct VmSummary {
    pub name: String,
    pub state: DomainState,
    /// QEMU's pid, which berth shows as the domain id.
    pub pid: Option<u32>,
    pub autostart: bool,
}

/// Everything `dominfo` shows.
#[derive(Debug, Clone)]
pub struct VmInfo {
    pub vm: VmState,
    pub state: DomainState,
    pub pid: Option<u32>,
    pub runtime: Option<RuntimeState>,
    pub console_log: PathBuf,
}

impl Vms {
    /// Observes a VM without taking its lock; if QEMU left a stale run directory, cleans
    /// it when nobody else holds the lock.
    fn observe_quietly(&self, name: &str) -> runtime::Observed {
        let o = runtime::observe(&self.run_paths(name));
        if o.stale {
            if let Ok(Some(_lock)) = self.store.try_lock(name) {
                let taps = o
                    .runtime
                    .as_ref()
                    .map(|r| r.taps.as_slice())
                    .unwrap_or_default();
                self.cleanup_run(name, &self.run_paths(name), taps);
            }
        }
        o
    }

    pub fn list(&self) -> Result<Vec<VmSummary>, VmError> {
        let mut out = Vec::new();
        for name in self.store.names()? {
            let Ok(vm) = self.store.load(&name) else {
                continue;
            };
            let o = self.observe_quietly(&name);
            out.push(VmSummary {
                name,
                state: o.state,
                pid: o.pid,
                autostart: vm.autostart,
            });
        }
        Ok(out)
    }

    pub fn info(&self, name: &str) -> Result<VmInfo, VmError> {
        let vm = self.load_checked(name)?;
        let o = self.observe_quietly(name);
        Ok(VmInfo {
            vm,
            state: o.state,
            pid: o.pid,
            runtime: o.runtime.filter(|_| o.state.is_active()),
            console_log: self.console_log(name),
        })
    }

    pub fn domstate(&self, name: &str) -> Result<DomainState, VmError> {
        self.load_checked(name)?;
        Ok(self.observe_quietly(name).state)
    }

    /// The definition of `name` (a valid name that exists).
    pub fn load_checked(&self, name: &str) -> Result<VmState, VmError> {
        crate::config::check_name(name)
            .map_err(|_| crate::store::StoreError::NotFound(name.to_string()))?;
        Ok(self.store.load(name)?)
    }

    /// The VNC server's `host:port` of a running VM.
    pub fn vnc_address(&self, name: &str) -> Result<String, VmError> {
        let info = self.info(name)?;
        if matches!(info.vm.graphics, crate::config::GraphicsConfig::None) {
            return Err(VmError::NoVnc(name.to_string()));
        }
        info.runtime
            .and_then(|r| r.vnc)
            .ok_or_else(|| VmError::NotRunning(name.to_string()))
    }

    /// QEMU of `name` is alive (pidfile and /proc only; no QMP round trip).
    pub fn qemu_alive(&self, name: &str) -> bool {
        let paths = self.run_paths(name);
        std::fs::read_to_string(&paths.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|pid| runtime::is_our_qemu(pid, &paths.qmp))
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<(), VmError> {
        let _lock = self.lock_existing(name)?;
        let mut vm = self.store.load(name)?;
        vm.autostart = on;
        self.store.save(&vm)?;
        Ok(())
    }
}
