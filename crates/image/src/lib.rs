//! Container images: references, the registry client, the content store, layer unpacking.

pub mod archive;
pub mod digest;
pub mod images;
pub mod ingest;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
