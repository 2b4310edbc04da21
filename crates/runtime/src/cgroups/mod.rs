//! Control groups: where the hierarchies are (v1, v2, or the hybrid of both), which
//! directories a container gets, and writing its resource limits. The cgroupfs driver only;
//! `--systemd-cgroup` paths (`slice:prefix:name`) are translated to cgroupfs paths.
//!
//! Detection reads `/proc/self/mountinfo` and decides per controller: a controller mounted
//! as a v1 hierarchy is driven there, one listed in the cgroup2 mount's
//! `cgroup.controllers` is driven in the unified tree. On a hybrid machine (v1 controllers
//! plus a cgroup2 mount at `/sys/fs/cgroup/unified` holding only hugetlb, as here) the
//! container joins every v1 hierarchy and the unified one, the way runc does. On pure v2
//! the runtime enables `+cpu +memory +pids ...` in `cgroup.subtree_control` down the path.
//!
//! Called by `create` (plan, create, apply, add the init), `exec` (add the process),
//! `update`, `pause`/`resume`, `ps`, `events --stats` and `delete`.

mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::spec::{DeviceRule, Resources};

pub use stats::stats;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read /proc/self/mountinfo")]
    Mountinfo(#[source] io::Error),
    #[error("no cgroup filesystem is mounted")]
    NoCgroups,
    #[error("create cgroup {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove cgroup {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} is not supported by this machine's cgroups")]
    Unsupported { what: String },
    #[error("invalid cgroups path {0:?}")]
    InvalidPath(String),
    #[error("cgroup {} did not freeze in time", path.display())]
    FreezeTimeout { path: PathBuf },
}

/// The device rules a container gets: the spec's, then (as runc adds them) mknod of any
/// node, the default devices, ptys, tun, and the spec's own `linux.devices`.
pub fn device_rules(spec_rules: &[DeviceRule], devices: &[crate::spec::Device]) -> Vec<DeviceRule> {
    let rule = |kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| DeviceRule {
        allow: true,
        kind: Some(kind.into()),
        major,
        minor,
        access: Some(access.into()),
    };
    let mut out = spec_rules.to_vec();
    out.push(rule("c", None, None, "m"));
    out.push(rule("b", None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 8),
        (1, 7),
        (5, 0),
        (1, 5),
        (1, 9),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        out.push(rule("c", Some(major), Some(minor), "rwm"));
    }
    out.push(rule("c", Some(136), None, "rwm"));
    for d in devices {
        if d.kind == "c" || d.kind == "b" || d.kind == "u" {
            let kind = if d.kind == "b" { "b" } else { "c" };
            out.push(rule(kind, Some(d.major), Some(d.minor), "rwm"));
        }
    }
    out
}

/// One v1 hierarchy (a `cgroup` mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    pub mountpoint: PathBuf,
    /// The path inside the hierarchy that is mounted (`/` outside containers).
    pub root: String,
    /// Controllers (`cpu`, `memory`) or the name (`name=systemd`) it carries.
    pub controllers: Vec<String>,
}

/// The cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMount {
    pub mountpoint: PathBuf,
    pub root: String,
    /// Its `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// Where the hierarchies are mounted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub v1: Vec<V1Mount>,
    pub unified: Option<UnifiedMount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount (systemd's "hybrid").
    Hybrid,
    /// Only cgroup2.
    Unified,
}

impl Layout {
    /// Reads this process's mount table.
    pub fn detect() -> Result<Self, CgroupError> {
        let text =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(CgroupError::Mountinfo)?;
        let mut layout = Self::parse(&text);
        if let Some(u) = &mut layout.unified {
            u.controllers = std::fs::read_to_string(u.mountpoint.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
        }
        if layout.v1.is_empty() && layout.unified.is_none() {
            return Err(CgroupError::NoCgroups);
        }
        Ok(layout)
    }

    /// Parses mountinfo (proc(5)): `id parent maj:min root mountpoint opts ... - fstype
    /// source superopts`. The unified mount's controllers are left empty.
    pub fn parse(mountinfo: &str) -> Self {
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let root = unescape_mountinfo(l[3]);
            let mountpoint = PathBuf::from(unescape_mountinfo(l[4]));
            match r[0] {
                "cgroup" => {
                    let controllers: Vec<String> = r[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "relatime"
                                    | "noatime"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "clone_children"
                                    | "xattr"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    // A hierarchy mounted twice: keep the first mount.
                    if layout.v1.iter().any(|m| m.controllers == controllers) {
                        continue;
                    }
                    layout.v1.push(V1Mount {
                        mountpoint,
                        root,
                        controllers,
                    });
                }
                "cgroup2" if layout.unified.is_none() => {
                    layout.unified = Some(UnifiedMount {
                        mountpoint,
                        root,
                        controllers: Vec::new(),
                    });
                }
                _ => {}
            }
        }
        layout
    }

    pub fn mode(&self) -> Mode {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => Mode::Unified,
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::Legacy,
        }
    }
}

