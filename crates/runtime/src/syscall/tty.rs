//! Terminals: opening a pty pair, making one the controlling terminal, window sizes and raw
//! mode. Used by `process::console` and the attach loops in `berth`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::check;

/// Makes `fd` (a terminal) the controlling terminal of this session.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` that lives across the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// The window size of a terminal: (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize that lives across the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Opens a pty pair: (master, slave path) from the `/dev/ptmx` in the current mount tree.
pub fn open_pty() -> io::Result<(OwnedFd, std::path::PathBuf)> {
    // SAFETY: the path is a constant C string.
    let master = check(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a new fd nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int that lives across the call.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok((master, std::path::PathBuf::from(format!("/dev/pts/{n}"))))
}

/// Opens the slave side of a pty through the master (`TIOCGPTPEER`), immune to path games.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let fd = check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Puts the terminal on `fd` into raw mode; returns the previous settings.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid out-pointer.
    check(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    let old = t;
    // SAFETY: cfmakeraw edits `t` in place.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `t` is a valid in-pointer.
    check(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) })?;
    Ok(old)
}

pub fn restore_termios(fd: BorrowedFd<'_>, t: &libc::termios) {
    // SAFETY: `t` is a valid in-pointer.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, t) };
}

pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: integer argument only.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}
