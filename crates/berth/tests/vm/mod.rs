//! Virtual machines: real QEMU booting a real Debian kernel (under TCG where KVM cannot run
//! it) with the busybox initramfs and ISO that `scripts/vm-fixtures` builds. The guest
//! prints `BERTH-*` fact lines and the marker `BERTH-GUEST-OK` on its serial console, which
//! berth logs to `<root>/vms/<name>/console.log`; `berth.mode=` on its kernel command line
//! makes it power off at once (default), wait for the ACPI power button (`acpi`) or ignore
//! it (`ignore`).
//!
//! Each test has its own state and run roots; [`VmEnv`] kills every QEMU started under its
//! run root when dropped, even when the test fails. Guests get 256 MiB to keep the suite
//! quick on two cores.

mod boot;
mod errors;
mod lifecycle;
mod manage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{repo_root, require_tool, TempDir};

/// How long a guest may take to print something under TCG on a busy two-core machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// The guest fixtures (kernel, initramfs, ISO, install tree), built once per run.
pub fn vm_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_tool("qemu-system-x86_64");
        require_tool("qemu-img");
        let out = Command::new(repo_root().join("scripts/vm-fixtures"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/vm-fixtures");
        assert!(out.status.success(), "scripts/vm-fixtures failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

pub fn fixture(name: &str) -> String {
    vm_fixtures().join(name).to_str().unwrap().to_string()
}

/// A private berth state root and run root for VMs.
pub struct VmEnv {
    pub root: TempDir,
    pub run: TempDir,
}

impl VmEnv {
    pub fn new() -> Self {
        vm_fixtures();
        Self {
            root: TempDir::new("vmroot"),
            run: TempDir::new("vmrun"),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.root.path())
            .arg("--run-root")
            .arg(self.run.path())
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_ROOT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        crate::support::expect_success(&format!("berth {args:?}"), &self.run(args))
    }

    /// Runs berth, asserts it fails with exactly one line on stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "berth {args:?} succeeded but should have failed:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "berth {args:?}: expected a one-line error, got:\n{stderr}"
        );
        assert!(stderr.starts_with("berth: "), "{stderr}");
        stderr.trim_end().to_string()
    }

    /// `vm create` with the options every test VM shares: little memory, serial only.
    pub fn create(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "vm",
            "create",
            "--name",
            name,
            "--graphics",
            "none",
            "--noautoconsole",
        ];
        if !extra.contains(&"--memory") {
            args.extend(["--memory", "256"]);
        }
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// A direct-kernel VM of the test guest in `mode` (poweroff, acpi, ignore).
    pub fn create_kernel_vm(&self, name: &str, mode: &str, extra: &[&str]) -> String {
        let kernel = fixture("vmlinuz");
        let initrd = fixture("initrd.gz");
        let cmdline = format!("quiet berth.mode={mode}");
        let mut args = vec![
            "--kernel",
            kernel.as_str(),
            "--initrd",
            initrd.as_str(),
            "--extra-args",
            cmdline.as_str(),
        ];
        args.extend_from_slice(extra);
        self.create(name, &args)
    }

    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.root.path().join("vms").join(name)
    }

    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.run.path().join("vms").join(name)
    }

    pub fn console_log(&self, name: &str) -> String {
        let bytes = std::fs::read(self.vm_dir(name).join("console.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the console log has a line starting with `prefix`; returns the log.
    pub fn wait_console(&self, name: &str, prefix: &str) -> String {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let log = self.console_log(name);
            if log.lines().any(|l| l.trim_start().starts_with(prefix)) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no {prefix} on the console within {BOOT_TIMEOUT:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid in the VM's pidfile, if QEMU runs.
    pub fn qemu_pid(&self, name: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.run_dir(name).join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_alive(pid).then_some(pid)
    }

    /// Waits until `domstate` says `state`.
    pub fn wait_state(&self, name: &str, state: &str) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let now = self.ok(&["vm", "domstate", name]);
            if now.trim() == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} is still {now:?}, not {state}:\n{}",
                self.console_log(name)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Alive and not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

impl Drop for VmEnv {
    fn drop(&mut self) {
        // Every QEMU whose command line names this run root is ours: kill it by pid.
        let needle = self.run.path().to_string_lossy().into_owned();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut killed = Vec::new();
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline);
            let is_qemu = text.starts_with("qemu-system") || text.contains("/qemu-system");
            if is_qemu && text.contains(&needle) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    killed.push(pid.as_raw_nonzero().get() as u32);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while killed.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    crate::support::free_port()
}
