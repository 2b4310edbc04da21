//! A minimal ISO 9660 reader: the primary volume descriptor, directory records, Rock Ridge
//! `NM` names (with SUSP continuation areas), and file extraction. `location.rs` uses it
//! to find and copy an installer's kernel and initrd, without mounting anything.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{FIRST_DESCRIPTOR, FLAG_DIRECTORY, SECTOR};

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an ISO 9660 image (no primary volume descriptor)")]
    NotIso { path: PathBuf },
    #[error("{path}: corrupt directory {dir}")]
    Corrupt { path: PathBuf, dir: String },
    #[error("write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A file or directory on the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoEntry {
    /// The name as the guest's kernel shows it: the Rock Ridge name when there is one, else
    /// the ISO 9660 identifier without its `;1` version and trailing dot, lower-cased.
    pub name: String,
    pub extent: u32,
    pub size: u32,
    pub is_dir: bool,
}

/// An open ISO 9660 image.
#[derive(Debug)]
pub struct IsoReader {
    path: PathBuf,
    file: File,
    root: IsoEntry,
    volume_id: String,
}

/// Directory records never nest deeper than this on a sane image.
const MAX_DEPTH: usize = 64;

impl IsoReader {
    pub fn open(path: &Path) -> Result<Self, IsoError> {
        let io_err = |source| IsoError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // Volume descriptors from sector 16 until the terminator (type 255).
        for n in 0..32 {
            let mut vd = [0u8; SECTOR as usize];
            match file.read_exact_at(&mut vd, (FIRST_DESCRIPTOR + n) * SECTOR) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io_err(e)),
            }
            if &vd[1..6] != b"CD001" || vd[0] == 255 {
                break;
            }
            if vd[0] == 1 {
                let root = parse_record(&vd[156..190]).ok_or_else(|| IsoError::NotIso {
                    path: path.to_path_buf(),
                })?;
                let volume_id = String::from_utf8_lossy(&vd[40..72]).trim_end().to_string();
                return Ok(Self {
                    path: path.to_path_buf(),
                    file,
                    root: IsoEntry {
                        name: String::new(),
                        ..root.entry
                    },
                    volume_id,
                });
            }
        }
        Err(IsoError::NotIso {
            path: path.to_path_buf(),
        })
    }

    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }

    pub fn root(&self) -> &IsoEntry {
        &self.root
    }

    /// The entries of directory `dir`, without `.` and `..`.
    pub fn read_dir(&self, dir: &IsoEntry) -> Result<Vec<IsoEntry>, IsoError> {
        let corrupt = || IsoError::Corrupt {
            path: self.path.clone(),
            dir: dir.name.clone(),
        };
        // Directories are small; cap what a corrupt size could make us read.
        if !dir.is_dir || dir.size > 16 << 20 {
            return Err(corrupt());
        }
        let mut data = vec![0u8; dir.size as usize];
        self.file
            .read_exact_at(&mut data, u64::from(dir.extent) * SECTOR)
            .map_err(|source| IsoError::Io {
                path: self.path.clone(),
                source,
            })?;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            let len = data[pos] as usize;
            if len == 0 {
                // Records never cross a sector boundary: the rest of this sector is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let rec = data.get(pos..pos + len).ok_or_else(corrupt)?;
            pos += len;
            let parsed = parse_record(rec).ok_or_else(corrupt)?;
            if parsed.special {
                continue;
            }
            let mut entry = parsed.entry;
            if let Some(name) = self.rock_ridge_name(parsed.system_use)? {
                entry.name = name;
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Looks up a `/`-separated path. Rock Ridge names match exactly; plain ISO 9660 names
    /// (upper-case on disc) match regardless of case.
    pub fn find(&self, path: &str) -> Result<Option<IsoEntry>, IsoError> {
        let mut cur = self.root.clone();
        for (depth, part) in path.split('/').filter(|p| !p.is_empty()).enumerate() {
            if depth >= MAX_DEPTH || !cur.is_dir {
                return Ok(None);
            }
            let entries = self.read_dir(&cur)?;
            let hit = entries
                .iter()
                .find(|e| e.name == part)
                .or_else(|| entries.iter().find(|e| e.name.eq_ignore_ascii_case(part)));
            match hit {
                Some(e) => cur = e.clone(),
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Copies file `entry` to `dest` (created or truncated).
    pub fn extract(&self, entry: &IsoEntry, dest: &Path) -> Result<(), IsoError> {
        let mut src = &self.file;
        src.seek(SeekFrom::Start(u64::from(entry.extent) * SECTOR))
            .map_err(|source| IsoError::Io {
                path: self.path.clone(),
                source,
            })?;
        let write_err = |source| IsoError::Write {
            path: dest.to_path_buf(),
            source,
        };
        let mut out = File::create(dest).map_err(write_err)?;
        let copied =
            io::copy(&mut src.take(u64::from(entry.size)), &mut out).map_err(|source| {
                IsoError::Io {
                    path: self.path.clone(),
                    source,
                }
            })?;
        if copied != u64::from(entry.size) {
            return Err(IsoError::Io {
                path: self.path.clone(),
                source: io::ErrorKind::UnexpectedEof.into(),
            });
        }
        out.flush().map_err(write_err)?;
        out.sync_all().map_err(write_err)
    }

    /// The `NM` (alternate name) of a record's System Use area, following `CE`
    /// continuation areas (SUSP 5.1) a few times at most.
    fn rock_ridge_name(&self, system_use: &[u8]) -> Result<Option<String>, IsoError> {
        let mut name: Option<Vec<u8>> = None;
        let mut area = system_use.to_vec();
        for _ in 0..8 {
            let mut next = None;
            let mut p = 0usize;
            while p + 4 <= area.len() {
                let (sig, len) = (&area[p..p + 2], area[p + 2] as usize);
                if len < 4 || p + len > area.len() {
                    break;
                }
                let body = &area[p + 4..p + len];
                match sig {
                    b"NM" if !body.is_empty() => {
                        // Flags: bit 0 CONTINUE (the name goes on in the next NM); bits 1-2
                        // name "." or ".."; we only need ordinary names.
                        let flags = body[0];
                        if flags & 0x06 == 0 {
                            name.get_or_insert_with(Vec::new)
                                .extend_from_slice(&body[1..]);
                        }
                    }
                    b"CE" if body.len() >= 24 => {
                        let block = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes"));
                        let offset = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
                        let length = u32::from_le_bytes(body[16..20].try_into().expect("4 bytes"));
                        next = Some((block, offset, length.min(SECTOR as u32)));
                    }
                    b"ST" => break,
                    _ => {}
                }
                p += len;
            }
            match next {
                Some((block, offset, length)) => {
                    let mut buf = vec![0u8; length as usize];
                    self.file
                        .read_exact_at(&mut buf, u64::from(block) * SECTOR + u64::from(offset))
                        .map_err(|source| IsoError::Io {
                            path: self.path.clone(),
                            source,
                        })?;
                    area = buf;
                }
                None => break,
            }
        }
        Ok(name.map(|n| String::from_utf8_lossy(&n).into_owned()))
    }
}

struct Record<'a> {
    entry: IsoEntry,
    /// `.` or `..`.
    special: bool,
    system_use: &'a [u8],
}

/// Parses one directory record (ECMA-119 9.1).
fn parse_record(rec: &[u8]) -> Option<Record<'_>> {
    if rec.len() < 34 {
        return None;
    }
    let extent = u32::from_le_bytes(rec[2..6].try_into().ok()?);
    let size = u32::from_le_bytes(rec[10..14].try_into().ok()?);
    let flags = rec[25];
    let name_len = rec[32] as usize;
    let ident = rec.get(33..33 + name_len)?;
    let special = name_len == 1 && (ident[0] == 0 || ident[0] == 1);
    // The identifier is padded to an even record offset; the System Use area follows.
    let su_start = 33 + name_len + usize::from(name_len & 1 == 0);
    let system_use = rec.get(su_start..).unwrap_or_default();
    let mut name = String::from_utf8_lossy(ident).into_owned();
    if let Some(i) = name.find(';') {
        name.truncate(i);
    }
    if name.ends_with('.') {
        name.pop();
    }
    Some(Record {
        entry: IsoEntry {
            name: name.to_ascii_lowercase(),
            extent,
            size,
            is_dir: flags & FLAG_DIRECTORY != 0,
        },
        special,
        system_use,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_lose_version_and_dot() {
        let mut rec = vec![0u8; 34 + 12];
        rec[0] = rec.len() as u8;
        rec[32] = 11;
        rec[33..44].copy_from_slice(b"VMLINUZ.;1\0");
        rec[32] = 10;
        let r = parse_record(&rec).unwrap();
        assert_eq!(r.entry.name, "vmlinuz");
        assert!(!r.special);
    }

    #[test]
    fn not_an_iso_is_reported() {
        let dir = std::env::temp_dir().join(format!("berth-isoread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.iso");
        std::fs::write(&p, vec![0u8; 40 * 2048]).unwrap();
        let e = IsoReader::open(&p).unwrap_err();
        assert!(matches!(e, IsoError::NotIso { .. }), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
