//! Disk images through `qemu-img` (Debian's qemu-utils), run with an argv: create, inspect,
//! resize, and qcow2 internal snapshots of images that no QEMU has open. Running VMs are
//! changed over QMP instead (`vm/disk.rs`, `vm/snapshot.rs`).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::args::ImageFormat;
use super::find_binary;

#[derive(Debug, thiserror::Error)]
pub enum ImgError {
    #[error("qemu-img is not installed (Debian: apt install qemu-utils)")]
    Missing,
    #[error("run qemu-img {op} {path}")]
    Spawn {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("qemu-img {op} {path}: {message}")]
    Failed {
        op: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("qemu-img info {path}: unreadable output")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: unsupported image format {format} (berth uses qcow2 and raw)")]
    UnsupportedFormat { path: PathBuf, format: String },
}

/// What `qemu-img info` says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// The size the guest sees, in bytes.
    pub virtual_size: u64,
    /// Bytes the image occupies on the host.
    pub actual_size: u64,
}

#[derive(Deserialize)]
struct RawInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "actual-size", default)]
    actual_size: u64,
}

/// An internal snapshot as `qemu-img snapshot -l` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImgSnapshot {
    pub name: String,
    /// Bytes of machine state saved with it (0 for a disk-only snapshot).
    pub vm_state_size: u64,
}

fn run(op: &'static str, path: &Path, args: &[OsString]) -> Result<String, ImgError> {
    let bin = find_binary("qemu-img").ok_or(ImgError::Missing)?;
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ImgError::Spawn {
            op,
            path: path.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(ImgError::Failed {
            op,
            path: path.to_path_buf(),
            message: last_error_line(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn argv(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// The last non-empty line of a tool's stderr, without its `qemu-img: ` prefix.
pub(crate) fn last_error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed without a message")
        .trim();
    let line = line.strip_prefix("qemu-img: ").unwrap_or(line);
    let line = line
        .strip_prefix("qemu-system-x86_64: ")
        .unwrap_or(line)
        .trim();
    line.to_string()
}

/// Creates `path` of `bytes` virtual size. qcow2 images are sparse by nature; a raw
/// image is sparse unless `preallocate`.
pub fn create(
    path: &Path,
    format: ImageFormat,
    bytes: u64,
    preallocate: bool,
) -> Result<(), ImgError> {
    let mut args = argv(&["create", "-q", "-f", format.as_str()]);
    if preallocate {
        args.extend(argv(&["-o", "preallocation=falloc"]));
    }
    args.push(path.into());
    args.push(bytes.to_string().into());
    run("create", path, &args).map(drop)
}

pub fn info(path: &Path) -> Result<ImageInfo, ImgError> {
    let mut args = argv(&["info", "--output=json", "-U"]);
    args.push(path.into());
    let out = run("info", path, &args)?;
    let raw: RawInfo = serde_json::from_str(&out).map_err(|source| ImgError::Malformed {
        path: path.to_path_buf(),
        source,
    })?;
    let format = match raw.format.as_str() {
        "qcow2" => ImageFormat::Qcow2,
        "raw" => ImageFormat::Raw,
        other => {
            return Err(ImgError::UnsupportedFormat {
                path: path.to_path_buf(),
                format: other.to_string(),
            })
        }
    };
    Ok(ImageInfo {
        format,
        virtual_size: raw.virtual_size,
        actual_size: raw.actual_size,
    })
}

/// Grows (never shrinks: the caller checks) `path` to `bytes`.
pub fn resize(path: &Path, format: ImageFormat, bytes: u64) -> Result<(), ImgError> {
    let mut args = argv(&["resize", "-q", "-f", format.as_str()]);
    args.push(path.into());
    args.push(bytes.to_string().into());
    run("resize", path, &args).map(drop)
}

/// The snapshot operations of `qemu-img snapshot`.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotOp {
    Create,
    Apply,
    Delete,
}

pub fn snapshot(path: &Path, op: SnapshotOp, name: &str) -> Result<(), ImgError> {
    let flag = match op {
        SnapshotOp::Create => "-c",
        SnapshotOp::Apply => "-a",
        SnapshotOp::Delete => "-d",
    };
    let mut args = argv(&["snapshot", "-q", flag, name]);
    args.push(path.into());
    run("snapshot", path, &args).map(drop)
}

pub fn list_snapshots(path: &Path) -> Result<Vec<ImgSnapshot>, ImgError> {
    let mut args = argv(&["snapshot", "-l", "-U"]);
    args.push(path.into());
    let out = run("snapshot", path, &args)?;
    Ok(parse_snapshot_list(&out))
}

/// Parses the table `qemu-img snapshot -l` prints:
/// ```text
/// Snapshot list:
/// ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT
/// 1         clean                 0 B 2024-01-01 10:00:00 00:00:00.000          0
/// ```
fn parse_snapshot_list(out: &str) -> Vec<ImgSnapshot> {
    out.lines()
        .skip_while(|l| !l.starts_with("ID"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            let vm_state_size = parse_human_size(f[2], f[3]);
            Some(ImgSnapshot {
                name: f[1].to_string(),
                vm_state_size,
            })
        })
        .collect()
}

fn parse_human_size(number: &str, unit: &str) -> u64 {
    let n: f64 = number.parse().unwrap_or(0.0);
    let mult = match unit {
        "KiB" => 1u64 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => 1,
    };
    (n * mult as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_table_parses() {
        let out = "Snapshot list:\n\
ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n\
1         clean                 0 B 2024-01-01 10:00:00 00:00:00.000          0\n\
2         booted           35.1 MiB 2024-01-01 10:05:00 00:00:07.123          0\n";
        let s = parse_snapshot_list(out);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "clean");
        assert_eq!(s[0].vm_state_size, 0);
        assert_eq!(s[1].name, "booted");
        assert!(s[1].vm_state_size > 35 << 20);
    }

    #[test]
    fn error_lines_lose_the_tool_prefix() {
        assert_eq!(
            last_error_line("qemu-img: x.qcow2: Could not open 'x': No such file\n\n"),
            "x.qcow2: Could not open 'x': No such file"
        );
    }
}
