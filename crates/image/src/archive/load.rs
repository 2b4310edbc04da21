//! `berth load`: reads an image archive (optionally gzip- or zstd-compressed) into the store.
//! The archive is first extracted into staging (archives list their blobs in any order),
//! then each image is imported with every digest checked: blobs are renamed into the store
//! after verification, not copied.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::ArchiveError;
use crate::digest::Digest;
use crate::ingest::{ingest, Expected, Wanted};
use crate::manifest::{
    parse_manifest, Compression, Descriptor, ImageConfig, Manifest, ManifestKind, OCI_CONFIG,
    OCI_MANIFEST,
};
use crate::platform::Platform;
use crate::progress::{LayerEvent, Progress};
use crate::pull::now_secs;
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, Staged, Store, StoreError};

/// One image that was loaded: its id and the full references now pointing at it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// The extracted archive.
struct Extracted {
    dir: Staged,
    /// Symlinks (legacy docker-archive dedups layers with them): path -> target path.
    links: HashMap<String, String>,
}

impl Extracted {
    fn resolve(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let mut name = normalize(name).ok_or_else(|| ArchiveError::Escape {
            entry: name.to_string(),
        })?;
        for _ in 0..8 {
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        let path = self.dir.path().join(&name);
        if !path.is_file() {
            return Err(ArchiveError::Missing(name));
        }
        Ok(path)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        std::fs::read(self.resolve(name)?).map_err(ArchiveError::Read)
    }

    fn has(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }
}

/// A relative path with no `..` or root, as a `/`-joined string; `None` if it would escape.
fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn decompressed<R: Read + 'static>(input: R) -> Result<Box<dyn Read>, ArchiveError> {
    let mut buffered = BufReader::with_capacity(256 << 10, input);
    let head = buffered.fill_buf().map_err(ArchiveError::Read)?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(ArchiveError::Read)?,
        ),
    })
}

fn extract(store: &Store, input: Box<dyn Read>) -> Result<Extracted, ArchiveError> {
    let dir = store.stage_dir()?;
    let mut links = HashMap::new();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name =
            normalize(&raw).filter(|_| !raw.starts_with('/') && !raw.split('/').any(|c| c == ".."));
        let Some(name) = name else {
            return Err(ArchiveError::Escape { entry: raw });
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dest = dir.path().join(&name);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(ArchiveError::Read)?;
                }
                let mut f = std::fs::File::create(&dest).map_err(ArchiveError::Read)?;
                std::io::copy(&mut entry, &mut f).map_err(ArchiveError::Read)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                    Path::new(&name)
                        .parent()
                        .map(|p| p.join(&target))
                        .unwrap_or_else(|| PathBuf::from(&target))
                } else {
                    PathBuf::from(&target)
                };
                let resolved = base
                    .to_str()
                    .filter(|_| !target.starts_with('/'))
                    .and_then(normalize)
                    .ok_or_else(|| ArchiveError::Escape { entry: raw.clone() })?;
                links.insert(name, resolved);
            }
            _ => {}
        }
    }
    Ok(Extracted { dir, links })
}

