//! Linux capabilities as Docker grants them: its default set, `--cap-add`/`--cap-drop`
//! (with `ALL`), and everything for `--privileged`.

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel defines, in kernel order (the index is the number).
pub use berth_runtime::caps::NAMES as ALL_CAPS;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (Docker's order: drop ALL first,
/// then add, then drop the rest).
/// Every capability berth itself may grant: ALL_CAPS (in kernel order, so the index is
/// the capability number) limited to this process's bounding set. A root that lacks some
/// (here CAP_SYS_RESOURCE) cannot give them to a container either.
pub fn grantable() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

pub fn capabilities(config: &crate::state::ContainerConfig) -> Vec<String> {
    if config.privileged {
        return grantable();
    }
    let drops: Vec<String> = config.cap_drop.iter().map(|c| normalize_cap(c)).collect();
    let adds: Vec<String> = config.cap_add.iter().map(|c| normalize_cap(c)).collect();
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        strings(DEFAULT_CAPS)
    };
    if adds.iter().any(|c| c == "CAP_ALL") {
        caps = grantable();
    }
    for a in adds.iter().filter(|c| *c != "CAP_ALL") {
        if !caps.contains(a) {
            caps.push(a.clone());
        }
    }
    caps.retain(|c| !drops.contains(c));
    caps
}

/// Whether a capability name is one the kernel knows.
pub fn known_cap(name: &str) -> bool {
    let n = normalize_cap(name);
    n == "CAP_ALL" || ALL_CAPS.contains(&n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ContainerConfig;

    #[test]
    fn cap_add_and_drop_follow_docker() {
        let mut c = ContainerConfig::default();
        assert_eq!(capabilities(&c).len(), DEFAULT_CAPS.len());
        c.cap_add = vec!["net_admin".into()];
        c.cap_drop = vec!["CAP_CHOWN".into()];
        let caps = capabilities(&c);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        c.cap_drop = vec!["ALL".into()];
        c.cap_add = vec!["KILL".into()];
        assert_eq!(capabilities(&c), vec!["CAP_KILL".to_string()]);
        c.privileged = true;
        assert_eq!(capabilities(&c), grantable());
        assert!(grantable().len() <= ALL_CAPS.len());
        assert!(known_cap("sys_admin") && !known_cap("CAP_FLY"));
    }
}
