//! The few sysctls berth sets, through `/proc/sys` (read in the caller's network namespace).

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("set sysctl {path} to {value}")]
pub struct SysctlError {
    pub path: PathBuf,
    pub value: String,
    #[source]
    pub source: io::Error,
}

/// Writes `value` to `/proc/sys/<key>` (`net/ipv4/ip_forward`) unless it is already set.
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = PathBuf::from("/proc/sys").join(key);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|source| SysctlError {
        path,
        value: value.to_string(),
        source,
    })
}