/// Calls `reached` every 2 ms until it says the freezer is where it should be, for at most
/// 10 s (freezing waits for every task of the cgroup to stop). Shared by v1 and v2.
fn wait_for_freezer(
    dir: &Path,
    mut reached: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if reached()? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A path field of /proc/self/mountinfo, decoded: the kernel escapes space, tab, newline
/// and backslash as `\ooo` octal. The container engine uses it too.
pub fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's own cgroups (`/proc/self/cgroup`): hierarchy controllers -> path; the
/// unified hierarchy under the key "".
pub fn own_cgroups() -> BTreeMap<String, String> {
    parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
}

pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

/// Translates a systemd-style `slice:prefix:name` into the cgroupfs path systemd would
/// use (`system.slice:cri:abc` is `/system.slice/cri-abc.scope`); other paths pass through.
pub fn cgroupfs_path(path: &str) -> Result<String, CgroupError> {
    let parts: Vec<&str> = path.split(':').collect();
    if parts.len() == 1 {
        return Ok(path.to_string());
    }
    if parts.len() != 3 || parts[2].is_empty() {
        return Err(CgroupError::InvalidPath(path.to_string()));
    }
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    let mut out = String::new();
    if !slice.is_empty() && slice != "-.slice" {
        let base = slice
            .strip_suffix(".slice")
            .ok_or_else(|| CgroupError::InvalidPath(path.to_string()))?;
        let mut acc = String::new();
        for comp in base.split('-') {
            if comp.is_empty() {
                return Err(CgroupError::InvalidPath(path.to_string()));
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(comp);
            out.push('/');
            out.push_str(&acc);
            out.push_str(".slice");
        }
    }
    let unit = if name.ends_with(".slice") || name.ends_with(".scope") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{out}/{unit}"))
}

/// Joins an absolute cgroup path (in hierarchy terms) to a mount.
fn under_mount(mountpoint: &Path, mount_root: &str, path: &str) -> PathBuf {
    let rel = Path::new(path)
        .strip_prefix(mount_root)
        .unwrap_or(Path::new(path.trim_start_matches('/')));
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    mountpoint.join(rel)
}

/// Resolves `cgroupsPath` for one hierarchy: absolute stays, relative (or empty, which
/// means the container id) is taken below this process's own cgroup, as runc does.
fn hierarchy_path(cgroups_path: &str, id: &str, own: Option<&String>) -> String {
    if cgroups_path.starts_with('/') {
        return normalize(cgroups_path);
    }
    let rel = if cgroups_path.is_empty() {
        id
    } else {
        cgroups_path
    };
    let base = own.map(String::as_str).unwrap_or("/");
    normalize(&format!("{base}/{rel}"))
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A container's cgroup directories; persisted in its state so later commands need not
/// detect again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupState {
    /// v1 hierarchy (its controllers joined by ',') -> directory.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// The unified directory: pure v2's only one, or the hybrid's cgroup2 one.
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// Controllers the unified tree drives (all of them on pure v2, hugetlb here).
    #[serde(default)]
    pub unified_controllers: Vec<String>,
    /// Directories this container created, parents first; removed in reverse.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

impl CgroupState {
    /// Decides the directories without touching the filesystem.
    pub fn plan(
        layout: &Layout,
        cgroups_path: &str,
        id: &str,
        own: &BTreeMap<String, String>,
    ) -> Result<Self, CgroupError> {
        let path = cgroupfs_path(cgroups_path)?;
        if path.split('/').any(|c| c == "..") {
            return Err(CgroupError::InvalidPath(cgroups_path.to_string()));
        }
        let mut state = CgroupState::default();
        for m in &layout.v1 {
            let key = m.controllers.join(",");
            let p = hierarchy_path(&path, id, own.get(&key));
            state
                .v1
                .insert(key, under_mount(&m.mountpoint, &m.root, &p));
        }
        if let Some(u) = &layout.unified {
            let p = hierarchy_path(&path, id, own.get(""));
            state.unified = Some(under_mount(&u.mountpoint, &u.root, &p));
            state.unified_controllers = u.controllers.clone();
        }
        Ok(state)
    }

    /// The v1 directory that carries `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, p)| p.as_path())
    }

    /// The unified directory, if it drives `controller`.
    pub fn unified_dir(&self, controller: &str) -> Option<&Path> {
        self.unified
            .as_deref()
            .filter(|_| self.unified_controllers.iter().any(|c| c == controller))
    }

    /// True when only the unified tree exists.
    pub fn is_unified(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// Creates the directories (recording which ones are new) and prepares them: cpuset
    /// inheritance on v1, `subtree_control` on v2.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        let dirs: Vec<PathBuf> = self
            .v1
            .values()
            .chain(self.unified.iter())
            .cloned()
            .collect();
        for dir in dirs {
            let delegate = self.is_unified() && self.unified.as_deref() == Some(dir.as_path());
            // The directory and its ancestors inside the hierarchy, top first.
            let mut chain = Vec::new();
            let mut p = dir.as_path();
            loop {
                chain.push(p.to_path_buf());
                match p.parent() {
                    Some(parent) if !parent.exists() || parent.join("cgroup.procs").exists() => {
                        p = parent
                    }
                    _ => break,
                }
            }
            chain.reverse();
            for (i, d) in chain.iter().enumerate() {
                if !d.exists() {
                    match std::fs::create_dir(d) {
                        Ok(()) => self.created.push(d.clone()),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(source) => {
                            return Err(CgroupError::Create {
                                path: d.clone(),
                                source,
                            })
                        }
                    }
                }
                if delegate && i + 1 < chain.len() {
                    v2::enable_controllers(d, &self.unified_controllers)?;
                }
            }
        }
        if let Some(dir) = self.v1_dir("cpuset") {
            v1::inherit_cpuset(dir)?;
        }
        Ok(())
    }

    /// Writes the limits.
    pub fn apply(&self, resources: &Resources) -> Result<(), CgroupError> {
        if self.is_unified() {
            v2::apply(self.unified.as_deref().expect("unified checked"), resources)
        } else {
            v1::apply(self, resources)?;
            if let Some(dir) = self.unified_dir("hugetlb") {
                v2::apply_hugetlb(dir, &resources.hugepage_limits)?;
            }
            if !resources.unified.is_empty() {
                return Err(CgroupError::Unsupported {
                    what: "linux.resources.unified on a cgroup v1 machine".into(),
                });
            }
            Ok(())
        }
    }

    /// Moves a process into every directory (stage 1 normally joins by itself, see
    /// `process::init`; this is the fallback, and what `exec` of a foreign pid needs).
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.v1.values().chain(self.unified.iter()) {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// The directory used to list processes and read the freezer.
    fn primary(&self) -> Option<&Path> {
        if self.is_unified() {
            self.unified.as_deref()
        } else {
            self.v1_dir("pids")
                .or_else(|| self.v1_dir("memory"))
                .or_else(|| self.v1.values().next().map(PathBuf::as_path))
        }
    }

    /// Every process in the container's cgroup, sub-cgroups included.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        if let Some(dir) = self.primary() {
            collect_pids(dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Freezes (`true`) or thaws the container, waiting until the kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        if self.is_unified() {
            v2::freeze(self.unified.as_deref().expect("unified checked"), frozen)
        } else {
            let dir = self
                .v1_dir("freezer")
                .ok_or_else(|| CgroupError::Unsupported {
                    what: "the freezer controller".into(),
                })?;
            v1::freeze(dir, frozen)
        }
    }

    pub fn is_frozen(&self) -> bool {
        if self.is_unified() {
            self.unified
                .as_deref()
                .is_some_and(|d| read(d, "cgroup.freeze").is_ok_and(|s| s.trim() == "1"))
        } else {
            self.v1_dir("freezer")
                .is_some_and(|d| read(d, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN"))
        }
    }

    /// Removes the directories this container created (and its leaves, whoever made
    /// them). Processes that just died may keep a cgroup busy for a moment: retry briefly.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut leaves: Vec<&Path> = self
            .v1
            .values()
            .chain(self.unified.iter())
            .map(PathBuf::as_path)
            .collect();
        leaves.sort();
        leaves.dedup();
        let mut first_err = None;
        for leaf in &leaves {
            if let Err(e) = remove_tree(leaf) {
                first_err.get_or_insert(e);
            }
        }
        for dir in self.created.iter().rev() {
            if leaves.contains(&dir.as_path()) {
                continue;
            }
            // Shared parents stay when another container still uses them.
            let _ = std::fs::remove_dir(dir);
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let text = match read(dir, "cgroup.procs") {
        Ok(t) => t,
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Removes a cgroup directory and its sub-cgroups, deepest first.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 1 0:22 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_layout_is_detected_per_controller() {
        let l = Layout::parse(HYBRID);
        assert_eq!(l.mode(), Mode::Hybrid);
        assert_eq!(l.v1.len(), 5);
        assert_eq!(l.v1[4].controllers, ["name=systemd"]);
        assert_eq!(
            l.unified.as_ref().unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn pure_v2_layout_is_detected() {
        let l = Layout::parse(PURE_V2);
        assert_eq!(l.mode(), Mode::Unified);
        assert_eq!(l.unified.unwrap().mountpoint, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn relative_and_empty_paths_go_below_our_own_cgroup() {
        let mut l = Layout::parse(HYBRID);
        l.unified.as_mut().unwrap().controllers = vec!["hugetlb".into()];
        let own = parse_proc_cgroup("4:memory:/session/abc\n1:cpu:/\n0::/\n");
        let s = CgroupState::plan(&l, "", "c1", &own).unwrap();
        assert_eq!(
            s.v1_dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/session/abc/c1")
        );
        assert_eq!(s.v1_dir("cpu").unwrap(), Path::new("/sys/fs/cgroup/cpu/c1"));
        assert_eq!(
            s.unified_dir("hugetlb").unwrap(),
            Path::new("/sys/fs/cgroup/unified/c1")
        );
        assert_eq!(s.unified_dir("memory"), None);
        let s = CgroupState::plan(&l, "/default/c1", "c1", &own).unwrap();
        assert_eq!(
            s.v1_dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/default/c1")
        );
    }

    #[test]
    fn systemd_style_paths_become_cgroupfs_paths() {
        assert_eq!(
            cgroupfs_path("system.slice:cri-containerd:abc").unwrap(),
            "/system.slice/cri-containerd-abc.scope"
        );
        assert_eq!(
            cgroupfs_path("kubepods-besteffort-pod1.slice:cri:x").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-x.scope"
        );
        assert_eq!(cgroupfs_path(":libpod:abc").unwrap(), "/libpod-abc.scope");
        assert!(cgroupfs_path("a:b").is_err());
    }

    #[test]
    fn escaping_paths_are_rejected() {
        let l = Layout::parse(PURE_V2);
        assert!(CgroupState::plan(&l, "/a/../../etc", "x", &BTreeMap::new()).is_err());
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }

    #[test]
    fn create_and_destroy_leave_nothing_behind() {
        let tmp = std::env::temp_dir().join(format!("berth-cg-{}", std::process::id()));
        let l = Layout {
            v1: vec![V1Mount {
                mountpoint: tmp.join("memory"),
                root: "/".into(),
                controllers: vec!["memory".into()],
            }],
            unified: None,
        };
        std::fs::create_dir_all(tmp.join("memory/shared")).unwrap();
        let mut s = CgroupState::plan(&l, "/shared/a/b", "b", &BTreeMap::new()).unwrap();
        s.create().unwrap();
        assert_eq!(
            s.created,
            [tmp.join("memory/shared/a"), tmp.join("memory/shared/a/b")]
        );
        s.destroy().unwrap();
        assert!(!tmp.join("memory/shared/a").exists());
        assert!(tmp.join("memory/shared").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
