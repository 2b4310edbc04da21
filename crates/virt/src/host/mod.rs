//! Facts about the host that decide what a VM may get: memory (/proc/meminfo), CPUs, the
//! accelerator (`accel`) and the UEFI firmware (`firmware`).

pub mod accel;
pub mod firmware;

/// MemTotal from /proc/meminfo, in MiB.
pub fn memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total_kib(&text).map(|kib| kib / 1024)
}

fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Online CPUs.
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total() {
        let m = "MemTotal:       24576000 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_mem_total_kib(m), Some(24576000));
        assert_eq!(parse_mem_total_kib("nothing"), None);
    }
}
