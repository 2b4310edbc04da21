//! `kill`: a signal to the init (through a pidfd, so a recycled pid is never hit) or,
//! with `all`, to every process in the container's cgroup.

use std::os::fd::AsFd;

use super::{io_err, Container, ContainerError};
use crate::state::Status;
use crate::syscall;

impl Container {
    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ContainerError> {
        let status = self.status();
        if status == Status::Stopped && !all {
            return Err(ContainerError::NotRunning {
                id: self.id().into(),
            });
        }
        if all {
            for pid in self.pids()? {
                match syscall::kill(pid, signal) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => return Err(io_err(format!("signal process {pid}"))(e)),
                }
            }
        } else {
            let fd = self
                .init_pidfd()
                .ok_or_else(|| ContainerError::NotRunning {
                    id: self.id().into(),
                })?;
            match syscall::pidfd_send_signal(fd.as_fd(), signal) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    return Err(ContainerError::NotRunning {
                        id: self.id().into(),
                    })
                }
                Err(e) => return Err(io_err("signal the container init")(e)),
            }
        }
        // A frozen task only dies once thawed.
        if status == Status::Paused && signal == libc::SIGKILL {
            let _ = self.state.cgroup.freeze(false);
        }
        Ok(())
    }
}
