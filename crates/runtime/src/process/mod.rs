//! The processes the runtime forks, and the protocol they speak.
//!
//! Process model (like runc's `runc init`, without a C constructor since nothing here is
//! multi-threaded): the runtime forks a child that re-executes the berth binary from a
//! sealed, read-only copy ([`sealed`], CVE-2019-5736) as `berth-runc init`, handing it one
//! end of a [`channel::Channel`]. That *stage 1* joins the namespaces given by path, creates
//! the new ones (asking the runtime to write the user namespace mappings), and forks
//! *stage 2*, which is pid 1 of a new pid namespace. Stage 2 reports nothing by exit code:
//! every failure travels back as [`FromChild::Error`].
//!
//! For `create`, stage 2 is the container init: it waits for its cgroups, builds the rootfs,
//! lets the runtime run the hooks, pivots, drops privileges and says `Ready`; then it blocks
//! opening `exec.fifo` for writing until `start` opens it for reading, and executes the
//! user's program. For `exec`, stage 2 joins the same way and executes at once.

pub mod channel;
pub(crate) mod console;
pub(crate) mod finalize;
pub mod fork;
pub(crate) mod init;
pub mod sealed;

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupState;
use crate::spec::Spec;

pub use init::main as init_main;

/// The environment variable that carries the channel's fd number into `berth-runc init`.
pub const INIT_FD_ENV: &str = "_BERTH_INIT_FD";

/// What the forked process is for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Kind {
    Create,
    Exec,
}

/// Everything stage 1 and stage 2 need, sent once at the start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub kind: Kind,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The container's spec; for `exec`, with `process` replaced by the new process.
    pub spec: Spec,
    /// Namespaces to join, `(type, path)`, in join order.
    pub join: Vec<(String, PathBuf)>,
    /// Namespace types to create.
    pub new: Vec<String>,
    pub no_pivot: bool,
    /// The `O_PATH` fd of `exec.fifo` (create only).
    pub fifo_fd: Option<RawFd>,
    /// The connected `--console-socket` (terminal only).
    pub console_fd: Option<RawFd>,
    /// fds 3..3+N pass to the container process.
    pub preserve_fds: u32,
    pub cgroup: CgroupState,
    /// Whether the runtime runs prestart/createRuntime hooks mid-way (create only).
    pub runtime_hooks: bool,
}

/// Runtime -> child.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    Bootstrap(Box<Bootstrap>),
    MappingsWritten,
    CgroupJoined,
    HooksDone,
}

/// Child -> runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromChild {
    /// Stage 1 created a user namespace: write its uid/gid maps.
    WriteMappings {
        pid: i32,
    },
    /// Stage 1 forked stage 2 (pid in the runtime's pid namespace), already in all its
    /// cgroups when `joined`.
    Pid {
        pid: i32,
        joined: bool,
    },
    /// The mounts are done: run prestart and createRuntime hooks.
    RunHooks,
    /// Stage 2 is set up and (create) about to wait on `exec.fifo`.
    Ready,
    Error {
        message: String,
    },
}

/// A namespace type's `clone(2)` flag and its `/proc/<pid>/ns/` name.
pub fn namespace_flag(kind: &str) -> Option<(libc::c_int, &'static str)> {
    Some(match kind {
        "user" => (libc::CLONE_NEWUSER, "user"),
        "pid" => (libc::CLONE_NEWPID, "pid"),
        "network" => (libc::CLONE_NEWNET, "net"),
        "ipc" => (libc::CLONE_NEWIPC, "ipc"),
        "uts" => (libc::CLONE_NEWUTS, "uts"),
        "mount" => (libc::CLONE_NEWNS, "mnt"),
        "cgroup" => (libc::CLONE_NEWCGROUP, "cgroup"),
        "time" => (libc::CLONE_NEWTIME, "time"),
        _ => return None,
    })
}

/// Splits the spec's namespaces into those to join (by path) and those to create, in the
/// order they must be entered.
pub fn plan_namespaces(spec: &Spec) -> (Vec<(String, PathBuf)>, Vec<String>) {
    let mut join = Vec::new();
    let mut new = Vec::new();
    for kind in crate::spec::NAMESPACE_TYPES {
        if let Some(ns) = spec.namespace(kind) {
            match ns.path.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => join.push((kind.to_string(), PathBuf::from(p))),
                None => new.push(kind.to_string()),
            }
        }
    }
    (join, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_split_into_join_and_new_with_user_first() {
        let mut spec = crate::spec::default_spec();
        let linux = spec.linux.as_mut().unwrap();
        linux.namespaces.push(crate::spec::Namespace {
            kind: "user".into(),
            path: None,
        });
        linux
            .namespaces
            .iter_mut()
            .find(|n| n.kind == "network")
            .unwrap()
            .path = Some("/run/netns/x".into());
        let (join, new) = plan_namespaces(&spec);
        assert_eq!(
            join,
            [("network".to_string(), PathBuf::from("/run/netns/x"))]
        );
        assert_eq!(new, ["user", "pid", "ipc", "uts", "mount"]);
    }
}
