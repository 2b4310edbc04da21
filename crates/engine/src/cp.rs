//! `berth cp`: copy files between a container's root filesystem and the host. Paths inside
//! the container are resolved as the container would see them, symlinks included, without
//! ever leaving its root (a link to `/etc` means the container's /etc, not the host's).

use std::path::{Component, Path, PathBuf};

use crate::state::Status;
use crate::{Engine, EngineError};

/// Joins `path` to `root`, resolving symlinks inside `root` (at most 40, as the kernel).
/// The last component need not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

/// Which side of a copy is the container's.
pub enum CopyDirection {
    FromContainer { path: String, host: PathBuf },
    ToContainer { host: PathBuf, path: String },
}

impl Engine {
    pub fn copy(&self, key: &str, direction: CopyDirection) -> Result<(), EngineError> {
        let id = self.containers.resolve(key)?;
        let (config, state) = self.load(&id)?;
        let overlay = self.overlay(&id);
        // A stopped container's filesystem is mounted for the copy only.
        let temporary =
            !matches!(state.status, Status::Running | Status::Paused) && !overlay.is_mounted();
        if temporary {
            self.prepare(&config)?;
        }
        let result = self.copy_mounted(&overlay.merged, direction);
        if temporary {
            let _ = overlay.unmount();
        }
        result
    }

    fn copy_mounted(&self, root: &Path, direction: CopyDirection) -> Result<(), EngineError> {
        let (from, to) = match direction {
            CopyDirection::FromContainer { path, host } => (resolve_in_root(root, &path), host),
            CopyDirection::ToContainer { host, path } => (host, resolve_in_root(root, &path)),
        };
        if std::fs::symlink_metadata(&from).is_err() {
            return Err(EngineError::Io {
                op: "copy",
                path: from,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(&from)
            .arg(&to)
            .status()
            .map_err(|source| EngineError::Io {
                op: "run cp for",
                path: from.clone(),
                source,
            })?;
        if !status.success() {
            return Err(EngineError::Io {
                op: "copy",
                path: from,
                source: std::io::Error::other(format!("cp exited with {status}")),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("berth-cp-{}", crate::id::new_id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(&root, "/link/passwd"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(&root, "/up/etc/shadow"),
            root.join("etc/shadow")
        );
        assert_eq!(resolve_in_root(&root, "../../x"), root.join("x"));
        let _ = std::fs::remove_dir_all(root);
    }
}
