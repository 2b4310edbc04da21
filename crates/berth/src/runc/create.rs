//! `create` and `run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_runtime::{syscall, Container, CreateOptions, Spec};

use super::attach::{self, ConsoleReceiver};
use super::log::Log;
use super::CreateArgs;

fn options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        spec: None,
    }
}

pub fn create(root: &Path, a: CreateArgs, log: &Log) -> Result<ExitCode> {
    let _ = a.no_new_keyring;
    Container::create(root, &a.id, &a.bundle, options(&a)).context("berth-runc create failed")?;
    log.debug(&format!("created container {}", a.id));
    Ok(ExitCode::SUCCESS)
}

pub fn run(root: &Path, a: CreateArgs, detach: bool, keep: bool, log: &Log) -> Result<ExitCode> {
    let spec = Spec::load(&a.bundle).context("berth-runc run failed")?;
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    if detach {
        if terminal && a.console_socket.is_none() {
            bail!("berth-runc run failed: cannot allocate tty if berth-runc will detach without setting console socket");
        }
        let c = Container::create(root, &a.id, &a.bundle, options(&a))
            .context("berth-runc run failed")?;
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(anyhow::Error::new(e).context("berth-runc run failed"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Foreground: we wait for the init, which is our grandchild.
    syscall::set_child_subreaper().context("become a child subreaper")?;
    attach::block_signals();
    let receiver = if terminal && a.console_socket.is_none() {
        Some(ConsoleReceiver::new()?)
    } else {
        None
    };
    let mut opts = options(&a);
    if let Some(r) = &receiver {
        opts.console_socket = Some(r.path.clone());
    }
    let c = Container::create(root, &a.id, &a.bundle, opts).context("berth-runc run failed")?;
    let master = match &receiver {
        Some(r) => Some(r.receive()?),
        None => None,
    };
    let started = c.start();
    let code = match started {
        Ok(warnings) => {
            for w in warnings {
                log.warn(&w);
            }
            attach::wait(c.pid(), master)?
        }
        Err(e) => {
            let _ = c.delete(true);
            return Err(anyhow::Error::new(e).context("berth-runc run failed"));
        }
    };
    if !keep {
        if let Ok(c) = Container::load(root, &a.id) {
            for w in c.delete(true).unwrap_or_default() {
                log.warn(&w);
            }
        }
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
