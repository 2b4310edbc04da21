//! Containers, Docker-style: create, start, stop, remove, logs, exec, on top of the image
//! store (`berth-image`), the OCI runtime (`berth-runtime`) and networking (`berth-net`).
//! Each running container has its own small supervisor process (`supervisor`), like
//! Podman's conmon; the CLI is a thin layer over this crate.

pub mod caps;
pub mod create;
pub mod id;
pub mod inspect;
pub mod logs;
pub mod options;
pub mod rootfs;
// pub mod spec;
pub mod state;
pub mod status;
pub mod store;
pub mod user;
pub mod volume;

use std::path::{Path, PathBuf};

use berth_image::store::Store as ImageStore;

use store::ContainerStore;
use volume::Volumes;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image {image}: read its config")]
    ImageConfig {
        image: String,
        #[source]
        source: berth_image::manifest::ManifestError,
    },
    #[error("no command specified: image {0} has neither entrypoint nor command")]
    NoCommand(String),
    #[error("conflicting options: --restart and --rm cannot be used together")]
    RestartWithRemove,
    #[error(transparent)]
    Option(#[from] options::OptionError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    #[error(transparent)]
    Image(#[from] berth_image::store::StoreError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("{0}")]
    Ports(String),
}

/// Handles to everything containers are made of, under one state root.
#[derive(Debug, Clone)]
pub struct Engine {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub images: ImageStore,
    pub containers: ContainerStore,
    pub volumes: Volumes,
}

impl Engine {
    pub fn open(root: &Path, run_root: &Path) -> Result<Self, EngineError> {
        Ok(Self {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            images: ImageStore::open(root)?,
            containers: ContainerStore::open(root)?,
            volumes: Volumes::open(root)?,
        })
    }

    fn check_network(&self, name: &str) -> Result<(), EngineError> {
        match name {
            "bridge" | "host" | "none" => Ok(()),
            other => Err(EngineError::NoSuchNetwork(other.to_string())),
        }
    }

    fn parse_ports(
        &self,
        publish: &[String],
        publish_all: bool,
        _image: &berth_image::manifest::RunConfig,
        network: &str,
    ) -> Result<Vec<state::PortConfig>, EngineError> {
        if (!publish.is_empty() || publish_all) && matches!(network, "host" | "none") {
            return Ok(Vec::new());
        }
        if publish.is_empty() && !publish_all {
            return Ok(Vec::new());
        }
        Err(EngineError::Ports("published ports are not supported yet".into()))
    }
}
