//! `index.json`: what images the store holds and which tags point at them. Written whole to
//! a staging file, fsynced and renamed over the old one, so readers never see half of it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{io_err, Store, StoreError};
use crate::digest::Digest;
use crate::reference::Reference;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageIndex {
    /// Images by id (the config digest).
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Full references (`docker.io/library/nginx:latest`) to image ids.
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// `name@sha256:...` of the manifest (or index) each registry served it as.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRecord>,
    #[serde(default)]
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    /// Unix seconds when the image entered the store.
    pub added: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob as stored and pushed (compressed or not).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The digest of the uncompressed tar: names the unpacked directory.
    pub diff_id: Digest,
    /// Bytes of file data once unpacked.
    pub unpacked_size: u64,
}

impl ImageRecord {
    /// The size `berth images` shows: unpacked bytes, as Docker does.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked_size).sum()
    }
}

impl ImageIndex {
    pub(super) fn load(path: &Path) -> Result<Self, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::MalformedIndex {
            path: path.to_path_buf(),
            source,
        })
    }

    pub(super) fn save(&self, path: &Path, store: &Store) -> Result<(), StoreError> {
        let (mut f, staged) = store.stage_file()?;
        let bytes = serde_json::to_vec_pretty(self).expect("the index always serializes");
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err("write", staged.path()))?;
        let src = staged.take();
        std::fs::rename(&src, path).map_err(io_err("rename", path))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Tags pointing at an image, as stored (full references).
    pub fn tags_of(&self, id: &Digest) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Adds (or refreshes) an image and points `tag` at it.
    pub fn insert(&mut self, record: ImageRecord, tag: Option<&Reference>) {
        let id = record.id.clone();
        match self.images.get_mut(&id) {
            Some(existing) => {
                for rd in record.repo_digests {
                    if !existing.repo_digests.contains(&rd) {
                        existing.repo_digests.push(rd);
                    }
                }
            }
            None => {
                self.images.insert(id.clone(), record);
            }
        }
        if let Some(t) = tag {
            self.tags.insert(t.to_string(), id);
        }
    }

    /// Finds an image the way `docker image inspect` does: a reference (`nginx`,
    /// `nginx:1`, `name@sha256:..`), a full id (`sha256:...`) or a unique id prefix.
    pub fn resolve(&self, name: &str) -> Option<&ImageRecord> {
        // A tag first (an image may be called `cafe`), then a full id or unique prefix.
        if let Ok(r) = name.parse::<Reference>() {
            if let Some(d) = &r.digest {
                let wanted = format!("{}@{d}", r.name());
                return self
                    .images
                    .values()
                    .find(|img| img.repo_digests.contains(&wanted) || img.manifest == *d);
            }
            if let Some(img) = self
                .tags
                .get(&r.to_string())
                .and_then(|id| self.images.get(id))
            {
                return Some(img);
            }
        }
        let id_like = name.strip_prefix("sha256:").unwrap_or(name);
        if id_like.len() >= 4 && id_like.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = self
                .images
                .values()
                .filter(|r| r.id.hex().starts_with(id_like));
            if let (Some(hit), None) = (hits.next(), hits.next()) {
                return Some(hit);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hex_start: &str) -> ImageRecord {
        let hex = format!("{hex_start}{}", "0".repeat(64 - hex_start.len()));
        ImageRecord {
            id: Digest::from_hex(&hex).unwrap(),
            manifest: Digest::of(hex.as_bytes()),
            manifest_media_type: String::new(),
            repo_digests: Vec::new(),
            layers: Vec::new(),
            created: None,
            os: "linux".into(),
            architecture: "amd64".into(),
            added: 0,
        }
    }

    #[test]
    fn a_tag_wins_over_an_id_prefix_that_looks_the_same() {
        let mut idx = ImageIndex::default();
        let tagged = record("1111");
        let other = record("cafe");
        idx.insert(tagged.clone(), Some(&"cafe".parse().unwrap()));
        idx.insert(other.clone(), None);
        assert_eq!(idx.resolve("cafe").unwrap().id, tagged.id);
        assert_eq!(idx.resolve("cafe0").unwrap().id, other.id);
        assert_eq!(idx.resolve(&other.id.to_string()).unwrap().id, other.id);
        assert!(idx.resolve("beef").is_none());
    }
}
