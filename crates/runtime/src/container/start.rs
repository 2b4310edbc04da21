//! `start`: release the init waiting on `exec.fifo`, then run the poststart hooks.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use super::{io_err, Container, ContainerError};
use crate::hooks;
use crate::state::{Status, FIFO_FILE};
use crate::syscall;

impl Container {
    /// Lets the created container run its program. Poststart hook failures are returned
    /// as warnings: the container keeps running (runtime-spec config.md "Poststart").
    pub fn start(&self) -> Result<Vec<String>, ContainerError> {
        let id = self.id().to_string();
        match self.status() {
            Status::Created => {}
            Status::Stopped => return Err(ContainerError::StartStopped { id }),
            _ => return Err(ContainerError::StartRunning { id }),
        }
        // The pidfd first: once the fifo is open the program may run and exit at once.
        let pidfd = self
            .init_pidfd()
            .ok_or(ContainerError::StartStopped { id: id.clone() })?;
        let fifo_path = self.dir.join(FIFO_FILE);
        // Non-blocking: a plain read-only open of a fifo would hang if the init died.
        let mut fifo = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo_path)
            .map_err(io_err("open exec fifo"))?;
        loop {
            let ready = syscall::poll_read(&[fifo.as_fd(), pidfd.as_fd()], -1)
                .map_err(io_err("wait for the container init"))?;
            if ready[0] != 0 {
                let mut b = [0u8; 1];
                match fifo.read(&mut b) {
                    Ok(1) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(io_err("read exec fifo")(e)),
                }
            }
            if ready[1] != 0 {
                return Err(ContainerError::StartStopped { id });
            }
        }
        std::fs::remove_file(&fifo_path).map_err(io_err("remove exec fifo"))?;
        let mut warnings = Vec::new();
        if let Some(h) = &self.spec().hooks {
            let st = serde_json::to_vec(&self.state.oci_state(Status::Running))
                .expect("state serializes");
            if let Err(e) = hooks::run("poststart", &h.poststart, &st) {
                warnings.push(crate::process::init::chain(&e));
            }
        }
        Ok(warnings)
    }
}
