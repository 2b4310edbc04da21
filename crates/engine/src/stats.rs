//! Resource figures for `berth stats` and the process list for `berth top`, read from the
//! container's cgroup (v2 unified, or the v1 controllers), as runtime-spec cgroupsPath
//! `/berth/<id>` places it.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn v2_dir(id: &str) -> Option<PathBuf> {
    let d = Path::new(ROOT).join("berth").join(id);
    d.join("cgroup.controllers").exists().then_some(d)
}

fn v1_dir(controller: &str, id: &str) -> PathBuf {
    Path::new(ROOT).join(controller).join("berth").join(id)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Total CPU time in nanoseconds.
    pub cpu_ns: u64,
    pub memory: u64,
    /// `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub pids: u64,
}

/// The container's processes (host pids).
pub fn processes(id: &str) -> Vec<i32> {
    let candidates = [
        v2_dir(id).map(|d| d.join("cgroup.procs")),
        Some(v1_dir("pids", id).join("cgroup.procs")),
        Some(v1_dir("memory", id).join("cgroup.procs")),
    ];
    for c in candidates.into_iter().flatten() {
        if let Ok(text) = std::fs::read_to_string(&c) {
            return text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

pub fn read(id: &str) -> CgroupStats {
    let unlimited = |v: Option<u64>| v.filter(|l| *l < (1 << 62));
    if let Some(d) = v2_dir(id) {
        let cpu_us = std::fs::read_to_string(d.join("cpu.stat"))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("usage_usec ")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
            })
            .unwrap_or(0);
        return CgroupStats {
            cpu_ns: cpu_us * 1000,
            memory: read_u64(&d.join("memory.current")).unwrap_or(0),
            memory_limit: unlimited(read_u64(&d.join("memory.max"))),
            pids: read_u64(&d.join("pids.current")).unwrap_or(0),
        };
    }
    CgroupStats {
        cpu_ns: read_u64(&v1_dir("cpuacct", id).join("cpuacct.usage")).unwrap_or(0),
        memory: read_u64(&v1_dir("memory", id).join("memory.usage_in_bytes")).unwrap_or(0),
        memory_limit: unlimited(read_u64(
            &v1_dir("memory", id).join("memory.limit_in_bytes"),
        )),
        pids: read_u64(&v1_dir("pids", id).join("pids.current")).unwrap_or(0),
    }
}

/// Received and transmitted bytes of the container's interfaces (all but `lo`), from the
/// init's view of /proc/net/dev.
pub fn network_io(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .map(|(_, v)| {
            let f: Vec<u64> = v
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (
                f.first().copied().unwrap_or(0),
                f.get(8).copied().unwrap_or(0),
            )
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}
