//! `berth create` (and the first half of `berth run`): turn the user's options and the
//! image's defaults into a validated `ContainerConfig` and record it. Every check happens
//! before anything is written, so bad input leaves nothing behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_image::manifest::ImageConfig;

use crate::options::{self, OptionError};
use crate::state::{ContainerConfig, MountConfig, MountKind, Resources};
use crate::{id, Engine, EngineError};

/// What the user asked for, as the CLI (or the API server) received it.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub labels: Vec<String>,
    pub network: Option<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<String>,
    pub restart: Option<String>,
    pub auto_remove: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub init: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
}

fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Engine {
    /// Validates `opts` against the image and records a new container (status `created`).
    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerConfig, EngineError> {
        let index = self.images.index()?;
        let image = index
            .resolve(&opts.image)
            .ok_or_else(|| EngineError::NoSuchImage(opts.image.clone()))?;
        let image_config =
            ImageConfig::parse(&self.images.read_blob(&image.id)?).map_err(|source| {
                EngineError::ImageConfig {
                    image: opts.image.clone(),
                    source,
                }
            })?;
        let run = image_config.config.clone().unwrap_or_default();

        let mut config = ContainerConfig {
            id: id::new_id(),
            image: opts.image.clone(),
            image_id: image.id.to_string(),
            created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            tty: opts.tty,
            open_stdin: opts.interactive,
            auto_remove: opts.auto_remove,
            read_only: opts.read_only,
            privileged: opts.privileged,
            init: opts.init,
            stop_timeout: opts.stop_timeout,
            ..ContainerConfig::default()
        };
        config.name = match &opts.name {
            Some(n) if !id::valid_name(n) => {
                return Err(crate::store::StoreError::InvalidName(n.clone()).into())
            }
            Some(n) => n.clone(),
            None => id::new_name(),
        };
        config.hostname = opts
            .hostname
            .clone()
            .unwrap_or_else(|| config.id[..12].to_string());

        // Entrypoint and command: `--entrypoint` resets the image's command, as in Docker.
        config.entrypoint = match &opts.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => run.entrypoint.clone().unwrap_or_default(),
        };
        config.cmd = if !opts.cmd.is_empty() {
            opts.cmd.clone()
        } else if opts.entrypoint.is_some() {
            Vec::new()
        } else {
            run.cmd.clone().unwrap_or_default()
        };
        if config.argv().is_empty() {
            return Err(EngineError::NoCommand(opts.image.clone()));
        }

        config.env = run.env.clone().unwrap_or_default();
        for f in &opts.env_files {
            config.env.extend(options::read_env_file(f)?);
        }
        config
            .env
            .extend(opts.env.iter().filter_map(|e| options::parse_env(e)));
        config.working_dir = opts
            .workdir
            .clone()
            .or_else(|| run.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        config.user = opts.user.clone().or(run.user.clone()).unwrap_or_default();
        config.stop_signal = opts
            .stop_signal
            .clone()
            .or(run.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());

        let mut labels: BTreeMap<String, String> = run.labels.clone().unwrap_or_default();
        for l in &opts.labels {
            let (k, v) = options::parse_label(l)?;
            labels.insert(k, v);
        }
        config.labels = labels;

        for c in opts.cap_add.iter().chain(&opts.cap_drop) {
            if !crate::caps::known_cap(c) {
                return Err(OptionError::Capability(c.clone()).into());
            }
        }
        config.cap_add = opts.cap_add.clone();
        config.cap_drop = opts.cap_drop.clone();

        config.resources = Resources {
            memory: opts
                .memory
                .as_deref()
                .map(options::parse_memory)
                .transpose()?,
            cpus: opts
                .cpus
                .as_deref()
                .map(|c| options::parse_cpus(c, host_cpus()))
                .transpose()?,
            pids_limit: opts
                .pids_limit
                .as_deref()
                .map(options::parse_pids_limit)
                .transpose()?,
        };
        config.restart = opts
            .restart
            .as_deref()
            .map(options::parse_restart)
            .transpose()?
            .unwrap_or_default();
        if config.auto_remove && config.restart != crate::state::RestartPolicy::No {
            return Err(EngineError::RestartWithRemove);
        }

        let mut mounts: Vec<MountConfig> = Vec::new();
        for v in &opts.volumes {
            mounts.push(options::parse_volume(v)?);
        }
        for m in &opts.mounts {
            mounts.push(options::parse_mount(m)?);
        }
        for t in &opts.tmpfs {
            let target = t.split(':').next().unwrap_or(t);
            mounts.push(MountConfig {
                kind: MountKind::Tmpfs,
                source: String::new(),
                target: target.into(),
                readonly: false,
            });
        }
        // Image VOLUMEs not covered by the user's mounts get anonymous volumes, as in Docker.
        if let Some(vols) = &run.volumes {
            for target in vols.keys() {
                if !mounts.iter().any(|m| &m.target == target) {
                    mounts.push(MountConfig {
                        kind: MountKind::Volume,
                        source: String::new(),
                        target: target.clone(),
                        readonly: false,
                    });
                }
            }
        }
        config.mounts = mounts;

        let network = opts.network.clone().unwrap_or_else(|| "bridge".into());
        self.check_network(&network)?;
        config.network = network;
        config.ports = self.parse_ports(&opts.publish, opts.publish_all, &run, &config.network)?;

        // Named volumes are created now (implicitly, as `docker run -v name:/p` does);
        // anonymous ones get their names here and are created at start.
        for m in &mut config.mounts {
            if m.kind == MountKind::Volume && m.source.is_empty() {
                m.source = id::new_id();
            }
        }
        // A generated name may be taken: draw again, as Docker does.
        let mut tries = 0;
        loop {
            match self.containers.create(&config) {
                Err(crate::store::StoreError::NameInUse { .. })
                    if opts.name.is_none() && tries < 20 =>
                {
                    tries += 1;
                    config.name = if tries < 10 {
                        id::new_name()
                    } else {
                        format!("{}{}", id::new_name(), tries)
                    };
                }
                other => break other?,
            }
        }
        for m in config.mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let anonymous = m.source.len() == 64 && m.source.bytes().all(|b| b.is_ascii_hexdigit());
            if let Err(e) = self
                .volumes
                .create(&m.source, BTreeMap::new(), anonymous, true)
            {
                let _ = self.containers.remove(&config);
                return Err(e.into());
            }
        }
        Ok(config)
    }
}
