//! `berth pull`: resolve a reference to one platform's manifest, fetch the config, stream
//! every missing layer through `ingest` in parallel, then record the image in the index.
//! The index is written last, after a filesystem sync, so an interrupted pull leaves only
//! verified blobs and layers behind, which the next pull reuses instead of fetching again.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use crate::digest::Digest;
use crate::ingest::{ingest, ingest_resuming, Expected, IngestError, Partial, Wanted};
use crate::manifest::{
    parse_manifest, Compression, Descriptor, ImageConfig, ManifestError, ManifestKind,
    MAX_CONFIG_BYTES,
};
use crate::platform::Platform;
use crate::progress::{LayerEvent, Progress};
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::store::{ImageRecord, LayerRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("manifest {digest}")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("image config {digest}")]
    Config {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("no image for platform {wanted} in {digest} (it has {available})")]
    NoPlatform {
        wanted: Platform,
        digest: Digest,
        available: String,
    },
    #[error("image platform {actual} does not match the requested {wanted}")]
    PlatformMismatch { wanted: Platform, actual: Platform },
    #[error("index {0} points at another index, which berth does not follow")]
    NestedIndex(Digest),
    #[error("blob {digest}: the registry sent more than the {expected} bytes the manifest gives")]
    Oversized { digest: Digest, expected: u64 },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer worker failed")]
    Worker(#[source] tokio::task::JoinError),
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from a multi-platform index; the host's if `None`.
    pub platform: Option<Platform>,
    /// Layers fetched at the same time.
    pub max_concurrent: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: None,
            max_concurrent: 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The digest of what the reference resolved to (an index for multi-platform images).
    pub digest: Digest,
    /// Whether anything new was stored (Docker's "Downloaded newer image" vs "up to date").
    pub changed: bool,
}

/// Pulls `r` into `store`.
pub async fn pull(
    store: &Store,
    client: &RegistryClient,
    r: &Reference,
    options: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<Pulled, PullError> {
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let top = client.fetch_manifest(r).await?;
    let manifest_err = |digest: &Digest| {
        let digest = digest.clone();
        move |source| PullError::Manifest { digest, source }
    };
    let mut index_bytes = None;
    let (manifest_bytes, manifest_digest, media_type) =
        match parse_manifest(&top.bytes, top.media_type.as_deref())
            .map_err(manifest_err(&top.digest))?
        {
            ManifestKind::Image(m) => {
                let mt = m
                    .media_type
                    .clone()
                    .or(top.media_type.clone())
                    .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.to_string());
                (top.bytes.clone(), top.digest.clone(), mt)
            }
            ManifestKind::Index(idx) => {
                let desc = choose_platform(&idx.manifests, &wanted).ok_or_else(|| {
                    PullError::NoPlatform {
                        wanted: wanted.clone(),
                        digest: top.digest.clone(),
                        available: list_platforms(&idx.manifests),
                    }
                })?;
                let m = client
                    .fetch_manifest(&r.with_digest(desc.digest.clone()))
                    .await?;
                index_bytes = Some(top.bytes.clone());
                (m.bytes, m.digest, desc.media_type.clone())
            }
        };
    let manifest = match parse_manifest(&manifest_bytes, Some(&media_type))
        .map_err(manifest_err(&manifest_digest))?
    {
        ManifestKind::Image(m) => m,
        ManifestKind::Index(_) => return Err(PullError::NestedIndex(manifest_digest)),
    };
    let cfg_desc = &manifest.config;
    let config_bytes = match store.read_blob(&cfg_desc.digest) {
        Ok(b) => Bytes::from(b),
        Err(_) => {
            client
                .fetch_small_blob(r, &cfg_desc.digest, cfg_desc.size, MAX_CONFIG_BYTES)
                .await?
        }
    };
    let config_err = |source| PullError::Config {
        digest: cfg_desc.digest.clone(),
        source,
    };
    let config = ImageConfig::parse(&config_bytes).map_err(config_err)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(config_err(ManifestError::LayerCountMismatch {
            config: config.rootfs.diff_ids.len(),
            manifest: manifest.layers.len(),
        }));
    }
    if index_bytes.is_none() && options.platform.is_some() && !wanted.matches(&config.platform()) {
        return Err(PullError::PlatformMismatch {
            wanted,
            actual: config.platform(),
        });
    }

    let _writer = store.writer_lock()?;
    let snapshot = store.index()?;
    let known_sizes: HashMap<Digest, u64> = snapshot
        .images
        .values()
        .flat_map(|i| {
            i.layers
                .iter()
                .map(|l| (l.diff_id.clone(), l.unpacked_size))
        })
        .collect();
    let was = snapshot.tags.get(&r.to_string()).cloned();

    let semaphore = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut seen = HashMap::new();
    for (i, (desc, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        if seen.insert(desc.digest.clone(), i).is_some() {
            continue;
        }
        let job = LayerJob {
            store: store.clone(),
            client: client.clone(),
            reference: r.clone(),
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            known_size: known_sizes.get(diff_id).copied(),
            progress: progress.clone(),
            semaphore: semaphore.clone(),
        };
        tasks.spawn(async move { (i, job.run().await) });
    }
    let mut records: HashMap<usize, LayerRecord> = HashMap::new();
    let mut changed = false;
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.map_err(PullError::Worker)?;
        let (record, fetched) = result?;
        changed |= fetched;
        records.insert(i, record);
    }
    let layers: Vec<LayerRecord> = manifest
        .layers
        .iter()
        .map(|d| records[&seen[&d.digest]].clone())
        .collect();

    store.write_blob(&config_bytes)?;
    store.write_blob(&manifest_bytes)?;
    let top_digest = match &index_bytes {
        Some(b) => store.write_blob(b)?,
        None => manifest_digest.clone(),
    };
    store.sync()?;
    let record = ImageRecord {
        id: cfg_desc.digest.clone(),
        manifest: manifest_digest,
        manifest_media_type: media_type,
        repo_digests: vec![format!("{}@{}", r.name(), top_digest)],
        layers,
        created: config.created.clone(),
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        added: now_secs(),
    };
    let id = record.id.clone();
    let tag = r.tag.as_ref().map(|t| r.with_tag(t));
    store.update_index(|idx| {
        idx.insert(record, tag.as_ref());
        Ok::<_, StoreError>(())
    })?;
    Ok(Pulled {
        changed: changed || was.as_ref() != Some(&id),
        id,
        digest: top_digest,
    })
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn choose_platform<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    // Prefer an exact variant match, then any compatible entry; skip attestation manifests
    // (BuildKit marks them with platform unknown/unknown).
    let compatible = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| wanted.matches(p));
    manifests
        .iter()
        .filter(compatible)
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == wanted.variant)
        })
        .or_else(|| manifests.iter().find(compatible))
}

