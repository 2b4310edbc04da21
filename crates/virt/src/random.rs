//! Random identifiers: UUIDs for `-uuid`, MAC addresses, passwords (`cloudinit.rs`), all
//! from the kernel's random source.

use std::io;

/// Fills `buf` from getrandom(2).
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A version 4 UUID (RFC 9562 section 5.4) in its usual text form.
pub fn uuid_v4() -> io::Result<String> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// A MAC address in QEMU's locally administered range, 52:54:00:xx:xx:xx.
pub fn qemu_mac() -> io::Result<String> {
    let mut b = [0u8; 3];
    fill(&mut b)?;
    Ok(format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid_v4().unwrap());
    }

    #[test]
    fn mac_shape() {
        let m = qemu_mac().unwrap();
        assert!(m.starts_with("52:54:00:") && m.len() == 17, "{m}");
    }
}
