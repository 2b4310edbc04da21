//! The JSON documents of the OCI image spec and their Docker schema2 twins: descriptors,
//! image manifests, indexes (manifest lists) and the image config. Parsing is strict about
//! what berth relies on (media types, digests, sizes) and lenient about the rest, which is
//! kept verbatim in the stored blob anyway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Manifests and configs larger than this are refused: real ones are a few KiB, and a
/// registry that sends more is broken or hostile (containerd uses the same 4 MiB bound).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Configs carry history and can be larger than manifests.
pub const MAX_CONFIG_BYTES: usize = 8 << 20;

/// The `Accept` header for manifest requests: every kind berth can read.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("malformed {what}")]
    Malformed {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("unsupported layer media type {0:?}")]
    UnsupportedLayer(String),
    #[error("config lists {config} layers but the manifest has {manifest}")]
    LayerCountMismatch { config: usize, manifest: usize },
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(media_type: &str) -> Result<Self, ManifestError> {
        match media_type {
            OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Self::None),
            OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN => {
                Ok(Self::Gzip)
            }
            OCI_LAYER_ZSTD => Ok(Self::Zstd),
            other => Err(ManifestError::UnsupportedLayer(other.to_string())),
        }
    }

    /// Sniffs the compression from a blob's first bytes (for `berth load`, where archives
    /// do not always say).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    pub fn oci_media_type(self) -> &'static str {
        match self {
            Self::None => OCI_LAYER_TAR,
            Self::Gzip => OCI_LAYER_GZIP,
            Self::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// An image manifest (OCI or Docker schema2; they share the shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI index or a Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest request returned.
#[derive(Debug)]
pub enum ManifestKind {
    Image(Manifest),
    Index(Index),
}

/// Parses a manifest document, using the media type from the HTTP response or the document
/// itself (OCI manifests may leave it out of the body; then the shape decides).
pub fn parse_manifest(
    bytes: &[u8],
    header_type: Option<&str>,
) -> Result<ManifestKind, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            what: "manifest",
            size: bytes.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Malformed {
            what: "manifest",
            source,
        })?;
    let header_type = header_type
        .map(|h| h.split(';').next().unwrap_or(h).trim())
        .filter(|h| !h.is_empty() && *h != "application/json" && *h != "text/plain");
    let media_type = probe.media_type.as_deref().or(header_type);
    let is_index = match media_type {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(ManifestError::UnsupportedMediaType(other.to_string())),
        None => probe.manifests.is_some(),
    };
    if probe.schema_version != Some(2) {
        return Err(ManifestError::UnsupportedMediaType(format!(
            "schemaVersion {}",
            probe
                .schema_version
                .map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    let malformed = |source| ManifestError::Malformed {
        what: if is_index { "index" } else { "manifest" },
        source,
    };
    if is_index {
        Ok(ManifestKind::Index(
            serde_json::from_slice(bytes).map_err(malformed)?,
        ))
    } else {
        let m: Manifest = serde_json::from_slice(bytes).map_err(malformed)?;
        for layer in &m.layers {
            Compression::of_media_type(&layer.media_type)?;
        }
        Ok(ManifestKind::Image(m))
    }
}

/// The parts of the image config berth reads. The full document stays in the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

/// The `config` object: defaults for running a container from the image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ManifestError::TooLarge {
                what: "image config",
                size: bytes.len(),
                limit: MAX_CONFIG_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Malformed {
            what: "image config",
            source,
        })
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn oci_manifest_without_media_type_is_an_image() {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"{OCI_LAYER_ZSTD}","digest":"{D}","size":0}}]}}"#
        );
        assert!(matches!(
            parse_manifest(doc.as_bytes(), None).unwrap(),
            ManifestKind::Image(_)
        ));
    }

    #[test]
    fn index_is_recognised_from_header() {
        let doc = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse_manifest(doc.as_bytes(), Some(DOCKER_LIST)).unwrap(),
            ManifestKind::Index(_)
        ));
    }

    #[test]
    fn malformed_and_oversized_manifests_are_rejected() {
        let err = parse_manifest(b"{not json", None).unwrap_err();
        assert!(err.to_string().starts_with("malformed manifest"), "{err}");
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            parse_manifest(&big, None),
            Err(ManifestError::TooLarge { .. })
        ));
        let schema1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(parse_manifest(schema1, None).is_err());
    }

    #[test]
    fn unknown_layer_type_is_rejected() {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"application/x-foo","digest":"{D}","size":0}}]}}"#
        );
        let err = parse_manifest(doc.as_bytes(), Some(OCI_MANIFEST)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported layer media type \"application/x-foo\""
        );
    }

    #[test]
    fn compression_sniffing() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
    }
}
