//! `vm start` (virsh start): one daemonized QEMU per run. QEMU's `-daemonize` makes the
//! parent exit only once the machine is set up (sockets listening, pidfile written), with
//! a non-zero status and a message on stderr when setting up failed — which berth passes
//! on as the one-line error.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{taps, VmError, Vms};
use crate::config::{DiskDevice, Firmware, GraphicsConfig};
use crate::host::{accel, firmware};
use crate::qemu::args::{Accel, Pflash};
use crate::qemu::img::last_error_line;
use crate::qemu::plan::{self, Launch};
use crate::qemu::{find_binary, SYSTEM_BINARY};
use crate::runtime::{self, RunPaths, RuntimeState};
use crate::state::VmState;

/// Options of one start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Restore this internal snapshot (disks and machine state) as the machine starts.
    pub loadvm: Option<String>,
}

/// A started VM.
#[derive(Debug, Clone)]
pub struct Started {
    pub pid: u32,
    pub accel: Accel,
    /// Said once: why KVM is not used (the first start after boot that found out).
    pub accel_notice: Option<String>,
    /// `host:port` of the VNC server.
    pub vnc: Option<String>,
    /// This run boots the install media.
    pub install: bool,
    pub console_log: PathBuf,
}

/// Each autostart VM's name and how its start went.
pub type AutostartResults = Vec<(String, Result<Started, VmError>)>;

/// Longest unix socket path (sun_path is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

impl Vms {
    pub fn start(&self, name: &str) -> Result<Started, VmError> {
        self.start_with(name, &StartOptions::default())
    }

    pub fn start_with(&self, name: &str, opts: &StartOptions) -> Result<Started, VmError> {
        let _lock = self.lock_existing(name)?;
        self.start_locked(name, opts)
    }

    /// Starts every VM marked autostart that is shut off; returns the names started and
    /// the failures.
    pub fn start_autostart(&self) -> Result<AutostartResults, VmError> {
        let mut out = Vec::new();
        for name in self.store.names()? {
            let Ok(vm) = self.store.load(&name) else {
                continue;
            };
            if !vm.autostart {
                continue;
            }
            match self.start(&name) {
                Err(VmError::AlreadyActive(_)) => {}
                r => out.push((name, r)),
            }
        }
        Ok(out)
    }

    pub(crate) fn start_locked(&self, name: &str, opts: &StartOptions) -> Result<Started, VmError> {
        let mut vm = self.store.load(name)?;
        if self.observe_locked(name).state.is_active() {
            return Err(VmError::AlreadyActive(name.to_string()));
        }
        let qemu = find_binary(SYSTEM_BINARY).ok_or(VmError::QemuMissing)?;
        let (accel, accel_notice) = match vm.accel {
            Some(Accel::Tcg) => (Accel::Tcg, None),
            forced => {
                let (d, fresh) = accel::detect(&qemu, self.store.run_vms_dir());
                match (forced, d.kvm_unusable) {
                    (Some(Accel::Kvm), Some(why)) => return Err(VmError::KvmUnusable(why)),
                    (_, Some(why)) => (Accel::Tcg, fresh.then_some(why)),
                    (_, None) => (Accel::Kvm, None),
                }
            }
        };
        let install = vm.install.is_some();
        check_media(&vm, install)?;
        let uefi = match vm.firmware {
            Firmware::Uefi => {
                let fw = firmware::find_uefi().ok_or(VmError::NoUefi)?;
                let vars = vm
                    .nvram
                    .clone()
                    .unwrap_or_else(|| plan::nvram_path(&self.store.vm_dir(name)));
                if !vars.exists() {
                    std::fs::copy(&fw.vars_template, &vars).map_err(|source| VmError::Access {
                        what: "copy the UEFI variable store to",
                        path: vars.clone(),
                        source,
                    })?;
                }
                Some(Pflash {
                    code: fw.code,
                    vars,
                })
            }
            Firmware::Bios => None,
        };

        let paths = self.run_paths(name);
        for p in [&paths.qmp, &paths.console] {
            if p.as_os_str().len() > SUN_PATH_MAX {
                return Err(VmError::SocketPath(p.clone()));
            }
        }
        std::fs::create_dir_all(&paths.dir).map_err(|source| VmError::Access {
            what: "create",
            path: paths.dir.clone(),
            source,
        })?;
        let taps = match taps::create(&self.state_root, &vm) {
            Ok(t) => t,
            Err(e) => {
                let _ = runtime::clear(&paths);
                return Err(e);
            }
        };
        let tap_names: Vec<(usize, String)> =
            taps.iter().map(|(i, t)| (*i, t.name.clone())).collect();
        let console_log = self.console_log(name);
        let args = plan::build(&Launch {
            vm: &vm,
            paths: &paths,
            console_log: &console_log,
            accel,
            install,
            uefi,
            taps: &tap_names,
            loadvm: opts.loadvm.as_deref(),
        });
        let tap_records: Vec<_> = taps.into_iter().map(|(_, t)| t).collect();
        let fail = |e: VmError| {
            self.cleanup_run(name, &paths, &tap_records);
            e
        };

        let out = Command::new(&qemu)
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| {
                fail(VmError::Spawn {
                    name: name.to_string(),
                    source,
                })
            })?;
        if !out.status.success() {
            return Err(fail(VmError::Launch {
                name: name.to_string(),
                message: last_error_line(&String::from_utf8_lossy(&out.stderr)),
            }));
        }
        let Some(pid) = std::fs::read_to_string(&paths.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return Err(fail(VmError::Launch {
                name: name.to_string(),
                message: "qemu started but wrote no pidfile".into(),
            }));
        };

        let vnc = match vm.graphics {
            GraphicsConfig::Vnc { .. } => vnc_address(&paths),
            GraphicsConfig::None => None,
        };
        let rt = RuntimeState {
            pid,
            accel,
            started: super::now(),
            install,
            vnc: vnc.clone(),
            taps: tap_records.clone(),
        };
        runtime::write_runtime(&paths, &rt)?;
        if install {
            // The install boot happens once; from now on the VM boots its disk.
            vm.install = None;
            self.store.save(&vm)?;
        }
        Ok(Started {
            pid,
            accel,
            accel_notice,
            vnc,
            install,
            console_log,
        })
    }
}

fn vnc_address(paths: &RunPaths) -> Option<String> {
    let mut q = runtime::qmp(paths, Duration::from_secs(5)).ok()?;
    let (host, port) = q.query_vnc().ok()??;
    Some(format!("{host}:{port}"))
}

/// Every file this run needs is still there (an ISO may have moved since `create`).
fn check_media(vm: &VmState, install: bool) -> Result<(), VmError> {
    for d in vm.disks.iter().filter(|d| install || !d.install_only) {
        if !d.path.exists() {
            return Err(VmError::Missing {
                what: match d.device {
                    DiskDevice::Disk => "disk image",
                    DiskDevice::Cdrom => "cdrom",
                },
                path: d.path.clone(),
            });
        }
    }
    let direct = if install {
        vm.install.as_ref().and_then(|i| i.direct.as_ref())
    } else {
        None
    }
    .or(vm.boot.as_ref());
    if let Some(b) = direct {
        if !b.kernel.exists() {
            return Err(VmError::Missing {
                what: "kernel",
                path: b.kernel.clone(),
            });
        }
        if let Some(i) = b.initrd.as_ref().filter(|i| !i.exists()) {
            return Err(VmError::Missing {
                what: "initrd",
                path: i.clone(),
            });
        }
    }
    Ok(())
}
