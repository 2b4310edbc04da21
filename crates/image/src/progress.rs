//! Progress reporting from long operations (pull, push, load) to whoever shows it: the CLI
//! draws bars on a terminal and plain lines otherwise; tests and the API server stay quiet.

use crate::digest::Digest;

/// What happened to one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// Already in the store: nothing to fetch.
    AlreadyExists,
    /// Bytes are arriving.
    Downloading,
    /// Blob present; unpacking from the local copy.
    Extracting,
    /// Verified and stored.
    Complete,
    /// Bytes are leaving.
    Pushing,
    /// Pushed, or already present in the target registry.
    Pushed,
    Mounted,
}

pub trait Progress: Send + Sync {
    /// A layer of `size` bytes enters the operation.
    fn layer(&self, digest: &Digest, size: u64, event: LayerEvent);
    /// `done` bytes of the layer have been transferred so far.
    fn bytes(&self, digest: &Digest, done: u64);
    /// A one-line status message.
    fn message(&self, text: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn layer(&self, _: &Digest, _: u64, _: LayerEvent) {}
    fn bytes(&self, _: &Digest, _: u64) {}
    fn message(&self, _: &str) {}
}
