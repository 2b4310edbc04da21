//! Image-level verbs over the store: tag, remove (`rmi`), prune and inspect. The registry
//! verbs live in `pull` and `push`, archives in `archive`.

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::manifest::ImageConfig;
use crate::reference::{Reference, ReferenceError};
use crate::store::{GcStats, ImageRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(
        "unable to delete {id} (must be forced): image is referenced in multiple repositories"
    )]
    MultipleTags { id: String },
    #[error("unable to delete {name} (must be forced): image {id} is used by {user}")]
    InUse {
        name: String,
        id: String,
        user: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `rmi` and `prune` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// Answers whether something (a container) uses an image, and names it.
pub trait ImageUsers {
    fn user_of(&self, image: &Digest) -> Option<String>;
}

/// Nothing uses any image (no containers yet).
pub struct NoUsers;

impl ImageUsers for NoUsers {
    fn user_of(&self, _: &Digest) -> Option<String> {
        None
    }
}

/// `nginx:latest` for a stored `docker.io/library/nginx:latest`.
pub fn familiar(full: &str) -> String {
    match full.parse::<Reference>() {
        Ok(r) => {
            let mut s = r.familiar_name();
            if let Some(t) = &r.tag {
                s.push(':');
                s.push_str(t);
            }
            s
        }
        Err(_) => full.to_string(),
    }
}

/// Points `target` at the image `source` names.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<(), ImageError> {
    let target: Reference = target.parse()?;
    let target = target.with_tag(target.tag.as_deref().unwrap_or("latest"));
    store.update_index(|idx| {
        let id = idx
            .resolve(source)
            .map(|i| i.id.clone())
            .ok_or_else(|| ImageError::NoSuchImage(source.to_string()))?;
        idx.tags.insert(target.to_string(), id);
        Ok(())
    })
}

/// `berth rmi NAME`: untags a reference; deletes the image once no tag is left (or when
/// named by id). Refuses when a container uses it or, by id, when several tags point at it,
/// unless `force`.
pub fn remove(
    store: &Store,
    name: &str,
    force: bool,
    users: &dyn ImageUsers,
) -> Result<Vec<Removed>, ImageError> {
    let removed = store.update_index(|idx| {
        let image = idx
            .resolve(name)
            .cloned()
            .ok_or_else(|| ImageError::NoSuchImage(name.to_string()))?;
        let by_tag = name
            .parse::<Reference>()
            .ok()
            .filter(|r| r.digest.is_none() && idx.tags.get(&r.to_string()) == Some(&image.id))
            .map(|r| r.to_string());
        let tags: Vec<String> = idx
            .tags_of(&image.id)
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut out = Vec::new();
        let delete = match &by_tag {
            Some(t) if tags.len() > 1 => {
                idx.tags.remove(t);
                out.push(Removed::Untagged(familiar(t)));
                false
            }
            Some(_) => true,
            None if tags.len() > 1 && !force => {
                return Err(ImageError::MultipleTags {
                    id: image.id.short().to_string(),
                })
            }
            None => true,
        };
        if delete {
            let in_use = users.user_of(&image.id);
            if let (Some(user), false) = (&in_use, force) {
                return Err(ImageError::InUse {
                    name: name.to_string(),
                    id: image.id.short().to_string(),
                    user: user.clone(),
                });
            }
            for t in &tags {
                idx.tags.remove(t);
                out.push(Removed::Untagged(familiar(t)));
            }
            // Forced while a container uses it: untagged, but the layers under the
            // container stay (Docker leaves it as a dangling image too).
            if in_use.is_some() {
                return Ok(out);
            }
            for rd in &image.repo_digests {
                out.push(Removed::Untagged(familiar_digest(rd)));
            }
            idx.images.remove(&image.id);
            out.push(Removed::Deleted(image.id.clone()));
        }
        Ok::<_, ImageError>(out)
    })?;
    if removed.iter().any(|r| matches!(r, Removed::Deleted(_))) {
        store.collect_garbage()?;
    }
    Ok(removed)
}

fn familiar_digest(repo_digest: &str) -> String {
    match repo_digest.split_once('@') {
        Some((name, d)) => match format!("{name}@{d}").parse::<Reference>() {
            Ok(r) => format!("{}@{d}", r.familiar_name()),
            Err(_) => repo_digest.to_string(),
        },
        None => repo_digest.to_string(),
    }
}

/// `berth image prune [-a]`: removes untagged images (all unused ones with `all`), then
/// collects garbage.
pub fn prune(
    store: &Store,
    all: bool,
    users: &dyn ImageUsers,
) -> Result<(Vec<Removed>, GcStats), ImageError> {
    let removed = store.update_index(|idx| {
        let doomed: Vec<ImageRecord> = idx
            .images
            .values()
            .filter(|img| {
                (all || idx.tags_of(&img.id).is_empty()) && users.user_of(&img.id).is_none()
            })
            .cloned()
            .collect();
        let mut out = Vec::new();
        for img in doomed {
            for t in idx
                .tags_of(&img.id)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
            {
                idx.tags.remove(&t);
                out.push(Removed::Untagged(familiar(&t)));
            }
            idx.images.remove(&img.id);
            out.push(Removed::Deleted(img.id));
        }
        Ok::<_, ImageError>(out)
    })?;
    let stats = store.collect_garbage()?;
    Ok((removed, stats))
}

/// `berth image inspect`: Docker's image JSON, so scripts written for `docker image inspect`
/// keep working.
pub fn inspect(store: &Store, name: &str) -> Result<Value, ImageError> {
    let index = store.index()?;
    let image = index
        .resolve(name)
        .ok_or_else(|| ImageError::NoSuchImage(name.to_string()))?;
    let config_bytes = store.read_blob(&image.id)?;
    let config = ImageConfig::parse(&config_bytes).unwrap_or_default();
    let raw: Value = serde_json::from_slice(&config_bytes).unwrap_or(Value::Null);
    let tags: Vec<String> = index.tags_of(&image.id).into_iter().map(familiar).collect();
    let digests: Vec<String> = image
        .repo_digests
        .iter()
        .map(|d| familiar_digest(d))
        .collect();
    let layer_dirs: Vec<String> = image
        .layers
        .iter()
        .map(|l| store.layer_path(&l.diff_id).display().to_string())
        .collect();
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": "",
        "Created": config.created.clone().unwrap_or_default(),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": image.size(),
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDirs": layer_dirs.join(":") }
        },
        "RootFS": {
            "Type": "layers",
            "Layers": image.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
        "Manifest": {
            "Digest": image.manifest.to_string(),
            "MediaType": image.manifest_media_type,
            "Layers": image.layers.iter().map(|l| json!({
                "Digest": l.digest.to_string(),
                "MediaType": l.media_type,
                "Size": l.size,
            })).collect::<Vec<_>>(),
        },
        "Metadata": { "Added": image.added },
    }))
}
