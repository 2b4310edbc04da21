//! Staying with a container process in the foreground (`run` and `exec` without `-d`):
//! signals this process receives go to the container process, its exit status becomes
//! ours, and with a terminal but no `--console-socket` the pty master is received here
//! and copied to and from our own terminal.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_runtime::syscall;

/// A private socket that receives the pty master from the container init.
pub struct ConsoleReceiver {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleReceiver {
    pub fn new() -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("berth-runc-console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("bind {}", path.display()))?;
        Ok(Self { listener, path })
    }

    pub fn receive(&self) -> Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .context("accept the console connection")?;
        let mut buf = [0u8; 4096];
        let (_, mut fds) =
            syscall::recv_fds(stream.as_fd(), &mut buf, 1).context("receive the pty master")?;
        fds.pop().context("the console message carried no fd")
    }
}

impl Drop for ConsoleReceiver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Blocks every signal so none is lost before [`wait`] forwards them. Call before the
/// container process is forked; the runtime unblocks them again in the container.
pub fn block_signals() {
    syscall::block_all_signals();
}

/// Waits for `pid` (a child or, with the subreaper flag, a grandchild) and returns its exit
/// code, forwarding signals and proxying the terminal.
pub fn wait(pid: i32, master: Option<OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let raw = match &master {
        Some(_) if syscall::isatty(stdin.as_fd()) => syscall::make_raw(stdin.as_fd()).ok(),
        _ => None,
    };
    if let Some(m) = &master {
        if let Ok((rows, cols)) = syscall::window_size(stdin.as_fd()) {
            let _ = syscall::set_window_size(m.as_fd(), rows, cols);
        }
    }
    let result = wait_loop(pid, master.as_ref());
    if let Some(t) = raw {
        syscall::restore_termios(stdin.as_fd(), &t);
    }
    result
}

fn wait_loop(pid: i32, master: Option<&OwnedFd>) -> Result<i32> {
    let mut stdin_open = true;
    let mut master_open = master.is_some();
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    loop {
        let sig = if master_open {
            let stdin = std::io::stdin();
            let m = master.expect("master_open implies a master");
            let fds = if stdin_open {
                vec![m.as_fd(), stdin.as_fd()]
            } else {
                vec![m.as_fd()]
            };
            let ready = syscall::poll_read(&fds, 20).context("poll the terminal")?;
            if ready[0] != 0 {
                match (&File::from(m.try_clone()?)).read(&mut buf) {
                    Ok(0) | Err(_) => master_open = false,
                    Ok(n) => {
                        out.write_all(&buf[..n])?;
                        out.flush()?;
                    }
                }
            }
            if stdin_open && ready.get(1).is_some_and(|r| *r != 0) {
                match std::io::stdin().lock().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let _ = (&File::from(m.try_clone()?)).write_all(&buf[..n]);
                    }
                }
            }
            syscall::wait_signal_timeout(0).context("wait for signals")?
        } else {
            Some(syscall::wait_signal().context("wait for signals")?)
        };
        match sig {
            None => {}
            Some(syscall::SIGCHLD) => {
                while let Some((p, status)) = syscall::waitpid(-1, true).unwrap_or(None) {
                    if p == pid {
                        return Ok(status.code());
                    }
                }
            }
            Some(syscall::SIGWINCH) => {
                if let Some(m) = master {
                    if let Ok((rows, cols)) = syscall::window_size(std::io::stdin().as_fd()) {
                        let _ = syscall::set_window_size(m.as_fd(), rows, cols);
                    }
                }
            }
            Some(s) => {
                let _ = syscall::kill(pid, s);
            }
        }
    }
}
