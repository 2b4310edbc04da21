//! `berth images`, `tag`, `rmi`, `image prune`, `inspect`, `save`, `load`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_image::archive;
use berth_image::digest::Digest;
use berth_image::images::{self, familiar, ImageUsers, Removed};
use berth_image::reference::Reference;
use serde_json::json;

use super::Ctx;
use crate::cli::{ImagesArgs, InspectArgs, LoadArgs, PruneArgs, RmiArgs, SaveArgs, TagArgs};
use crate::format::{human_since, human_size, print_table, seconds_since};
use crate::progress::reporter;

pub fn list(ctx: &Ctx, args: ImagesArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    let index = store.index()?;
    let filter: Option<Reference> = args.repository.as_deref().map(str::parse).transpose()?;
    let filter_has_tag = args
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit('/').next().is_some_and(|l| l.contains(':')));
    // One row per tag, and one `<none>` row for an image without tags; newest first.
    let mut images: Vec<_> = index.images.values().collect();
    images.sort_by(|a, b| b.created.cmp(&a.created).then(b.added.cmp(&a.added)));
    let mut rows = Vec::new();
    for img in images {
        let tags = index.tags_of(&img.id);
        let mut names: Vec<(String, String)> = tags
            .iter()
            .filter_map(|t| t.parse::<Reference>().ok())
            .filter(|r| match &filter {
                Some(f) => f.name() == r.name() && (!filter_has_tag || f.tag == r.tag),
                None => true,
            })
            .map(|r| (r.familiar_name(), r.tag.unwrap_or_default()))
            .collect();
        if names.is_empty() {
            if filter.is_some() && !tags.is_empty() || filter.is_some() {
                continue;
            }
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            let digest = img
                .repo_digests
                .iter()
                .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()))
                .unwrap_or_else(|| "<none>".into());
            rows.push((repo, tag, digest, img));
        }
    }
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for (_, _, _, img) in &rows {
            if seen.insert(&img.id) {
                println!(
                    "{}",
                    if args.no_trunc {
                        img.id.to_string()
                    } else {
                        img.id.short().to_string()
                    }
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let since = |img: &berth_image::store::ImageRecord| {
        img.created
            .as_deref()
            .and_then(seconds_since)
            .map_or_else(|| "N/A".to_string(), human_since)
    };
    match args.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for (repo, tag, digest, img) in &rows {
                let line = json!({
                    "Containers": "N/A",
                    "CreatedAt": img.created.clone().unwrap_or_default(),
                    "CreatedSince": since(img),
                    "Digest": digest,
                    "ID": img.id.short(),
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": human_size(img.size()),
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(img.size()),
                });
                println!("{line}");
            }
        }
        None | Some("table") => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|(repo, tag, digest, img)| {
                    let mut row = vec![repo.clone(), tag.clone()];
                    if args.digests {
                        row.push(digest.clone());
                    }
                    let id = if args.no_trunc {
                        img.id.to_string()
                    } else {
                        img.id.short().to_string()
                    };
                    row.extend([id, since(img), human_size(img.size())]);
                    row
                })
                .collect();
            print_table(&header, &table);
        }
        Some(other) => bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Containers, as users of images: `rmi` refuses and `prune` skips what they use.
struct ContainerUsers(Vec<(String, String)>);

impl ContainerUsers {
    fn load(ctx: &Ctx) -> Result<Self> {
        let engine = super::container::engine(ctx)?;
        let mut users = Vec::new();
        for id in engine.containers.ids()? {
            if let Ok(c) = engine.containers.config(&id) {
                users.push((c.image_id.clone(), format!("container {}", c.short_id())));
            }
        }
        Ok(Self(users))
    }
}

impl ImageUsers for ContainerUsers {
    fn user_of(&self, image: &Digest) -> Option<String> {
        let id = image.to_string();
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, who)| who.clone())
    }
}

pub fn tag(ctx: &Ctx, args: TagArgs) -> Result<ExitCode> {
    images::tag(&ctx.store()?, &args.source, &args.target)
        .with_context(|| format!("tag {}", args.source))?;
    Ok(ExitCode::SUCCESS)
}

fn print_removed(removed: &[Removed]) {
    for r in removed {
        match r {
            Removed::Untagged(t) => println!("Untagged: {t}"),
            Removed::Deleted(d) => println!("Deleted: {d}"),
        }
    }
}

pub fn remove(ctx: &Ctx, args: RmiArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    let users = ContainerUsers::load(ctx)?;
    let mut failed = false;
    for name in &args.images {
        match images::remove(&store, name, args.force, &users) {
            Ok(removed) => print_removed(&removed),
            Err(e) => {
                eprintln!("berth: rmi {name}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn prune(ctx: &Ctx, args: PruneArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    let (removed, stats) = images::prune(&store, args.all, &ContainerUsers::load(ctx)?)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        print_removed(&removed);
        println!();
    }
    println!("Total reclaimed space: {}", human_size(stats.bytes_freed));
    Ok(ExitCode::SUCCESS)
}

/// What `inspect` looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
    /// A container first, then an image (`berth inspect`, as Docker does).
    Any,
}

pub fn inspect_containers(ctx: &Ctx, args: InspectArgs) -> Result<ExitCode> {
    inspect_any(ctx, args, Kind::Container)
}

pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<ExitCode> {
    inspect_any(ctx, args, Kind::Any)
}

pub fn inspect_images(ctx: &Ctx, args: InspectArgs) -> Result<ExitCode> {
    inspect_any(ctx, args, Kind::Image)
}

fn inspect_any(ctx: &Ctx, args: InspectArgs, kind: Kind) -> Result<ExitCode> {
    let store = ctx.store()?;
    let engine = match kind {
        Kind::Image => None,
        Kind::Container | Kind::Any => Some(super::container::engine(ctx)?),
    };
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.names {
        let found = match (kind, engine.as_ref().map(|e| e.inspect(name))) {
            (_, Some(Ok(v))) => Ok(v),
            (Kind::Container, Some(Err(e))) => Err(e.to_string()),
            (Kind::Any, _) => {
                images::inspect(&store, name).map_err(|_| format!("no such object: {name}"))
            }
            _ => images::inspect(&store, name).map_err(|e| e.to_string()),
        };
        match found {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("berth: inspect {name}: {e}");
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn save(ctx: &Ctx, args: SaveArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save never leaves half a file.
            let tmp = path.with_file_name(format!(
                ".{}.berth-tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let file =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let result = archive::save(
                &store,
                &args.images,
                std::io::BufWriter::with_capacity(1 << 20, &file),
            )
            .and_then(|()| file.sync_all().map_err(archive::ArchiveError::Write));
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).context("save");
            }
            std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "save: refusing to write an archive to a terminal; use -o or redirect stdout"
                );
            }
            let stdout = std::io::stdout().lock();
            archive::save(
                &store,
                &args.images,
                std::io::BufWriter::with_capacity(1 << 20, stdout),
            )
            .context("save")?;
            std::io::stdout().flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(ctx: &Ctx, args: LoadArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    let progress = reporter(true, true);
    let loaded = match &args.input {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("load: open {}", path.display()))?;
            archive::load(&store, f, progress)
                .with_context(|| format!("load {}", path.display()))?
        }
        None => archive::load(&store, std::io::stdin(), progress).context("load from stdin")?,
    };
    if !args.quiet {
        for img in &loaded {
            if img.tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in &img.tags {
                println!("Loaded image: {}", familiar(t));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
