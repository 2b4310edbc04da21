//! `berth save`: writes one or more images as an OCI layout plus Docker's `manifest.json`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use serde_json::json;

use super::ArchiveError;
use crate::digest::Digest;
use crate::images::familiar;
use crate::manifest::OCI_INDEX;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

/// Writes the images `names` resolve to into `out` as an uncompressed tar.
pub fn save<W: Write>(store: &Store, names: &[String], out: W) -> Result<(), ArchiveError> {
    let index = store.index()?;
    // Each image once, with the tags the user named (or all its tags when named by id).
    let mut chosen: Vec<(ImageRecord, Vec<String>)> = Vec::new();
    for name in names {
        let image = index
            .resolve(name)
            .ok_or_else(|| ArchiveError::NoSuchImage(name.clone()))?;
        let tags: Vec<String> = match name.parse::<Reference>() {
            Ok(r) if r.digest.is_none() && index.tags.get(&r.to_string()) == Some(&image.id) => {
                vec![r.to_string()]
            }
            _ => index
                .tags_of(&image.id)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        match chosen.iter_mut().find(|(img, _)| img.id == image.id) {
            Some((_, existing)) => existing.extend(tags),
            None => chosen.push((image.clone(), tags)),
        }
    }

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut written: HashSet<Digest> = HashSet::new();
    let mut descriptors = Vec::new();
    let mut docker_manifest = Vec::new();
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for (image, tags) in &chosen {
        let mut blobs = vec![image.manifest.clone(), image.id.clone()];
        blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
        for d in blobs {
            if written.insert(d.clone()) {
                append_blob(&mut tar, store, &d)?;
            }
        }
        let manifest_size = std::fs::metadata(store.blob_path(&image.manifest))
            .map_err(ArchiveError::Read)?
            .len();
        let descriptor = |annotations: Option<BTreeMap<&str, String>>| {
            let mut d = json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest.to_string(),
                "size": manifest_size,
            });
            if let Some(a) = annotations {
                d["annotations"] = json!(a);
            }
            d
        };
        if tags.is_empty() {
            descriptors.push(descriptor(None));
        }
        for t in tags {
            let tag = t
                .parse::<Reference>()
                .ok()
                .and_then(|r| r.tag)
                .unwrap_or_default();
            descriptors.push(descriptor(Some(BTreeMap::from([
                ("io.containerd.image.name", t.clone()),
                ("org.opencontainers.image.ref.name", tag),
            ]))));
        }
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", image.id.hex()),
            "RepoTags": tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
            "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let oci_index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
    });
    append_bytes(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&oci_index).expect("json"),
    )?;
    append_bytes(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&docker_manifest).expect("json"),
    )?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Write)
}

fn header(path: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    // Paths here are short ASCII made by berth; set_path cannot fail on them.
    h.set_path(path)
        .expect("archive paths are short and relative");
    h.set_cksum();
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    tar.append(&header(path, data.len() as u64, 0o644), data)
        .map_err(ArchiveError::Write)
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    d: &Digest,
) -> Result<(), ArchiveError> {
    let path = store.blob_path(d);
    let file = std::fs::File::open(&path).map_err(|source| ArchiveError::Open {
        path: path.clone(),
        source,
    })?;
    let size = file.metadata().map_err(ArchiveError::Read)?.len();
    tar.append(
        &header(&format!("blobs/sha256/{}", d.hex()), size, 0o444),
        file,
    )
    .map_err(ArchiveError::Write)
}
