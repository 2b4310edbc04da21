//! Writes a small single-directory ISO 9660 image with Rock Ridge names: the NoCloud seed
//! (`cloudinit.rs`) — volume id `cidata`, files `user-data`, `meta-data` and perhaps
//! `network-config`.
//!
//! Layout (sectors of 2048 bytes):
//! ```text
//! 0-15   system area (zeros)
//! 16     primary volume descriptor
//! 17     volume descriptor set terminator
//! 18     type L path table      19  type M path table
//! 20     the root directory     21… file data, each file from a sector boundary
//! ```
//! Plain ISO 9660 names are upper-case 8.3 (`USER_DAT.;1`); the real names travel in Rock
//! Ridge `NM` entries, announced by `SP` and `ER` in the root's `.` record (SUSP 5.3, 5.5).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{both_u16, both_u32, FIRST_DESCRIPTOR, FLAG_DIRECTORY, SECTOR};

#[derive(Debug, thiserror::Error)]
pub enum IsoWriteError {
    #[error("write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("iso file name {0:?} must be 1 to 64 bytes without '/' or NUL")]
    BadName(String),
    #[error("iso file name {0:?} appears twice")]
    DuplicateName(String),
    #[error("too many files for one directory sector ({0})")]
    TooManyFiles(usize),
    #[error("volume id {0:?} must be 1 to 32 bytes")]
    BadVolumeId(String),
}

/// One file to put in the image's root directory.
#[derive(Debug, Clone)]
pub struct IsoFile {
    pub name: String,
    pub data: Vec<u8>,
}

const ROOT_SECTOR: u32 = 20;
const FIRST_FILE_SECTOR: u32 = 21;
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DESCRIPTOR: &[u8] = b"ROCK RIDGE POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE: &[u8] = b"RRIP 1.09";

/// Writes `files` into a new image at `path` (via the caller's temp file + rename).
pub fn write_iso(path: &Path, volume_id: &str, files: &[IsoFile]) -> Result<(), IsoWriteError> {
    let image = build_image(volume_id, files, SystemTime::now())?;
    let io_err = |source| IsoWriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::create(path).map_err(io_err)?;
    f.write_all(&image).map_err(io_err)?;
    f.sync_all().map_err(io_err)
}

/// The image bytes.
pub fn build_image(
    volume_id: &str,
    files: &[IsoFile],
    now: SystemTime,
) -> Result<Vec<u8>, IsoWriteError> {
    if volume_id.is_empty() || volume_id.len() > 32 {
        return Err(IsoWriteError::BadVolumeId(volume_id.to_string()));
    }
    let mut names: Vec<String> = Vec::new();
    for f in files {
        if f.name.is_empty() || f.name.len() > 64 || f.name.contains(['/', '\0']) {
            return Err(IsoWriteError::BadName(f.name.clone()));
        }
        if names.contains(&f.name) {
            return Err(IsoWriteError::DuplicateName(f.name.clone()));
        }
        names.push(f.name.clone());
    }
    let stamp = Stamp::from(now);

    // Files in name order (ECMA-119 9.3 wants the directory sorted by identifier; the
    // identifiers are derived from the names, so sort by those).
    let mut order: Vec<(String, &IsoFile)> = Vec::new();
    for f in files {
        let ident = unique_identifier(&f.name, order.iter().map(|(i, _)| i.as_str()));
        order.push((ident, f));
    }
    order.sort_by(|a, b| a.0.cmp(&b.0));

    // Assign extents.
    let mut next = FIRST_FILE_SECTOR;
    let mut placed = Vec::new();
    for (ident, f) in &order {
        placed.push((ident.as_str(), *f, next));
        next += sectors(f.data.len() as u64);
    }
    let total_sectors = next;

    // The root directory: `.` (with SP, PX, ER), `..` (PX), then the files (PX, NM).
    let mut root = Vec::new();
    let mut dot_su = sp_entry();
    dot_su.extend(px_entry(0o040555, 2));
    dot_su.extend(er_entry());
    root.extend(dir_record(
        &[0],
        ROOT_SECTOR,
        SECTOR as u32,
        true,
        &stamp,
        &dot_su,
    ));
    root.extend(dir_record(
        &[1],
        ROOT_SECTOR,
        SECTOR as u32,
        true,
        &stamp,
        &px_entry(0o040555, 2),
    ));
    for (ident, f, extent) in &placed {
        let mut su = px_entry(0o100444, 1);
        su.extend(nm_entry(&f.name));
        root.extend(dir_record(
            ident.as_bytes(),
            *extent,
            f.data.len() as u32,
            false,
            &stamp,
            &su,
        ));
    }
    if root.len() > SECTOR as usize {
        return Err(IsoWriteError::TooManyFiles(files.len()));
    }

    let mut img = vec![0u8; total_sectors as usize * SECTOR as usize];
    let at = |s: u32| s as usize * SECTOR as usize;
    let pvd = primary_descriptor(volume_id, total_sectors, &stamp);
    img[at(FIRST_DESCRIPTOR as u32)..at(FIRST_DESCRIPTOR as u32) + pvd.len()].copy_from_slice(&pvd);
    let term = at(FIRST_DESCRIPTOR as u32 + 1);
    img[term] = 255;
    img[term + 1..term + 6].copy_from_slice(b"CD001");
    img[term + 6] = 1;
    // Path tables: one entry, the root (ECMA-119 9.4).
    let l = at(18);
    img[l] = 1;
    img[l + 2..l + 6].copy_from_slice(&ROOT_SECTOR.to_le_bytes());
    img[l + 6..l + 8].copy_from_slice(&1u16.to_le_bytes());
    let m = at(19);
    img[m] = 1;
    img[m + 2..m + 6].copy_from_slice(&ROOT_SECTOR.to_be_bytes());
    img[m + 6..m + 8].copy_from_slice(&1u16.to_be_bytes());
    img[at(ROOT_SECTOR)..at(ROOT_SECTOR) + root.len()].copy_from_slice(&root);
    for (_, f, extent) in &placed {
        img[at(*extent)..at(*extent) + f.data.len()].copy_from_slice(&f.data);
    }
    Ok(img)
}

