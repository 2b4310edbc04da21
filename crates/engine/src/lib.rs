//! Containers, Docker-style: create, start, stop, remove, logs, exec, on top of the image
//! store (`berth-image`), the OCI runtime (`berth-runtime`) and networking (`berth-net`).
//! Each running container has its own small supervisor process (`supervisor`), like
//! Podman's conmon; the CLI is a thin layer over this crate.

pub mod attach;
pub mod bundle;
pub mod caps;
pub mod cp;
pub mod create;
pub mod exec;
pub mod id;
pub mod inspect;
pub mod logs;
pub mod network;
pub mod options;
pub mod pause;
pub mod remove;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod start;
pub mod state;
pub mod stats;
pub mod status;
pub mod stop;
pub mod store;
pub mod supervisor;
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
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    #[error("container {name} is not running")]
    NotRunning { name: String },
    #[error("cannot remove container {name}: container is running: stop the container before removing or force remove")]
    Running { name: String },
    #[error("container {name} is already paused")]
    AlreadyPaused { name: String },
    #[error("container {name} is not paused")]
    NotPaused { name: String },
    #[error("container {name} is already running")]
    AlreadyRunning { name: String },
    #[error("start container {name}: {message}")]
    StartFailed { name: String, message: String },
    #[error("container {name} did not stop in time")]
    StopTimeout { name: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
}
