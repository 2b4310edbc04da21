//! Resource usage in the shape `runc events --stats` prints (`libcontainer/cgroups/stats.go`
//! as JSON): cpu, memory, pids, hugetlb, with blkio left empty.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{read, CgroupState};

fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat) as a map.
fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn limit_value(dir: &Path, file: &str) -> u64 {
    match read(dir, file) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// The stats object (`data` of a stats event).
pub fn stats(cg: &CgroupState) -> Value {
    let mut data = Map::new();
    if cg.is_unified() {
        let dir = cg.unified.as_deref().expect("unified checked");
        let cpu = flat_keyed(dir, "cpu.stat");
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        data.insert(
            "cpu".into(),
            json!({
                "usage": {"total": g("usage_usec") * 1000, "kernel": g("system_usec") * 1000,
                          "user": g("user_usec") * 1000},
                "throttling": {"periods": g("nr_periods"), "throttled_periods": g("nr_throttled"),
                               "throttled_time": g("throttled_usec") * 1000},
            }),
        );
        let raw = flat_keyed(dir, "memory.stat");
        data.insert(
            "memory".into(),
            json!({
                "usage": {"usage": num(dir, "memory.current"), "max": num(dir, "memory.peak"),
                          "limit": limit_value(dir, "memory.max"), "failcnt": 0},
                "swap": {"usage": num(dir, "memory.swap.current"),
                         "limit": limit_value(dir, "memory.swap.max")},
                "raw": raw,
            }),
        );
        data.insert(
            "pids".into(),
            json!({"current": num(dir, "pids.current"), "limit": limit_value(dir, "pids.max")}),
        );
    } else {
        if let Some(dir) = cg.v1_dir("cpuacct") {
            let percpu: Vec<u64> = read(dir, "cpuacct.usage_percpu")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let st = flat_keyed(dir, "cpuacct.stat");
            // USER_HZ ticks to nanoseconds.
            let tick = 10_000_000;
            let throttling = cg
                .v1_dir("cpu")
                .map(|d| flat_keyed(d, "cpu.stat"))
                .unwrap_or_default();
            let t = |k: &str| throttling.get(k).copied().unwrap_or(0);
            data.insert(
                "cpu".into(),
                json!({
                    "usage": {"total": num(dir, "cpuacct.usage"), "percpu": percpu,
                              "kernel": st.get("system").copied().unwrap_or(0) * tick,
                              "user": st.get("user").copied().unwrap_or(0) * tick},
                    "throttling": {"periods": t("nr_periods"), "throttled_periods": t("nr_throttled"),
                                   "throttled_time": t("throttled_time")},
                }),
            );
        }
        if let Some(dir) = cg.v1_dir("memory") {
            let entry = |prefix: &str| {
                json!({"usage": num(dir, &format!("{prefix}.usage_in_bytes")),
                       "max": num(dir, &format!("{prefix}.max_usage_in_bytes")),
                       "limit": num(dir, &format!("{prefix}.limit_in_bytes")),
                       "failcnt": num(dir, &format!("{prefix}.failcnt"))})
            };
            data.insert(
                "memory".into(),
                json!({
                    "usage": entry("memory"), "swap": entry("memory.memsw"),
                    "kernel": entry("memory.kmem"), "kernelTCP": entry("memory.kmem.tcp"),
                    "raw": flat_keyed(dir, "memory.stat"),
                }),
            );
        }
        if let Some(dir) = cg.v1_dir("pids") {
            data.insert(
                "pids".into(),
                json!({"current": num(dir, "pids.current"), "limit": limit_value(dir, "pids.max")}),
            );
        }
    }
    data.insert("blkio".into(), json!({}));
    let mut huge = Map::new();
    let hdir = cg.unified_dir("hugetlb").or_else(|| cg.v1_dir("hugetlb"));
    if let Some(dir) = hdir {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(size) = name.strip_prefix("hugetlb.").and_then(|r| {
                    r.strip_suffix(".current")
                        .or_else(|| r.strip_suffix(".usage_in_bytes"))
                }) else {
                    continue;
                };
                huge.insert(size.to_string(), json!({"usage": num(dir, &name)}));
            }
        }
    }
    data.insert("hugetlb".into(), Value::Object(huge));
    data.insert("intel_rdt".into(), json!({}));
    data.insert("network_interfaces".into(), Value::Null);
    Value::Object(data)
}
