//! Image archives for `berth save` and `berth load`, in the layout Docker 25+ writes and
//! reads: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) that also
//! carries Docker's `manifest.json`, so `docker load`, `podman load` and skopeo (both as
//! `docker-archive:` and `oci-archive:`) understand what berth saves, and berth loads what
//! they save (including the legacy `<id>/layer.tar` docker-archive).

mod load;
mod save;

pub use load::{load, Loaded};
pub use save::save;

use std::path::PathBuf;

use crate::ingest::IngestError;
use crate::manifest::ManifestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("read archive")]
    Read(#[source] std::io::Error),
    #[error("write archive")]
    Write(#[source] std::io::Error),
    #[error("archive entry {entry:?} escapes the archive")]
    Escape { entry: String },
    #[error("archive has neither manifest.json nor index.json: not an image archive")]
    NotAnImage,
    #[error("archive file {0:?} is missing")]
    Missing(String),
    #[error("malformed {what} in archive")]
    Malformed {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} in archive")]
    Manifest {
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error("archive blob {name}: digest mismatch: content hashes to {actual}")]
    DigestMismatch { name: String, actual: String },
    #[error("image {config}: config lists {config_layers} layers but the archive has {layers}")]
    LayerCount {
        config: String,
        config_layers: usize,
        layers: usize,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
