//! Linux capabilities by name (capabilities(7)) and applying the spec's five sets
//! (`process.capabilities`) in the order the kernel requires. Used by the container init
//! and by `exec` after the user switch.

use std::io;

use crate::spec::Capabilities;
use crate::syscall;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("drop {name} from the bounding set")]
    Bounding {
        name: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("set capabilities")]
    Capset(#[source] io::Error),
    #[error("clear the ambient capability set")]
    Ambient(#[source] io::Error),
}

/// Every capability the kernel headers this runtime was written against know, by number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability number of a name (`CAP_` prefix optional, any case).
pub fn from_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// A capability set as a bit mask. Unknown names and capabilities the kernel lacks are
/// skipped, as runc does (it warns), so one config works across kernels.
pub fn mask(names: Option<&Vec<String>>, last: u32) -> u64 {
    names
        .into_iter()
        .flatten()
        .filter_map(|n| from_name(n))
        .filter(|&c| c <= last)
        .fold(0, |m, c| m | (1 << c))
}

/// The five sets as masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    pub fn from_spec(caps: Option<&Capabilities>) -> Self {
        let last = last_cap();
        let Some(c) = caps else {
            return Self::default();
        };
        Self {
            bounding: mask(c.bounding.as_ref(), last),
            effective: mask(c.effective.as_ref(), last),
            permitted: mask(c.permitted.as_ref(), last),
            inheritable: mask(c.inheritable.as_ref(), last),
            ambient: mask(c.ambient.as_ref(), last),
        }
    }

    /// Ambient capabilities must be both permitted and inheritable (capabilities(7)); the
    /// others are skipped rather than failing, as runc does.
    pub fn effective_ambient(&self) -> u64 {
        self.ambient & self.permitted & self.inheritable
    }
}

/// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so it runs before
/// the user switch.
pub fn apply_bounding(sets: &CapSets) -> Result<(), CapsError> {
    for cap in 0..=last_cap() {
        if sets.bounding & (1 << cap) == 0 {
            match syscall::capbset_drop(cap) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(source) => {
                    return Err(CapsError::Bounding {
                        name: NAMES.get(cap as usize).copied().unwrap_or("CAP_UNKNOWN"),
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient, after the user switch.
pub fn apply_sets(sets: &CapSets) -> Result<(), CapsError> {
    syscall::capset(sets.effective, sets.permitted, sets.inheritable).map_err(CapsError::Capset)?;
    syscall::ambient_clear_all().map_err(CapsError::Ambient)?;
    let ambient = sets.effective_ambient();
    for cap in 0..64 {
        if ambient & (1 << cap) != 0 {
            let _ = syscall::ambient_raise(cap);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix() {
        assert_eq!(from_name("CAP_CHOWN"), Some(0));
        assert_eq!(from_name("net_admin"), Some(12));
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(from_name("CAP_NOPE"), None);
    }

    #[test]
    fn unknown_and_too_new_capabilities_are_skipped() {
        let names = vec!["CAP_KILL".to_string(), "CAP_BOGUS".into(), "CAP_BPF".into()];
        assert_eq!(mask(Some(&names), 38), 1 << 5);
        assert_eq!(mask(Some(&names), 40), (1 << 5) | (1 << 39));
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let sets = CapSets {
            permitted: 0b111,
            inheritable: 0b010,
            ambient: 0b011,
            ..CapSets::default()
        };
        assert_eq!(sets.effective_ambient(), 0b010);
    }
}
