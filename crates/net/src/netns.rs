//! Reaching into a container's network namespace without forking.
//!
//! A netlink socket stays bound to the network namespace it was created in. So to configure
//! links inside a container's namespace, a short-lived helper thread `setns(2)`s into it,
//! opens a `NETLINK_ROUTE` socket, hands the socket back and exits. The calling thread never
//! changes namespace, so nothing has to be switched back (and a failure to switch back
//! cannot leave a thread of the engine in the wrong namespace); no process is forked, which
//! keeps the "never fork a multi-threaded process" rule of the runtime intact.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::netlink::{NetlinkError, NetlinkSocket};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("open network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("enter network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open netlink socket in network namespace {path}")]
    Socket {
        path: PathBuf,
        #[source]
        source: NetlinkError,
    },
}

/// Opens the namespace file (`/proc/PID/ns/net` or a bind mount of one, such as
/// `/run/netns/NAME`).
pub fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// A netlink socket that acts inside the network namespace `ns` (opened from `path`).
pub fn netlink_in(ns: &File, path: &Path) -> Result<NetlinkSocket, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(
                std::os::fd::AsFd::as_fd(ns),
                Some(LinkNameSpaceType::Network),
            )
            .map_err(|e| NetnsError::Enter {
                path: path.to_path_buf(),
                source: e.into(),
            })?;
            NetlinkSocket::open().map_err(|source| NetnsError::Socket {
                path: path.to_path_buf(),
                source,
            })
            // The thread ends here, and its namespace with it.
        })
        .join()
        .expect("the netns helper thread does not panic")
    })
}
