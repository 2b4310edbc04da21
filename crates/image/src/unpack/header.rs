//! Reading what an entry says about itself: owner, mode and mtime from its tar header,
//! overridden or completed by its PAX records (`mtime` with a fraction, `SCHILY.xattr.*`),
//! and the device number of a device node.
//!
//! The per-entry loop in `unpack/mod.rs` reads a [`Meta`] for every entry; `metadata`
//! applies it and `create` reads device numbers.

use std::io::{self, Read};

use rustix::fs::{self as rfs, Gid, Mode, Nsecs, Timespec, Timestamps, Uid};

const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// One xattr from a PAX `SCHILY.xattr.<name>` record.
pub(super) type Xattr = (Vec<u8>, Vec<u8>);

pub(super) struct Meta {
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) mode: Mode,
    pub(super) mtime: Timespec,
}

impl Meta {
    pub(super) fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

pub(super) fn read_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    xattrs: &mut Vec<Xattr>,
) -> io::Result<Meta> {
    let header = entry.header();
    // The tar crate already applied PAX `uid`/`gid` (ids above 2097151) to the header.
    let uid = id(header.uid()?, "uid")?;
    let gid = id(header.gid()?, "gid")?;
    let mode = Mode::from_raw_mode(header.mode()? & 0o7777);
    let secs = i64::try_from(header.mtime()?).map_err(|_| invalid("mtime out of range"))?;
    let mut mtime = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    xattrs.clear();
    if let Some(pax) = entry.pax_extensions()? {
        for record in pax {
            let record = record?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
            } else if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes())
                    .ok_or_else(|| invalid("invalid pax mtime"))?;
            }
        }
    }
    Ok(Meta {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
        mode,
        mtime,
    })
}

fn id(raw: u64, what: &str) -> io::Result<u32> {
    // u32::MAX is -1, which chown reads as "leave unchanged".
    u32::try_from(raw)
        .ok()
        .filter(|&id| id != u32::MAX)
        .ok_or_else(|| invalid(&format!("{what} {raw} out of range")))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Parses a PAX time, `[-]seconds[.fraction]` (POSIX pax "keywords": mtime). Digits past
/// nanoseconds are truncated.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let (negative, value) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (secs, frac) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if secs.is_empty() || !secs.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut tv_sec: i64 = 0;
    for &digit in secs {
        tv_sec = tv_sec
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
    }
    let mut tv_nsec: Nsecs = 0;
    let mut digits = frac.iter();
    for _ in 0..9 {
        tv_nsec = tv_nsec * 10 + digits.next().map_or(0, |&digit| Nsecs::from(digit - b'0'));
    }
    if negative {
        // -1.25 s is 2 s before the epoch plus 0.75 s: tv_nsec stays non-negative.
        tv_sec = -tv_sec;
        if tv_nsec != 0 {
            tv_sec -= 1;
            tv_nsec = 1_000_000_000 - tv_nsec;
        }
    }
    Some(Timespec { tv_sec, tv_nsec })
}

pub(super) fn device_number<R: Read>(entry: &tar::Entry<'_, R>) -> io::Result<rfs::Dev> {
    let header = entry.header();
    // Pre-POSIX headers have no device fields.
    let major = header.device_major()?.unwrap_or(0);
    let minor = header.device_minor()?.unwrap_or(0);
    Ok(rfs::makedev(major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    use crate::unpack::test_support::{lstat, unpack, Layer, TempDir};

    #[test]
    fn pax_fractional_mtime_is_kept() {
        let dest = TempDir::new();
        let mut layer = Layer::new();
        layer.pax(&[("mtime", b"1234567890.5")]);
        layer.file(b"f", b"");
        unpack(&layer.finish(), dest.path()).unwrap();
        let meta = lstat(&dest.path().join("f"));
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_234_567_890, 500_000_000)
        );
    }

    #[test]
    fn pax_time_parses_fraction_and_sign() {
        let parse = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(parse("12"), Some((12, 0)));
        assert_eq!(parse("1.123456789999"), Some((1, 123_456_789)));
        assert_eq!(parse("1."), Some((1, 0)));
        assert_eq!(parse("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse("-3"), Some((-3, 0)));
        for bad in ["", "-", ".5", "1.2.3", "1e3", "+1", "99999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
