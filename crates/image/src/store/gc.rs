//! Garbage collection: removes blobs and unpacked layers that no image in the index
//! references. Runs under the collector lock, so no pull or load is between writing its
//! blobs and registering its image.

use std::collections::HashSet;
use std::fs;

use super::{remove_any, Store, StoreError};
use crate::digest::Digest;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    pub blobs_removed: u64,
    pub layers_removed: u64,
    pub bytes_freed: u64,
}

impl Store {
    /// Removes everything not reachable from the index. Layers are first renamed into
    /// staging, so a crash mid-way never leaves a half-deleted layer under its real name.
    pub fn collect_garbage(&self) -> Result<GcStats, StoreError> {
        let _lock = self.collector_lock()?;
        let index = self.index()?;
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut layers: HashSet<Digest> = HashSet::new();
        for img in index.images.values() {
            blobs.insert(img.id.clone());
            blobs.insert(img.manifest.clone());
            for rd in &img.repo_digests {
                if let Some(d) = rd.split_once('@').and_then(|(_, d)| d.parse().ok()) {
                    blobs.insert(d);
                }
            }
            for l in &img.layers {
                blobs.insert(l.digest.clone());
                layers.insert(l.diff_id.clone());
            }
        }
        let mut stats = GcStats::default();
        let blob_dir = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir)
            .map_err(super::io_err("read", &blob_dir))?
            .flatten()
        {
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_some_and(|d| blobs.contains(&d));
            if !keep {
                stats.bytes_freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(super::io_err("remove", &entry.path()))?;
                stats.blobs_removed += 1;
            }
        }
        let layer_dir = self.root.join("layers");
        for entry in fs::read_dir(&layer_dir)
            .map_err(super::io_err("read", &layer_dir))?
            .flatten()
        {
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_some_and(|d| layers.contains(&d));
            if !keep {
                let doomed = self.stage_path("gc");
                fs::rename(entry.path(), &doomed)
                    .map_err(super::io_err("rename", &entry.path()))?;
                remove_any(&doomed);
                stats.layers_removed += 1;
            }
        }
        // Partial downloads belong to interrupted pulls; none is running now (the
        // collector lock excludes them), and a later pull simply starts that blob afresh.
        let partial_dir = self.root.join("partial");
        for entry in fs::read_dir(&partial_dir).into_iter().flatten().flatten() {
            stats.bytes_freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = fs::remove_file(entry.path());
        }
        Ok(stats)
    }
}
