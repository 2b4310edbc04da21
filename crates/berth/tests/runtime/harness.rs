//! Plumbing for the runtime tests: busybox bundles, a private `berth-runc` state root, and
//! cleanup of containers, cgroups and processes even when a test fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{fixture, TempDir};

/// Extracts the busybox fixture's single layer into `dest`.
pub fn unpack_busybox(dest: &Path) {
    let archive = fixture("busybox.oci.tar");
    let mut outer = tar::Archive::new(std::fs::File::open(&archive).expect("open busybox.oci.tar"));
    let mut blobs = std::collections::HashMap::new();
    let mut index = Vec::new();
    for entry in outer.entries().expect("read archive") {
        let mut entry = entry.expect("archive entry");
        let path = entry.path().expect("entry path").to_path_buf();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        if path == Path::new("index.json") {
            index = data;
        } else if let Ok(rest) = path.strip_prefix("blobs/sha256") {
            blobs.insert(rest.display().to_string(), data);
        }
    }
    let blob = |digest: &str| -> &Vec<u8> {
        blobs
            .get(digest.trim_start_matches("sha256:"))
            .unwrap_or_else(|| panic!("blob {digest} missing"))
    };
    let index: Value = serde_json::from_slice(&index).expect("index.json");
    let manifest: Value =
        serde_json::from_slice(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "the busybox fixture has one layer");
    let gz = flate2::read::GzDecoder::new(&blob(layers[0]["digest"].as_str().unwrap())[..]);
    let mut layer = tar::Archive::new(gz);
    layer.set_preserve_permissions(true);
    layer.unpack(dest).expect("unpack busybox layer");
}

/// A private `berth-runc` (a symlink to the berth binary) with its own state root.
pub struct Runc {
    pub dir: TempDir,
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Runc {
    pub fn new() -> Self {
        Self::with_binary(Path::new(env!("CARGO_BIN_EXE_berth")))
    }

    /// A berth-runc that runs its own copy of the binary (nothing else executes it).
    pub fn with_private_binary() -> (Self, PathBuf) {
        let dir = TempDir::new("berth-copy");
        let copy = dir.path().join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &copy).expect("copy the berth binary");
        let runc = Self::with_binary(&copy);
        // Keep the copy's directory alive as long as the runc: park it inside.
        let kept = runc.dir.path().join("berth-copy");
        std::fs::rename(dir.path(), &kept).expect("move the copy");
        std::mem::forget(dir);
        let copy = kept.join("berth");
        std::fs::remove_file(&runc.bin).unwrap();
        std::os::unix::fs::symlink(&copy, &runc.bin).unwrap();
        (runc, copy)
    }

    fn with_binary(binary: &Path) -> Self {
        let dir = TempDir::new("runc");
        let bin = dir.path().join("berth-runc");
        std::os::unix::fs::symlink(binary, &bin).expect("symlink berth-runc");
        let root = dir.path().join("state");
        Self { dir, bin, root }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs to completion with stdout and stderr in files, not pipes: a detached container
    /// inherits them, and waiting for a pipe's end-of-file would wait for the container.
    pub fn run(&self, args: &[&str]) -> Output {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("out-{n}"));
        let err_path = self.dir.path().join(format!("err-{n}"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .expect("run berth-runc");
        // A detached container may still write: take what is there now.
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        crate::support::expect_success(&format!("berth-runc {args:?}"), &self.run(args))
    }

    /// Asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        crate::support::expect_failure(&format!("berth-runc {args:?}"), &self.run(args))
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state is JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Entries of the state root.
    pub fn state_entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        // Remove whatever a failed test left: kill by pid, delete (which removes cgroups).
        for id in self.state_entries() {
            if let Ok(st) = std::fs::read_to_string(self.root.join(&id).join("state.json")) {
                if let Ok(v) = serde_json::from_str::<Value>(&st) {
                    if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
            }
            let _ = self.cmd(&["delete", "--force", &id]).output();
        }
    }
}

/// A bundle: busybox rootfs plus the `berth-runc spec` config, edited by the test.
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    /// A bundle whose process runs `args` without a terminal.
    pub fn new(runc: &Runc, args: &[&str]) -> Self {
        let dir = TempDir::new("bundle");
        unpack_busybox(&dir.path().join("rootfs"));
        let out = Command::new(&runc.bin)
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .expect("berth-runc spec");
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = Self { dir };
        b.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
            // The default read-only root would stop tests writing marker files.
            c["root"]["readonly"] = false.into();
        });
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("config.json")).unwrap()).unwrap()
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }

    pub fn arg(&self) -> &str {
        self.path().to_str().expect("utf-8 temp path")
    }
}

/// A unique container id for this test process.
pub fn id(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// Every cgroup directory named `name` under the host's hierarchies.
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    fn walk(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if e.file_name().to_str() == Some(name) {
                    found.push(p.clone());
                }
                walk(&p, name, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), name, 0, &mut found);
    found
}

/// The cgroup directory of `pid` in the v1 hierarchy of `controller` (or the v2 tree).
pub fn cgroup_of(pid: i64, controller: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/pid/cgroup");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
        }
    }
    let v2 = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup line");
    Path::new("/sys/fs/cgroup").join(v2.trim_start_matches('/'))
}

/// Waits until `f` holds, up to five seconds.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}