fn list_platforms(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(Platform::to_string)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

struct LayerJob {
    store: Store,
    client: RegistryClient,
    reference: Reference,
    desc: Descriptor,
    diff_id: Digest,
    known_size: Option<u64>,
    progress: Arc<dyn Progress>,
    semaphore: Arc<Semaphore>,
}

impl LayerJob {
    /// Returns the layer's record and whether anything was fetched or unpacked.
    async fn run(self) -> Result<(LayerRecord, bool), PullError> {
        let compression = Compression::of_media_type(&self.desc.media_type).map_err(|source| {
            PullError::Manifest {
                digest: self.desc.digest.clone(),
                source,
            }
        })?;
        let have_blob = self.store.has_blob(&self.desc.digest);
        let have_layer = self.store.has_layer(&self.diff_id);
        let record = |unpacked_size| LayerRecord {
            digest: self.desc.digest.clone(),
            media_type: self.desc.media_type.clone(),
            size: self.desc.size,
            diff_id: self.diff_id.clone(),
            unpacked_size,
        };
        if have_blob && have_layer {
            let size = match self.known_size {
                Some(s) => s,
                None => {
                    let dir = self.store.layer_path(&self.diff_id);
                    tokio::task::spawn_blocking(move || dir_file_bytes(&dir))
                        .await
                        .map_err(PullError::Worker)?
                }
            };
            self.progress
                .layer(&self.desc.digest, self.desc.size, LayerEvent::AlreadyExists);
            return Ok((record(size), false));
        }
        let _permit = self
            .semaphore
            .acquire()
            .await
            .expect("semaphore is never closed");
        let expected = Expected {
            digest: Some(self.desc.digest.clone()),
            size: Some(self.desc.size),
            diff_id: Some(self.diff_id.clone()),
            compression,
        };
        let ingested = if have_blob {
            // A previous pull stopped after verifying this blob: unpack the local copy.
            self.progress
                .layer(&self.desc.digest, self.desc.size, LayerEvent::Extracting);
            let store = self.store.clone();
            let path = store.blob_path(&self.desc.digest);
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path).map_err(|e| StoreError::Io {
                    op: "open",
                    path: path.clone(),
                    source: e,
                })?;
                ingest(
                    &store,
                    file,
                    &expected,
                    Wanted {
                        blob: false,
                        layer: true,
                    },
                )
            })
            .await
            .map_err(PullError::Worker)??
        } else {
            self.download(expected, !have_layer).await?
        };
        // Start writing this layer back now, while other layers are still arriving, so the
        // sync before the index update finds little left to do.
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.sync())
            .await
            .map_err(PullError::Worker)??;
        let unpacked_size = if have_layer {
            // Only the blob was missing; the directory was already there.
            match self.known_size {
                Some(s) => s,
                None => dir_file_bytes(&self.store.layer_path(&self.diff_id)),
            }
        } else {
            ingested.unpacked_size
        };
        self.progress
            .layer(&self.desc.digest, self.desc.size, LayerEvent::Complete);
        Ok((record(unpacked_size), true))
    }

    async fn download(
        &self,
        expected: Expected,
        unpack: bool,
    ) -> Result<crate::ingest::Ingested, PullError> {
        let digest = &self.desc.digest;
        let partial_path = self.store.partial_path(digest);
        let mut partial = open_partial(&partial_path, self.desc.size);
        let mut have = partial.as_ref().map_or(0, |(_, h)| *h);
        let mut resp = self.client.open_blob(&self.reference, digest, have).await?;
        if have > 0 && !resumes_at(&resp, have) {
            // The registry sent the whole blob instead of the rest: start over.
            if let Some((file, h)) = partial.as_mut() {
                let _ = file.set_len(0);
                *h = 0;
            }
            have = 0;
        }
        self.progress
            .layer(&self.desc.digest, self.desc.size, LayerEvent::Downloading);
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let store = self.store.clone();
        let network = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        let wanted = Wanted {
            blob: true,
            layer: unpack,
        };
        let worker = tokio::task::spawn_blocking(move || match partial {
            Some((mut file, have)) => {
                let prefix = std::fs::File::open(&partial_path)
                    .map_err(|source| StoreError::Io {
                        op: "open",
                        path: partial_path.clone(),
                        source,
                    })?
                    .take(have);
                let result = ingest_resuming(
                    &store,
                    prefix.chain(network),
                    &expected,
                    wanted,
                    Some(Partial {
                        file: &mut file,
                        path: &partial_path,
                        have,
                    }),
                );
                // Keep what arrived only when the stream was cut short; anything else
                // means those bytes are not worth resuming from.
                let cut_short = matches!(&result, Err(IngestError::SizeMismatch { expected, actual, .. }) if actual < expected);
                if result.is_err() && !cut_short {
                    let _ = std::fs::remove_file(&partial_path);
                }
                result
            }
            None => ingest(&store, network, &expected, wanted),
        });
        let mut done: u64 = have;
        self.progress.bytes(digest, done);
        let streamed: Result<(), PullError> = loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    done += chunk.len() as u64;
                    if done > self.desc.size {
                        break Err(PullError::Oversized {
                            digest: digest.clone(),
                            expected: self.desc.size,
                        });
                    }
                    self.progress.bytes(digest, done);
                    if tx.send(chunk).await.is_err() {
                        // The worker stopped early; its error says why.
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(source) => {
                    break Err(PullError::Registry(RegistryError::Body {
                        what: format!("blob {digest}"),
                        source,
                    }))
                }
            }
        };
        drop(tx);
        let ingested = worker.await.map_err(PullError::Worker)?;
        streamed?;
        Ok(ingested?)
    }
}

/// The partial download of a blob, locked for this pull, and how many bytes it holds.
/// `None` when another pull is downloading the same blob right now (this one then stages
/// its own copy) or the file cannot be used.
fn open_partial(path: &std::path::Path, size: u64) -> Option<(std::fs::File, u64)> {
    let file = std::fs::File::options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .ok()?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    let mut have = file.metadata().ok()?.len();
    if have >= size {
        // Complete but never verified (or larger than promised): not a usable prefix.
        file.set_len(0).ok()?;
        have = 0;
    }
    Some((file, have))
}

/// Whether a response is the `206 Partial Content` that continues at byte `offset`.
fn resumes_at(resp: &reqwest::Response, offset: u64) -> bool {
    resp.status() == reqwest::StatusCode::PARTIAL_CONTENT
        && resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|start| start.parse::<u64>().ok())
            == Some(offset)
}

/// Bytes of regular-file data under a directory (for a layer found on disk without a record).
fn dir_file_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// The blocking side of the download channel.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