fn sectors(bytes: u64) -> u32 {
    bytes.div_ceil(SECTOR).max(1) as u32
}

/// An ISO 9660 level 1 identifier for `name`: up to 8 d-characters, a dot, up to 3, `;1`;
/// made unique against `taken` by a numeric suffix.
fn unique_identifier<'a>(name: &str, taken: impl Iterator<Item = &'a str> + Clone) -> String {
    let d_chars = |s: &str, max: usize| -> String {
        s.chars()
            .map(|c| match c.to_ascii_uppercase() {
                c @ ('A'..='Z' | '0'..='9') => c,
                _ => '_',
            })
            .take(max)
            .collect()
    };
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, e),
        _ => (name, ""),
    };
    let ext = d_chars(ext, 3);
    let base = d_chars(stem, 8);
    for n in 0u32.. {
        let stem = if n == 0 {
            base.clone()
        } else {
            let suffix = n.to_string();
            let keep = 8usize.saturating_sub(suffix.len()).min(base.len());
            format!("{}{suffix}", &base[..keep])
        };
        let ident = format!("{stem}.{ext};1");
        if !taken.clone().any(|t| t == ident) {
            return ident;
        }
    }
    unreachable!("u32 suffixes run out only after 4 billion files")
}

/// A directory record (ECMA-119 9.1) with a System Use area.
fn dir_record(
    ident: &[u8],
    extent: u32,
    size: u32,
    dir: bool,
    stamp: &Stamp,
    system_use: &[u8],
) -> Vec<u8> {
    let pad = usize::from(ident.len() & 1 == 0);
    let len = 33 + ident.len() + pad + system_use.len();
    let len = len + len % 2;
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    r[2..10].copy_from_slice(&both_u32(extent));
    r[10..18].copy_from_slice(&both_u32(size));
    r[18..25].copy_from_slice(&stamp.record());
    r[25] = if dir { FLAG_DIRECTORY } else { 0 };
    r[28..32].copy_from_slice(&both_u16(1));
    r[32] = ident.len() as u8;
    r[33..33 + ident.len()].copy_from_slice(ident);
    let su = 33 + ident.len() + pad;
    r[su..su + system_use.len()].copy_from_slice(system_use);
    r
}

/// SUSP `SP`: "this directory hierarchy uses SUSP", check bytes BE EF, skip 0.
fn sp_entry() -> Vec<u8> {
    vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]
}

/// SUSP `ER`: names the extension in use (RRIP 1.09).
fn er_entry() -> Vec<u8> {
    let mut e = vec![
        b'E',
        b'R',
        (8 + ER_ID.len() + ER_DESCRIPTOR.len() + ER_SOURCE.len()) as u8,
        1,
        ER_ID.len() as u8,
        ER_DESCRIPTOR.len() as u8,
        ER_SOURCE.len() as u8,
        1,
    ];
    e.extend_from_slice(ER_ID);
    e.extend_from_slice(ER_DESCRIPTOR);
    e.extend_from_slice(ER_SOURCE);
    e
}

/// RRIP `PX`: POSIX mode, link count, uid 0, gid 0 (the 36-byte RRIP 1.09 form).
fn px_entry(mode: u32, links: u32) -> Vec<u8> {
    let mut e = vec![b'P', b'X', 36, 1];
    e.extend(both_u32(mode));
    e.extend(both_u32(links));
    e.extend(both_u32(0));
    e.extend(both_u32(0));
    e
}

/// RRIP `NM`: the POSIX name.
fn nm_entry(name: &str) -> Vec<u8> {
    let mut e = vec![b'N', b'M', (5 + name.len()) as u8, 1, 0];
    e.extend_from_slice(name.as_bytes());
    e
}

