//! `berth push`: upload an image's blobs (skipping those the registry already has) and then
//! its manifest, byte for byte as stored, so the pushed digest equals the local one.

use std::sync::Arc;

use bytes::Bytes;

use crate::digest::Digest;
use crate::progress::{LayerEvent, Progress};
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::store::{ImageRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("upload worker failed")]
    Worker(#[source] tokio::task::JoinError),
}

/// Pushes the local image `source` (any name `berth images` resolves) to `target`.
/// Returns the manifest digest.
pub async fn push(
    store: &Store,
    client: &RegistryClient,
    source: &str,
    target: &Reference,
    progress: Arc<dyn Progress>,
) -> Result<Digest, PushError> {
    let index = store.index()?;
    let image: ImageRecord = index
        .resolve(source)
        .cloned()
        .ok_or_else(|| PushError::NoSuchImage(source.to_string()))?;
    let manifest = Bytes::from(store.read_blob(&image.manifest)?);
    let mut blobs: Vec<(Digest, u64)> = image
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size))
        .collect();
    let config_size = std::fs::metadata(store.blob_path(&image.id))
        .map_err(|e| StoreError::Io {
            op: "stat",
            path: store.blob_path(&image.id),
            source: e,
        })?
        .len();
    blobs.push((image.id.clone(), config_size));
    blobs.dedup();
    let mut tasks = tokio::task::JoinSet::new();
    for (digest, size) in blobs {
        if !store.has_blob(&digest) {
            return Err(StoreError::MissingBlob(digest).into());
        }
        let (store, client, target, progress) = (
            store.clone(),
            client.clone(),
            target.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            if client.blob_exists(&target, &digest).await? {
                progress.layer(&digest, size, LayerEvent::Mounted);
                return Ok::<_, PushError>(());
            }
            progress.layer(&digest, size, LayerEvent::Pushing);
            client
                .push_blob(&target, &digest, size, &store.blob_path(&digest))
                .await?;
            progress.layer(&digest, size, LayerEvent::Pushed);
            Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(PushError::Worker)??;
    }
    let reference = target.manifest_ref();
    let digest = client
        .push_manifest(target, &reference, &image.manifest_media_type, manifest)
        .await?;
    let repo_digest = format!("{}@{}", target.name(), digest);
    store.update_index(|idx| {
        if let Some(img) = idx.images.get_mut(&image.id) {
            if !img.repo_digests.contains(&repo_digest) {
                img.repo_digests.push(repo_digest.clone());
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(digest)
}
