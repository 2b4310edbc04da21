//! Everything a container needs on disk before the runtime sees it: the overlay rootfs,
//! /etc/hosts, /etc/resolv.conf and /etc/hostname files, volumes resolved to host paths,
//! and the OCI bundle (`<container dir>/bundle/config.json`).

use std::path::{Path, PathBuf};

use crate::rootfs::Overlay;
use crate::spec::{self, NetNs, ResolvedMount, SpecInput};
use crate::state::{ContainerConfig, MountKind};
use crate::{Engine, EngineError};

/// Where a prepared container's pieces are.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bundle: PathBuf,
    pub overlay: Overlay,
    pub hosts: PathBuf,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EngineError + 'a {
    move |source| EngineError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The host's resolv.conf without loopback name servers (they mean nothing inside a
/// network namespace), as Docker does.
pub fn container_resolv_conf(host_network: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_network {
        return host;
    }
    host.lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            !(f.next() == Some("nameserver")
                && f.next()
                    .is_some_and(|ip| ip.starts_with("127.") || ip == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// /etc/hosts for a container: localhost, and its own address and names once known.
pub fn hosts_content(config: &ContainerConfig, ip: Option<&str>) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip {
        s.push_str(&format!("{ip}\t{} {}\n", config.hostname, config.name));
    }
    s
}

/// Rewrites a file in place (same inode), so that a bind mount of it sees the new content.
pub fn rewrite_in_place(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(content.as_bytes())
}

/// The static init for `--init` (init/berth-init.c, built by build.rs).
static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// Where `--init` puts its init inside the container.
pub const INIT_PATH: &str = "/dev/init";

impl Engine {
    /// The init binary on the host, written once per state root.
    fn init_binary(&self) -> Result<PathBuf, EngineError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.root.join("init").join("berth-init");
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == INIT.len() as u64) {
            return Ok(path);
        }
        let dir = self.root.join("init");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        crate::store::write_atomic(&path, INIT)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", &path))?;
        Ok(path)
    }

    pub fn overlay(&self, id: &str) -> Overlay {
        Overlay::in_dir(&self.containers.dir(id))
    }

    /// Mounts the rootfs and writes the bundle for one start of the container.
    pub fn prepare(&self, config: &ContainerConfig) -> Result<Prepared, EngineError> {
        let dir = self.containers.dir(&config.id);
        let index = self.images.index()?;
        let image_id: berth_image::digest::Digest = config
            .image_id
            .parse()
            .map_err(|_| EngineError::NoSuchImage(config.image_id.clone()))?;
        let image = index
            .images
            .get(&image_id)
            .ok_or_else(|| EngineError::NoSuchImage(config.image.clone()))?;
        let lowers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| self.images.layer_path(&l.diff_id))
            .collect();
        let overlay = self.overlay(&config.id);
        overlay.mount(&lowers)?;

        let host_network = config.network == "host";
        let hostname = dir.join("hostname");
        let (hosts, resolv) = match self.etc_files(config)? {
            Some(files) => files,
            None => {
                let hosts = dir.join("hosts");
                let resolv = dir.join("resolv.conf");
                if host_network {
                    std::fs::copy("/etc/hosts", &hosts).map_err(io("copy", &hosts))?;
                } else {
                    rewrite_in_place(&hosts, &hosts_content(config, None))
                        .map_err(io("write", &hosts))?;
                }
                rewrite_in_place(&resolv, &container_resolv_conf(host_network))
                    .map_err(io("write", &resolv))?;
                (hosts, resolv)
            }
        };
        rewrite_in_place(&hostname, &format!("{}\n", config.hostname))
            .map_err(io("write", &hostname))?;

        let user = crate::user::resolve(&config.user, &overlay.merged)?;
        let mut mounts = Vec::new();
        for m in &config.mounts {
            let source = match m.kind {
                MountKind::Volume => {
                    let data = self.volumes.data_path(&m.source);
                    let in_image = overlay.merged.join(m.target.trim_start_matches('/'));
                    crate::volume::copy_up(&in_image, &data)
                        .map_err(io("copy image content into volume", &data))?;
                    data
                }
                MountKind::Bind => PathBuf::from(&m.source),
                MountKind::Tmpfs => PathBuf::new(),
            };
            mounts.push(ResolvedMount {
                kind: m.kind.clone(),
                source,
                target: m.target.clone(),
                readonly: m.readonly,
            });
        }
        if config.init {
            mounts.push(ResolvedMount {
                kind: MountKind::Bind,
                source: self.init_binary()?,
                target: INIT_PATH.into(),
                readonly: true,
            });
        }
        let spec = spec::build(&SpecInput {
            config,
            user: &user,
            rootfs: &overlay.merged,
            hosts: &hosts,
            resolv_conf: &resolv,
            hostname_file: &hostname,
            mounts: &mounts,
            netns: if host_network {
                NetNs::Host
            } else {
                NetNs::New
            },
            cgroups_path: format!("/berth/{}", config.id),
        });
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(io("create", &bundle))?;
        let data = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        crate::store::write_atomic(&bundle.join("config.json"), &data)?;
        Ok(Prepared {
            bundle,
            overlay,
            hosts,
        })
    }
}