/// The primary volume descriptor (ECMA-119 8.4).
fn primary_descriptor(volume_id: &str, total_sectors: u32, stamp: &Stamp) -> Vec<u8> {
    let mut d = vec![0u8; SECTOR as usize];
    d[0] = 1;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    let pad = |field: &mut [u8], text: &[u8]| {
        field.fill(b' ');
        field[..text.len()].copy_from_slice(text);
    };
    pad(&mut d[8..40], b"LINUX");
    pad(&mut d[40..72], volume_id.as_bytes());
    d[80..88].copy_from_slice(&both_u32(total_sectors));
    d[120..124].copy_from_slice(&both_u16(1));
    d[124..128].copy_from_slice(&both_u16(1));
    d[128..132].copy_from_slice(&both_u16(SECTOR as u16));
    d[132..140].copy_from_slice(&both_u32(10)); // path table: one 10-byte entry
    d[140..144].copy_from_slice(&18u32.to_le_bytes());
    d[148..152].copy_from_slice(&19u32.to_be_bytes());
    let root = dir_record(&[0], ROOT_SECTOR, SECTOR as u32, true, stamp, &[]);
    d[156..190].copy_from_slice(&root);
    pad(&mut d[190..318], b"");
    pad(&mut d[318..446], b"");
    pad(&mut d[446..574], b"");
    pad(&mut d[574..702], b"BERTH");
    pad(&mut d[702..813], b"");
    let long = stamp.long();
    d[813..830].copy_from_slice(&long);
    d[830..847].copy_from_slice(&long);
    d[847..863].fill(b'0');
    d[864..880].fill(b'0');
    d[881] = 1;
    d
}

/// A UTC time in the two encodings ISO 9660 uses.
struct Stamp {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl From<SystemTime> for Stamp {
    fn from(t: SystemTime) -> Self {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = (secs / 86400, secs % 86400);
        let (year, month, day) = civil_from_days(days as i64);
        Stamp {
            year: year as u32,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

impl Stamp {
    /// 7-byte directory record time (ECMA-119 9.1.5), offset 0 from GMT.
    fn record(&self) -> [u8; 7] {
        [
            (self.year.saturating_sub(1900)).min(255) as u8,
            self.month as u8,
            self.day as u8,
            self.hour as u8,
            self.minute as u8,
            self.second as u8,
            0,
        ]
    }

    /// 17-byte volume descriptor time (ECMA-119 8.4.26.1): `YYYYMMDDHHMMSScc` + offset.
    fn long(&self) -> [u8; 17] {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        let mut b = [0u8; 17];
        b[..16].copy_from_slice(&s.as_bytes()[..16]);
        b
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::super::read::IsoReader;
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-isow-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn seed_round_trips_through_the_reader() {
        let dir = tmp("roundtrip");
        let p = dir.join("seed.iso");
        let big = vec![b'x'; 5000];
        write_iso(
            &p,
            "cidata",
            &[
                IsoFile {
                    name: "user-data".into(),
                    data: b"#cloud-config\nhostname: a\n".to_vec(),
                },
                IsoFile {
                    name: "meta-data".into(),
                    data: b"instance-id: i-1\n".to_vec(),
                },
                IsoFile {
                    name: "network-config".into(),
                    data: big.clone(),
                },
            ],
        )
        .unwrap();
        let r = IsoReader::open(&p).unwrap();
        assert_eq!(r.volume_id(), "cidata");
        let mut names: Vec<String> = r
            .read_dir(r.root())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names, ["meta-data", "network-config", "user-data"]);
        let e = r.find("user-data").unwrap().unwrap();
        let out = dir.join("ud");
        r.extract(&e, &out).unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"#cloud-config\nhostname: a\n"
        );
        let e = r.find("network-config").unwrap().unwrap();
        r.extract(&e, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), big);
        assert!(r.find("nope").unwrap().is_none());
        // Size is a whole number of sectors and covers the last file.
        let len = std::fs::metadata(&p).unwrap().len();
        assert_eq!(len % 2048, 0);
        assert_eq!(len, (21 + 1 + 1 + 3) * 2048);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn identifiers_are_8_3_and_unique() {
        let a = unique_identifier("user-data", [].into_iter());
        assert_eq!(a, "USER_DAT.;1");
        let taken = [a.as_str()];
        assert_eq!(
            unique_identifier("user-data-2", taken.iter().copied()),
            "USER_DA1.;1"
        );
        assert_eq!(
            unique_identifier("kernel.img", [].into_iter()),
            "KERNEL.IMG;1"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let f = |n: &str| IsoFile {
            name: n.into(),
            data: vec![],
        };
        assert!(matches!(
            build_image("cidata", &[f("a/b")], UNIX_EPOCH),
            Err(IsoWriteError::BadName(_))
        ));
        assert!(matches!(
            build_image("cidata", &[f("a"), f("a")], UNIX_EPOCH),
            Err(IsoWriteError::DuplicateName(_))
        ));
        assert!(matches!(
            build_image("", &[], UNIX_EPOCH),
            Err(IsoWriteError::BadVolumeId(_))
        ));
    }

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
