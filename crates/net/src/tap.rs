//! Persistent tap devices for VMs, made through `/dev/net/tun` (see the kernel's
//! Documentation/networking/tuntap.rst). A persistent tap outlives the descriptor that
//! created it, so QEMU can open it by name later (`-netdev tap,ifname=NAME,script=no`).

use std::fs::File;
use std::io;
use std::os::raw::{c_int, c_short};

use rustix::ioctl::{ioctl, opcode, IntegerSetter, Opcode, Updater};

const TUNSETIFF: Opcode = opcode::write::<c_int>(b'T', 202);
const TUNSETPERSIST: Opcode = opcode::write::<c_int>(b'T', 203);
const IFF_TAP: c_short = 0x0002;
const IFF_NO_PI: c_short = 0x1000;

#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("open /dev/net/tun")]
    OpenTun(#[source] io::Error),
    #[error("create tap device {name}")]
    Create {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("make tap device {name} persistent")]
    Persist {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags; padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: c_short,
    _pad: [u8; 22],
}

/// Creates the persistent tap `name` (IFF_TAP | IFF_NO_PI), down and unattached.
pub fn create_persistent(name: &str) -> Result<(), TapError> {
    let tun = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(TapError::OpenTun)?;
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    // Names are checked to be at most 15 bytes before they get here; keep the final NUL.
    let n = name.len().min(15);
    req.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: TUNSETIFF takes a pointer to a `struct ifreq`, which `IfReq` mirrors (name,
    // then flags, padded to the kernel's 40 bytes); `req` outlives the call.
    unsafe { ioctl(&tun, Updater::<TUNSETIFF, IfReq>::new(&mut req)) }.map_err(|e| {
        TapError::Create {
            name: name.to_string(),
            source: e.into(),
        }
    })?;
    // SAFETY: TUNSETPERSIST takes its argument as an integer (non-zero: persist).
    unsafe { ioctl(&tun, IntegerSetter::<TUNSETPERSIST>::new_usize(1)) }.map_err(|e| {
        TapError::Persist {
            name: name.to_string(),
            source: e.into(),
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_if_tun_h() {
        assert_eq!(TUNSETIFF as u64, 0x400454ca);
        assert_eq!(TUNSETPERSIST as u64, 0x400454cb);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }
}
