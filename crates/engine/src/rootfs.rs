//! The container's root filesystem: the image's unpacked layers stacked by overlayfs under
//! a per-container upper directory (`<container dir>/upper`, `work`, `merged`).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount overlay on {path}")]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unmount {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directories of one container's overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// An empty directory, the lower layer of an image with no layers.
    pub empty: PathBuf,
}

impl Overlay {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            empty: dir.join("empty"),
        }
    }

    /// Mounts the overlay. `lowers` are the image layers, bottom first (manifest order).
    pub fn mount(&self, lowers: &[PathBuf]) -> Result<(), RootfsError> {
        for d in [&self.upper, &self.work, &self.merged, &self.empty] {
            std::fs::create_dir_all(d).map_err(|source| RootfsError::Create {
                path: d.clone(),
                source,
            })?;
        }
        if self.is_mounted() {
            return Ok(());
        }
        // overlayfs lists the top-most lower layer first.
        let mut lower: Vec<String> = lowers.iter().rev().map(|p| escape(p)).collect();
        if lower.is_empty() {
            lower.push(escape(&self.empty));
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            escape(&self.upper),
            escape(&self.work)
        );
        // The mount data is limited to one page; with very many layers the paths do not
        // fit, and the relative-path form (the lowers' common parent as cwd) is used.
        let data = if data.len() < 4000 {
            data
        } else {
            let parent = lowers[0]
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            std::env::set_current_dir(&parent).map_err(|source| RootfsError::Mount {
                path: self.merged.clone(),
                source,
            })?;
            let rel: Vec<String> = lowers
                .iter()
                .rev()
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            format!(
                "lowerdir={},upperdir={},workdir={}",
                rel.join(":"),
                escape(&self.upper),
                escape(&self.work)
            )
        };
        let data = std::ffi::CString::new(data).map_err(|e| RootfsError::Mount {
            path: self.merged.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        rustix::mount::mount(
            "overlay",
            &self.merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .map_err(|e| RootfsError::Mount {
            path: self.merged.clone(),
            source: e.into(),
        })
    }

    pub fn is_mounted(&self) -> bool {
        is_mountpoint(&self.merged)
    }

    /// Unmounts the overlay if mounted (lazily when busy).
    pub fn unmount(&self) -> Result<(), RootfsError> {
        if !self.is_mounted() {
            return Ok(());
        }
        match rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::empty()) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::BUSY) => {
                rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH).map_err(
                    |e| RootfsError::Unmount {
                        path: self.merged.clone(),
                        source: e.into(),
                    },
                )
            }
            Err(e) => Err(RootfsError::Unmount {
                path: self.merged.clone(),
                source: e.into(),
            }),
        }
    }
}

/// overlayfs separates options with `,` and lowers with `:`; escape them in paths.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `path` is a mount point, from /proc/self/mountinfo.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| berth_runtime::cgroups::unescape_mountinfo(m) == target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators() {
        assert_eq!(escape(Path::new("/a,b:c")), "/a\\,b\\:c");
    }
}
