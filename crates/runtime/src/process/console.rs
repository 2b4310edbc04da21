//! The container's terminal (`process.terminal`): a pty from the container's own devpts,
//! its master sent over `--console-socket` with SCM_RIGHTS (the payload is the pty's
//! name, as runc sends it), its slave made stdio, controlling terminal, and `/dev/console`.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use super::init::InitError;
use crate::rootfs::secure::{create_file_in_root, fd_path};
use crate::spec::ConsoleSize;
use crate::syscall::{self, LinuxSyscall, Syscall};

pub fn setup(
    socket: BorrowedFd<'_>,
    size: Option<ConsoleSize>,
    mount_console: bool,
) -> Result<(), InitError> {
    let io = |what| move |source| InitError::Io { what, source };
    let (master, name) = syscall::open_pty().map_err(io("open a pty"))?;
    let slave = syscall::open_pty_peer(master.as_fd()).map_err(io("open the pty slave"))?;
    if let Some(s) = size {
        syscall::set_window_size(master.as_fd(), s.height, s.width)
            .map_err(io("set the console size"))?;
    }
    if mount_console {
        let root = File::open("/").map_err(io("open /"))?;
        let target = create_file_in_root(root.as_fd(), Path::new("/dev/console"))
            .map_err(io("create /dev/console"))?;
        LinuxSyscall
            .mount(
                Some(&name),
                &fd_path(target.as_fd()),
                Some("bind"),
                libc::MS_BIND,
                None,
            )
            .map_err(io("bind the pty to /dev/console"))?;
    }
    let name_bytes = name.to_string_lossy().into_owned().into_bytes();
    syscall::send_fds(socket, &name_bytes, &[master.as_raw_fd()])
        .map_err(io("send the pty master to the console socket"))?;
    drop(master);
    for fd in 0..3 {
        syscall::dup2(slave.as_raw_fd(), fd).map_err(io("make the pty stdio"))?;
    }
    syscall::set_controlling_terminal(slave.as_fd()).map_err(io("set the controlling terminal"))?;
    Ok(())
}
