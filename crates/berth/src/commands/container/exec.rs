//! `berth exec [-i] [-t] [-d] [-e] [-u] [-w] CONTAINER CMD...`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result};
use berth_engine::exec::ExecOptions;
use rustix::event::{poll, PollFd, PollFlags};

use super::args::ExecArgs;
use super::{attach::RawTerminal, engine, EXIT_ERROR};
use crate::commands::Ctx;

fn code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    ExitCode::from(code.clamp(0, 255) as u8)
}

pub fn exec(ctx: &Ctx, a: ExecArgs) -> Result<ExitCode> {
    let engine = engine(ctx)?;
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        detach: a.detach,
    };
    let mut prepared = match engine.prepare_exec(&a.container, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth: exec {}: {e}", a.container);
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let result = run(&mut prepared, &a);
    let _ = std::fs::remove_dir_all(&prepared.scratch);
    result
}

fn run(prepared: &mut berth_engine::exec::PreparedExec, a: &ExecArgs) -> Result<ExitCode> {
    let stdin = if a.interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let Some(sock) = prepared.console_socket.clone() else {
        let status = prepared
            .command
            .stdin(stdin)
            .status()
            .context("run the runtime's exec")?;
        return Ok(code_of(status));
    };
    let listener = std::os::unix::net::UnixListener::bind(&sock)
        .with_context(|| format!("listen on {}", sock.display()))?;
    let mut child = prepared
        .command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("run the runtime's exec")?;
    let master =
        berth_engine::supervisor::receive_pty(&listener).context("receive the exec's terminal")?;
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout().as_fd()) {
        let _ = rustix::termios::tcsetwinsize(&master, size);
    }
    if a.detach {
        return Ok(code_of(child.wait()?));
    }
    let _raw = a.interactive.then(RawTerminal::enable);
    let mut buf = vec![0u8; 32 << 10];
    let mut input = a.interactive;
    let stdin = std::io::stdin();
    loop {
        let mut fds = vec![PollFd::new(&master, PollFlags::IN)];
        if input {
            fds.push(PollFd::from_borrowed_fd(stdin.as_fd(), PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let (m, i) = (fds[0].revents(), fds.get(1).map(|f| f.revents()));
        if !m.is_empty() {
            match rustix::io::read(&master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => break,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if i.is_some_and(|r| !r.is_empty()) {
            let n = stdin.lock().read(&mut buf)?;
            if n == 0 {
                input = false;
            } else {
                rustix::io::write(&master, &buf[..n])?;
            }
        }
    }
    Ok(code_of(child.wait()?))
}
