//! cgroup v1 resource files (kernel Documentation/admin-guide/cgroup-v1/*), one hierarchy
//! per controller.

use std::path::Path;

use super::{read, write, CgroupError, CgroupState};
use crate::spec::{DeviceRule, Resources, ThrottleDevice};

/// A new cpuset cgroup starts with empty `cpus`/`mems` and refuses tasks until they are
/// set: copy them down from the nearest ancestor that has them.
pub(super) fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let mut chain = vec![dir.to_path_buf()];
    let mut p = dir;
    while let Some(parent) = p.parent() {
        if !parent.join("cpuset.cpus").exists() {
            break;
        }
        chain.push(parent.to_path_buf());
        p = parent;
    }
    chain.reverse();
    for pair in chain.windows(2) {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = read(&pair[1], file)?;
            if current.trim().is_empty() {
                let parent_value = read(&pair[0], file)?;
                write(&pair[1], file, parent_value.trim())?;
            }
        }
    }
    Ok(())
}

fn limit(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

fn device_rule(r: &DeviceRule) -> String {
    let num = |n: Option<i64>| {
        n.filter(|&n| n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let kind = r.kind.as_deref().unwrap_or("a");
    if kind == "a" && r.major.is_none() && r.minor.is_none() {
        return "a".to_string();
    }
    format!(
        "{kind} {}:{} {}",
        num(r.major),
        num(r.minor),
        r.access.as_deref().unwrap_or("rwm")
    )
}

fn throttle(dir: &Path, file: &str, devs: &[ThrottleDevice]) -> Result<(), CgroupError> {
    for d in devs {
        write(dir, file, &format!("{}:{} {}", d.major, d.minor, d.rate))?;
    }
    Ok(())
}

fn need<'a>(state: &'a CgroupState, controller: &str) -> Result<&'a Path, CgroupError> {
    state
        .v1_dir(controller)
        .ok_or_else(|| CgroupError::Unsupported {
            what: format!("the {controller} controller"),
        })
}

pub(super) fn apply(state: &CgroupState, r: &Resources) -> Result<(), CgroupError> {
    if let Some(m) = &r.memory {
        let dir = need(state, "memory")?;
        let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
        if let Some(l) = m.limit {
            // The memory+swap limit may not be below the memory limit: when raising both,
            // the swap one goes first.
            let set_limit = || write(dir, "memory.limit_in_bytes", &limit(l));
            match (set_limit(), m.swap) {
                (Ok(()), Some(s)) if memsw => write(dir, "memory.memsw.limit_in_bytes", &limit(s))?,
                (Ok(()), _) => {}
                (Err(_), Some(s)) if memsw => {
                    write(dir, "memory.memsw.limit_in_bytes", &limit(s))?;
                    set_limit()?;
                }
                (Err(e), _) => return Err(e),
            }
        } else if let (Some(s), true) = (m.swap, memsw) {
            write(dir, "memory.memsw.limit_in_bytes", &limit(s))?;
        }
        if let Some(v) = m.reservation {
            write(dir, "memory.soft_limit_in_bytes", &limit(v))?;
        }
        if let Some(v) = m.kernel_tcp {
            write(dir, "memory.kmem.tcp.limit_in_bytes", &limit(v))?;
        }
        if let Some(v) = m.swappiness {
            if v <= 100 {
                write(dir, "memory.swappiness", &v.to_string())?;
            }
        }
        if m.disable_oom_killer == Some(true) {
            write(dir, "memory.oom_control", "1")?;
        }
    }
    if let Some(c) = &r.cpu {
        if c.shares.is_some() || c.quota.is_some() || c.period.is_some() || c.idle.is_some() {
            let dir = need(state, "cpu")?;
            if let Some(v) = c.shares {
                write(dir, "cpu.shares", &v.to_string())?;
            }
            if let Some(v) = c.period {
                write(dir, "cpu.cfs_period_us", &v.to_string())?;
            }
            if let Some(v) = c.quota {
                write(dir, "cpu.cfs_quota_us", &v.to_string())?;
            }
            if let Some(v) = c.burst {
                write(dir, "cpu.cfs_burst_us", &v.to_string())?;
            }
            if let Some(v) = c.realtime_period {
                write(dir, "cpu.rt_period_us", &v.to_string())?;
            }
            if let Some(v) = c.realtime_runtime {
                write(dir, "cpu.rt_runtime_us", &v.to_string())?;
            }
            if let Some(v) = c.idle {
                write(dir, "cpu.idle", &v.to_string())?;
            }
        }
        if c.cpus.is_some() || c.mems.is_some() {
            let dir = need(state, "cpuset")?;
            if let Some(v) = c.cpus.as_deref().filter(|v| !v.is_empty()) {
                write(dir, "cpuset.cpus", v)?;
            }
            if let Some(v) = c.mems.as_deref().filter(|v| !v.is_empty()) {
                write(dir, "cpuset.mems", v)?;
            }
        }
    }
    if let Some(p) = &r.pids {
        let dir = need(state, "pids")?;
        let v = if p.limit > 0 {
            p.limit.to_string()
        } else {
            "max".into()
        };
        write(dir, "pids.max", &v)?;
    }
    if let Some(b) = &r.block_io {
        let dir = need(state, "blkio")?;
        if let Some(w) = b.weight {
            let file = if dir.join("blkio.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            write(dir, file, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight {
            write(dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in &b.weight_device {
            if let Some(w) = d.weight {
                write(
                    dir,
                    "blkio.weight_device",
                    &format!("{}:{} {w}", d.major, d.minor),
                )?;
            }
        }
        throttle(
            dir,
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        )?;
        throttle(
            dir,
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        )?;
        throttle(
            dir,
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        )?;
        throttle(
            dir,
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        )?;
    }
    if !r.hugepage_limits.is_empty() && state.unified_dir("hugetlb").is_none() {
        let dir = need(state, "hugetlb")?;
        for h in &r.hugepage_limits {
            write(
                dir,
                &format!("hugetlb.{}.limit_in_bytes", h.page_size),
                &h.limit.to_string(),
            )?;
        }
    }
    if !r.devices.is_empty() {
        if let Some(dir) = state.v1_dir("devices") {
            for rule in &r.devices {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(dir, file, &device_rule(rule))?;
            }
        }
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    super::wait_for_freezer(dir, || {
        write(dir, "freezer.state", want)?;
        Ok(read(dir, "freezer.state")?.trim() == want)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Cpu, Memory, Pids};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn fake(dir: &Path, controllers: &[&str]) -> CgroupState {
        let mut v1 = BTreeMap::new();
        for c in controllers {
            let d = dir.join(c);
            std::fs::create_dir_all(&d).unwrap();
            v1.insert(c.to_string(), d);
        }
        CgroupState {
            v1,
            ..CgroupState::default()
        }
    }

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("berth-v1-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn limits_land_in_the_v1_files() {
        let dir = tmp("limits");
        let s = fake(&dir, &["memory", "cpu", "pids", "devices"]);
        let r = Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                reservation: Some(32 << 20),
                ..Memory::default()
            }),
            cpu: Some(Cpu {
                shares: Some(512),
                quota: Some(50_000),
                period: Some(100_000),
                ..Cpu::default()
            }),
            pids: Some(Pids { limit: 0 }),
            devices: vec![
                DeviceRule {
                    allow: false,
                    access: Some("rwm".into()),
                    ..DeviceRule::default()
                },
                DeviceRule {
                    allow: true,
                    kind: Some("c".into()),
                    major: Some(1),
                    minor: Some(3),
                    access: Some("rwm".into()),
                },
            ],
            ..Resources::default()
        };
        apply(&s, &r).unwrap();
        let rd = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(rd("memory/memory.limit_in_bytes"), "67108864");
        assert_eq!(rd("memory/memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(rd("cpu/cpu.shares"), "512");
        assert_eq!(rd("cpu/cpu.cfs_quota_us"), "50000");
        assert_eq!(rd("pids/pids.max"), "max");
        assert_eq!(rd("devices/devices.allow"), "c 1:3 rwm");
        assert_eq!(rd("devices/devices.deny"), "a");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_controller_is_a_clear_error() {
        let dir = tmp("missing");
        let s = fake(&dir, &["memory"]);
        let r = Resources {
            pids: Some(Pids { limit: 5 }),
            ..Resources::default()
        };
        let err = apply(&s, &r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the pids controller is not supported by this machine's cgroups"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn device_rules_format_like_the_kernel_expects() {
        let r = DeviceRule {
            allow: true,
            kind: Some("b".into()),
            major: Some(8),
            minor: None,
            access: Some("r".into()),
        };
        assert_eq!(device_rule(&r), "b 8:* r");
    }
}