/// Loads every image in the archive read from `input`.
pub fn load<R: Read + 'static>(
    store: &Store,
    input: R,
    progress: Arc<dyn Progress>,
) -> Result<Vec<Loaded>, ArchiveError> {
    let extracted = extract(store, decompressed(input)?)?;
    let _writer = store.writer_lock()?;
    let docker_tags = docker_tags(&extracted)?;
    let mut imported: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
    if extracted.has("index.json") {
        let bytes = extracted.read("index.json")?;
        let index = match parse_manifest(&bytes, Some(crate::manifest::OCI_INDEX)) {
            Ok(ManifestKind::Index(i)) => i,
            Ok(ManifestKind::Image(_)) => return Err(ArchiveError::NotAnImage),
            Err(source) => {
                return Err(ArchiveError::Manifest {
                    what: "index.json".into(),
                    source,
                })
            }
        };
        for desc in &index.manifests {
            let (record, _) = import_oci(store, &extracted, desc, &*progress)?;
            let mut tags = names_from_annotations(desc);
            if tags.is_empty() {
                tags = docker_tags.get(&record.id).cloned().unwrap_or_default();
            }
            imported.push((record, tags));
        }
    } else if extracted.has("manifest.json") {
        for entry in docker_manifest(&extracted)? {
            let record = import_docker(store, &extracted, &entry, &*progress)?;
            let tags = docker_tags.get(&record.id).cloned().unwrap_or_default();
            imported.push((record, tags));
        }
    } else {
        return Err(ArchiveError::NotAnImage);
    }
    store.sync()?;
    let loaded: Vec<Loaded> = imported
        .iter()
        .map(|(r, tags)| Loaded {
            id: r.id.clone(),
            tags: tags.iter().map(Reference::to_string).collect(),
        })
        .collect();
    store.update_index(|idx| {
        for (record, tags) in imported {
            idx.insert(record.clone(), None);
            for t in tags {
                idx.tags.insert(t.to_string(), record.id.clone());
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(loaded)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_manifest(extracted: &Extracted) -> Result<Vec<DockerEntry>, ArchiveError> {
    let bytes = extracted.read("manifest.json")?;
    serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Malformed {
        what: "manifest.json".into(),
        source,
    })
}

/// Image id (config digest) -> tags, from `manifest.json` if the archive has one.
fn docker_tags(extracted: &Extracted) -> Result<HashMap<Digest, Vec<Reference>>, ArchiveError> {
    let mut out = HashMap::new();
    if !extracted.has("manifest.json") {
        return Ok(out);
    }
    for entry in docker_manifest(extracted)? {
        let id = Digest::of(&extracted.read(&entry.config)?);
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.parse::<Reference>().ok())
            .collect();
        out.insert(id, tags);
    }
    Ok(out)
}

/// `io.containerd.image.name`, or `org.opencontainers.image.ref.name` when it is a whole
/// reference rather than a bare tag.
fn names_from_annotations(desc: &Descriptor) -> Vec<Reference> {
    let Some(a) = &desc.annotations else {
        return Vec::new();
    };
    let full = a.get("io.containerd.image.name").or_else(|| {
        a.get("org.opencontainers.image.ref.name")
            .filter(|n| n.contains('/') || n.contains(':'))
    });
    full.and_then(|n| n.parse::<Reference>().ok())
        .filter(|r| r.digest.is_none())
        .into_iter()
        .collect()
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn read_verified(extracted: &Extracted, d: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let name = blob_name(d);
    let bytes = extracted.read(&name)?;
    let actual = Digest::of(&bytes);
    if actual != *d {
        return Err(ArchiveError::DigestMismatch {
            name,
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

fn import_oci(
    store: &Store,
    extracted: &Extracted,
    desc: &Descriptor,
    progress: &dyn Progress,
) -> Result<(ImageRecord, Digest), ArchiveError> {
    let bytes = read_verified(extracted, &desc.digest)?;
    let what = || blob_name(&desc.digest);
    let manifest = match parse_manifest(&bytes, Some(&desc.media_type)) {
        Ok(ManifestKind::Image(m)) => m,
        Ok(ManifestKind::Index(idx)) => {
            let host = Platform::host();
            let inner = idx
                .manifests
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| host.matches(p)))
                .ok_or_else(|| {
                    ArchiveError::Missing(format!("manifest for {host} in {}", what()))
                })?;
            store.write_blob(&bytes)?;
            return import_oci(store, extracted, inner, progress);
        }
        Err(source) => {
            return Err(ArchiveError::Manifest {
                what: what(),
                source,
            })
        }
    };
    let paths = manifest
        .layers
        .iter()
        .map(|l| extracted.resolve(&blob_name(&l.digest)))
        .collect::<Result<Vec<_>, _>>()?;
    let record = import_image(
        store,
        extracted,
        &manifest,
        &bytes,
        &desc.media_type,
        &paths,
        progress,
    )?;
    Ok((record, desc.digest.clone()))
}

fn import_docker(
    store: &Store,
    extracted: &Extracted,
    entry: &DockerEntry,
    progress: &dyn Progress,
) -> Result<ImageRecord, ArchiveError> {
    let config_bytes = extracted.read(&entry.config)?;
    let config_digest = Digest::of(&config_bytes);
    let mut layers = Vec::new();
    let mut paths = Vec::new();
    for name in &entry.layers {
        let path = extracted.resolve(name)?;
        paths.push(path.clone());
        let mut head = [0u8; 4];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(ArchiveError::Read)?;
        let compression = Compression::sniff(&head[..n]);
        let size = std::fs::metadata(&path).map_err(ArchiveError::Read)?.len();
        let digest = match name.strip_prefix("blobs/sha256/").map(Digest::from_hex) {
            Some(Ok(d)) => d,
            _ => digest_file(&path)?,
        };
        layers.push(Descriptor {
            media_type: compression.oci_media_type().to_string(),
            digest,
            size,
            platform: None,
            annotations: None,
            urls: None,
        });
    }
    // Legacy archives have no manifest: make an OCI one that describes the blobs as they are.
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: OCI_CONFIG.to_string(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            platform: None,
            annotations: None,
            urls: None,
        },
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    // The config may live under any name in a legacy archive: store it from memory.
    store.write_blob(&config_bytes)?;
    import_image(
        store,
        extracted,
        &manifest,
        &bytes,
        OCI_MANIFEST,
        &paths,
        progress,
    )
}

fn digest_file(path: &Path) -> Result<Digest, ArchiveError> {
    let f = std::fs::File::open(path).map_err(ArchiveError::Read)?;
    let (d, _, _) = crate::digest::HashingReader::new(f)
        .finish()
        .map_err(ArchiveError::Read)?;
    Ok(d)
}

fn import_image(
    store: &Store,
    extracted: &Extracted,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    media_type: &str,
    layer_paths: &[PathBuf],
    progress: &dyn Progress,
) -> Result<ImageRecord, ArchiveError> {
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_blob(&manifest.config.digest)?
    } else {
        read_verified(extracted, &manifest.config.digest)?
    };
    let config = ImageConfig::parse(&config_bytes).map_err(|source| ArchiveError::Manifest {
        what: blob_name(&manifest.config.digest),
        source,
    })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ArchiveError::LayerCount {
            config: manifest.config.digest.to_string(),
            config_layers: config.rootfs.diff_ids.len(),
            layers: manifest.layers.len(),
        });
    }
    let mut layers = Vec::new();
    for ((desc, diff_id), path) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .zip(layer_paths)
    {
        layers.push(import_layer(store, path, desc, diff_id, progress)?);
    }
    store.write_blob(&config_bytes)?;
    let manifest_digest = store.write_blob(manifest_bytes)?;
    Ok(ImageRecord {
        id: manifest.config.digest.clone(),
        manifest: manifest_digest,
        manifest_media_type: media_type.to_string(),
        repo_digests: Vec::new(),
        layers,
        created: config.created.clone(),
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        added: now_secs(),
    })
}

fn import_layer(
    store: &Store,
    path: &Path,
    desc: &Descriptor,
    diff_id: &Digest,
    progress: &dyn Progress,
) -> Result<LayerRecord, ArchiveError> {
    let compression =
        Compression::of_media_type(&desc.media_type).map_err(|source| ArchiveError::Manifest {
            what: blob_name(&desc.digest),
            source,
        })?;
    let record = |unpacked_size| LayerRecord {
        digest: desc.digest.clone(),
        media_type: desc.media_type.clone(),
        size: desc.size,
        diff_id: diff_id.clone(),
        unpacked_size,
    };
    let known = store
        .index()?
        .images
        .values()
        .flat_map(|i| i.layers.iter())
        .find(|l| l.diff_id == *diff_id)
        .map(|l| l.unpacked_size);
    if let (true, true, Some(size)) = (
        store.has_blob(&desc.digest),
        store.has_layer(diff_id),
        known,
    ) {
        progress.layer(&desc.digest, desc.size, LayerEvent::AlreadyExists);
        return Ok(record(size));
    }
    progress.layer(&desc.digest, desc.size, LayerEvent::Extracting);
    let file = std::fs::File::open(path).map_err(ArchiveError::Read)?;
    let expected = Expected {
        digest: Some(desc.digest.clone()),
        size: Some(desc.size),
        diff_id: Some(diff_id.clone()),
        compression,
    };
    let ingested = ingest(
        store,
        file,
        &expected,
        Wanted {
            blob: false,
            layer: true,
        },
    )?;
    if !store.has_blob(&desc.digest) {
        std::fs::rename(path, store.blob_path(&desc.digest)).map_err(|source| StoreError::Io {
            op: "rename",
            path: store.blob_path(&desc.digest),
            source,
        })?;
    }
    progress.layer(&desc.digest, desc.size, LayerEvent::Complete);
    Ok(record(ingested.unpacked_size))
}
