//! cgroup v2 resource files (kernel Documentation/admin-guide/cgroup-v2.rst), and the
//! conversions runc documents for v1-style values (`shares` to `weight`, `swap` as
//! memory+swap to `memory.swap.max`).

use std::path::Path;

use super::{read, write, CgroupError};
use crate::spec::{HugepageLimit, Resources, ThrottleDevice};

/// Enables in `dir`'s `cgroup.subtree_control` every controller of `wanted` that `dir`
/// offers, so its children get them.
pub(super) fn enable_controllers(dir: &Path, wanted: &[String]) -> Result<(), CgroupError> {
    let available = read(dir, "cgroup.controllers").unwrap_or_default();
    let enabled = read(dir, "cgroup.subtree_control").unwrap_or_default();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| wanted.iter().any(|w| w == c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        // One controller may be refused (for example cpuset with a realtime task): enable
        // what can be enabled.
        for m in &missing {
            let _ = write(dir, "cgroup.subtree_control", m);
        }
    }
    Ok(())
}

fn max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), runc's formula.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + ((u64::from(w).clamp(10, 1000) - 10) * 9999) / 990
}

pub(super) fn apply_hugetlb(dir: &Path, limits: &[HugepageLimit]) -> Result<(), CgroupError> {
    for h in limits {
        write(
            dir,
            &format!("hugetlb.{}.max", h.page_size),
            &h.limit.to_string(),
        )?;
    }
    Ok(())
}

pub(super) fn apply(dir: &Path, r: &Resources) -> Result<(), CgroupError> {
    if let Some(m) = &r.memory {
        if let Some(l) = m.limit {
            write(dir, "memory.max", &max(l))?;
        }
        if let Some(v) = m.reservation {
            write(dir, "memory.low", &max(v))?;
        }
        if let Some(s) = m.swap {
            // The spec's swap is memory+swap; v2 limits swap alone.
            let v = match (s, m.limit) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            if dir.join("memory.swap.max").exists() {
                write(dir, "memory.swap.max", &v)?;
            }
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares {
            write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if c.quota.is_some() || c.period.is_some() {
            let quota = c.quota.map_or("max".to_string(), max);
            let period = c.period.unwrap_or(100_000);
            write(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(b) = c.burst {
            write(dir, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(i) = c.idle {
            write(dir, "cpu.idle", &i.to_string())?;
        }
        if let Some(v) = c.cpus.as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = c.mems.as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.mems", v)?;
        }
    }
    if let Some(p) = &r.pids {
        write(
            dir,
            "pids.max",
            &if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".into()
            },
        )?;
    }
    if let Some(b) = &r.block_io {
        if let Some(w) = b.weight {
            if dir.join("io.bfq.weight").exists() {
                write(dir, "io.bfq.weight", &w.to_string())?;
            } else {
                write(
                    dir,
                    "io.weight",
                    &format!("default {}", blkio_to_io_weight(w)),
                )?;
            }
        }
        let mut lines: Vec<(i64, i64, String)> = Vec::new();
        let mut add = |devs: &[ThrottleDevice], key: &str| {
            for d in devs {
                lines.push((d.major, d.minor, format!("{key}={}", d.rate)));
            }
        };
        add(&b.throttle_read_bps_device, "rbps");
        add(&b.throttle_write_bps_device, "wbps");
        add(&b.throttle_read_iops_device, "riops");
        add(&b.throttle_write_iops_device, "wiops");
        for (maj, min, kv) in lines {
            write(dir, "io.max", &format!("{maj}:{min} {kv}"))?;
        }
    }
    apply_hugetlb(dir, &r.hugepage_limits)?;
    for (file, value) in &r.unified {
        if file.contains('/') || file.starts_with("cgroup.") && file != "cgroup.freeze" {
            return Err(CgroupError::Unsupported {
                what: format!("linux.resources.unified key {file:?}"),
            });
        }
        write(dir, file, value)?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    super::wait_for_freezer(dir, || {
        Ok(read(dir, "cgroup.events")?
            .lines()
            .any(|l| l.trim() == want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Cpu, Memory, Pids};

    #[test]
    fn shares_convert_to_weight_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn limits_land_in_the_v2_files() {
        let dir = std::env::temp_dir().join(format!("berth-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.swap.max"), "").unwrap();
        let r = Resources {
            memory: Some(Memory {
                limit: Some(100),
                swap: Some(300),
                ..Memory::default()
            }),
            cpu: Some(Cpu {
                shares: Some(1024),
                quota: Some(-1),
                period: Some(50_000),
                ..Cpu::default()
            }),
            pids: Some(Pids { limit: 7 }),
            ..Resources::default()
        };
        apply(&dir, &r).unwrap();
        let rd = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(rd("memory.max"), "100");
        assert_eq!(rd("memory.swap.max"), "200");
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "max 50000");
        assert_eq!(rd("pids.max"), "7");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
