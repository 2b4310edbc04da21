//! The terminal side of the serial console: `berth vm console` proxies the terminal, in
//! raw mode, to the VM's console socket until Ctrl-] (as `virsh console`), and
//! `follow_log` prints the console log as it grows, for `vm create` without a terminal.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_virt::Vms;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};

/// Ctrl-]: the escape character that detaches, as in virsh and telnet.
const ESCAPE: u8 = 0x1d;

/// How an attached session or a log follow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The user pressed Ctrl-] (or closed the terminal).
    Detached,
    /// QEMU exited: the guest powered off (or rebooted out of an install run).
    GuestStopped,
    /// `--wait` ran out.
    TimedOut,
}

pub fn attach(vms: &Vms, name: &str) -> Result<ExitCode> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "console {name}: the console needs a terminal on stdin (the boot output is in {})",
            vms.console_log_path(name)?.display()
        );
    }
    attach_session(vms, name)?;
    Ok(ExitCode::SUCCESS)
}

/// Restores the terminal's settings when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).context("read the terminal settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw)
            .context("set the terminal to raw mode")?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// Proxies the terminal to the console until Ctrl-] or until QEMU exits.
pub fn attach_session(vms: &Vms, name: &str) -> Result<Ended> {
    let session = vms.console(name)?;
    let mut sock = session.stream;
    let mut out = std::io::stdout();
    // Still in cooked mode: the terminal turns \n into \r\n itself.
    println!("Connected to domain '{name}'\nEscape character is ^] (Ctrl + ])");
    out.flush()?;
    let raw = RawMode::enter()?;
    let stdin = std::io::stdin();
    let mut buf = [0u8; 4096];
    let ended = loop {
        let mut fds = [
            PollFd::new(&stdin, PollFlags::IN),
            PollFd::new(&sock, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(std::io::Error::from(e)).context("poll the console"),
        }
        let (term, guest) = (fds[0].revents(), fds[1].revents());
        if !guest.is_empty() {
            let n = sock.read(&mut buf).context("read from the console")?;
            if n == 0 {
                break Ended::GuestStopped;
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
        if term.contains(PollFlags::IN) {
            let n = rustix::io::read(stdin.as_fd(), &mut buf).context("read the terminal")?;
            if n == 0 {
                break Ended::Detached;
            }
            let data = &buf[..n];
            if let Some(i) = data.iter().position(|b| *b == ESCAPE) {
                sock.write_all(&data[..i])?;
                break Ended::Detached;
            }
            sock.write_all(data).context("write to the console")?;
        } else if term.intersects(PollFlags::HUP | PollFlags::ERR) {
            break Ended::Detached;
        }
    };
    drop(raw);
    println!();
    if ended == Ended::GuestStopped {
        // The socket closes as QEMU exits; let it finish so the caller sees it shut off.
        vms.wait_shut_off(name, Some(Duration::from_secs(10)));
    }
    Ok(ended)
}

/// Prints the console log from its start as it grows, until QEMU exits or `wait` passes.
pub fn follow_log(vms: &Vms, name: &str, log: &Path, wait: Option<Duration>) -> Result<Ended> {
    let deadline = wait.map(|w| Instant::now() + w);
    let mut file: Option<File> = None;
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    let mut drain = |file: &mut Option<File>, offset: &mut u64| -> Result<()> {
        if file.is_none() {
            *file = File::open(log).ok();
        }
        let Some(f) = file.as_mut() else {
            return Ok(());
        };
        // A new run truncates the log: start over.
        if f.metadata().map(|m| m.len()).unwrap_or(0) < *offset {
            *offset = 0;
        }
        f.seek(SeekFrom::Start(*offset))?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            *offset += n as u64;
        }
        out.flush()?;
        Ok(())
    };
    loop {
        let alive = vms.qemu_alive(name);
        drain(&mut file, &mut offset)?;
        if !alive {
            vms.wait_shut_off(name, Some(Duration::from_secs(10)));
            return Ok(Ended::GuestStopped);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Ended::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
