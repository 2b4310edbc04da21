//! `berth-runc init`: the child side of [`super`]'s protocol. Stage 1 enters the
//! namespaces and forks stage 2; stage 2 becomes the container init (create) or the
//! exec'd process. Every failure is sent to the runtime as `FromChild::Error` with the
//! whole cause chain.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use super::channel::{Channel, ChannelError};
use super::{console, finalize, namespace_flag, Bootstrap, FromChild, Kind, ToChild, INIT_FD_ENV};
use crate::caps::CapsError;
use crate::hooks::{self, HookError};
use crate::rootfs::{self, RootfsContext, RootfsError};
use crate::seccomp::SeccompError;
use crate::syscall::{self, Fork, LinuxSyscall};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("unexpected message from the runtime: {0}")]
    Protocol(String),
    #[error("the runtime went away")]
    RuntimeGone,
    #[error("join {kind} namespace {path}")]
    Join {
        kind: String,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("create namespaces")]
    Unshare(#[source] io::Error),
    #[error("fork the container process")]
    Fork(#[source] io::Error),
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    SeccompCompile(#[from] SeccompError),
    #[error("load the seccomp filter")]
    Seccomp(#[source] io::Error),
    #[error("unknown rlimit {0:?}")]
    UnknownRlimit(String),
    #[error("set {kind}")]
    Rlimit {
        kind: String,
        #[source]
        source: io::Error,
    },
    #[error("unknown personality domain {0:?}")]
    Personality(String),
    #[error("unknown scheduler setting {0:?}")]
    Scheduler(String),
    #[error("unknown io priority class {0:?}")]
    IoPriority(String),
    #[error("the config has no process")]
    NoProcess,
    #[error("a string holds a NUL byte")]
    Nul,
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("chdir to cwd ({cwd:?}) set in config.json")]
    Cwd {
        cwd: String,
        #[source]
        source: io::Error,
    },
    #[error("current working directory {0:?} is outside of container mount namespace root")]
    CwdOutsideRoot(String),
    #[error("unable to set {0} without a private UTS namespace")]
    NoUts(&'static str),
    #[error("exec {path}")]
    Exec {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The whole cause chain on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// Entry point of `berth-runc init`. Never returns.
pub fn main() -> ! {
    let Some(fd) = std::env::var(INIT_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        eprintln!("berth-runc init: this command is run by the runtime, not by hand");
        syscall::exit_immediately(1)
    };
    // SAFETY: the runtime passed this fd for our exclusive use (see fork::spawn_init).
    let chan = Channel::from_fd(unsafe { syscall::owned_fd(fd) }, "the runtime");
    let _ = syscall::set_cloexec(fd, true);
    let boot = match chan.recv::<ToChild>() {
        Ok(Some(ToChild::Bootstrap(b))) => b,
        _ => syscall::exit_immediately(1),
    };
    match stage1(&chan, &boot) {
        Ok(()) => syscall::exit_immediately(0),
        Err(e) => {
            let _ = chan.send(&FromChild::Error { message: chain(&e) });
            syscall::exit_immediately(1)
        }
    }
}

fn expect(chan: &Channel, want: &str) -> Result<(), InitError> {
    match chan.recv::<ToChild>()? {
        None => Err(InitError::RuntimeGone),
        Some(m) => {
            let got = format!("{m:?}");
            if got.starts_with(want) {
                Ok(())
            } else {
                Err(InitError::Protocol(got))
            }
        }
    }
}

/// Joins and creates namespaces, then forks stage 2.
fn stage1(chan: &Channel, boot: &Bootstrap) -> Result<(), InitError> {
    // Join the v1 cgroups by moving ourselves (writing "0" to `tasks`): the kernel skips
    // its global threadgroup lock for a thread moving itself, while moving another
    // process waits for an RCU grace period (about 10 ms) per container. Stage 2
    // inherits the cgroups; if this fails the runtime moves stage 2 instead.
    let v1_joined = boot
        .cgroup
        .v1
        .values()
        .all(|dir| std::fs::write(dir.join("tasks"), "0").is_ok());
    let mut joins = Vec::new();
    for (kind, path) in &boot.join {
        let (flag, _) = namespace_flag(kind).ok_or_else(|| InitError::Protocol(kind.clone()))?;
        let f = File::open(path).map_err(|source| InitError::Join {
            kind: kind.clone(),
            path: path.display().to_string(),
            source,
        })?;
        joins.push((kind, path, flag, f));
    }
    for (kind, path, flag, f) in &joins {
        syscall::setns(f.as_fd(), *flag).map_err(|source| InitError::Join {
            kind: kind.to_string(),
            path: path.display().to_string(),
            source,
        })?;
    }
    drop(joins);
    let new = |k: &str| boot.new.iter().any(|n| n == k);
    if new("user") {
        syscall::unshare(libc::CLONE_NEWUSER).map_err(InitError::Unshare)?;
        chan.send(&FromChild::WriteMappings {
            pid: syscall::gettid(),
        })?;
        expect(chan, "MappingsWritten")?;
        // Become the namespace's root when it is mapped.
        let _ = syscall::setresgid(0);
        let _ = syscall::setresuid(0);
    }
    let flags = boot
        .new
        .iter()
        .filter(|k| *k != "user" && *k != "cgroup")
        .filter_map(|k| namespace_flag(k))
        .fold(0, |acc, (f, _)| acc | f);
    if flags != 0 {
        syscall::unshare(flags).map_err(InitError::Unshare)?;
    }
    if new("time") {
        let linux = boot.spec.linux_or_default();
        let mut offsets = String::new();
        for (clock, off) in &linux.time_offsets {
            offsets.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
        }
        if !offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", offsets).map_err(|source| {
                InitError::Io {
                    what: "write time namespace offsets",
                    source,
                }
            })?;
        }
    }
    // Start stage 2 directly in the unified cgroup when there is one: moving it there
    // afterwards would cost the runtime a wait on the kernel's threadgroup lock.
    let unified = boot
        .cgroup
        .unified
        .as_ref()
        .and_then(|d| File::open(d).ok());
    let forked = match &unified {
        // SAFETY: this process is single-threaded (a fresh exec of the berth binary).
        Some(dir) => match unsafe { syscall::fork_into_cgroup(dir.as_fd()) } {
            Ok(f) => Ok((f, true)),
            // SAFETY: as above.
            Err(_) => unsafe { syscall::fork() }.map(|f| (f, false)),
        },
        // SAFETY: as above.
        None => unsafe { syscall::fork() }.map(|f| (f, false)),
    };
    drop(unified);
    match forked.map_err(InitError::Fork)? {
        (Fork::Parent(pid), in_unified) => {
            let joined = v1_joined && (boot.cgroup.unified.is_none() || in_unified);
            chan.send(&FromChild::Pid { pid, joined })?;
            Ok(())
        }
        (Fork::Child, _) => {
            let err = match stage2(chan, boot) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = chan.send(&FromChild::Error {
                message: chain(&err),
            });
            syscall::exit_immediately(1)
        }
    }
}

fn stage2(chan: &Channel, boot: &Bootstrap) -> Result<Infallible, InitError> {
    // Other processes in the container must not reach into us (/proc/1/fd, /proc/1/exe)
    // while we still hold runtime resources.
    let _ = syscall::set_dumpable(false);
    expect(chan, "CgroupJoined")?;
    syscall::setsid().map_err(|source| InitError::Io {
        what: "setsid",
        source,
    })?;
    match boot.kind {
        Kind::Create => container_init(chan, boot),
        Kind::Exec => exec_process(boot),
    }
}

fn console_fd(boot: &Bootstrap) -> Option<BorrowedFd<'static>> {
    // SAFETY: the runtime passed this fd open and it stays open for this process's life
    // (it is close-on-exec, so the container program never sees it).
    boot.console_fd
        .map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
}

fn state_json(boot: &Bootstrap, status: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "id": boot.id,
        "status": status,
        "pid": syscall::gettid(),
        "bundle": boot.bundle,
        "annotations": boot.spec.annotations,
    }))
    .expect("state serializes")
}

fn container_init(chan: &Channel, boot: &Bootstrap) -> Result<Infallible, InitError> {
    let spec = &boot.spec;
    let process = spec.process.as_ref().ok_or(InitError::NoProcess)?;
    if boot.new.iter().any(|n| n == "cgroup") {
        syscall::unshare(libc::CLONE_NEWCGROUP).map_err(InitError::Unshare)?;
    }
    syscall::umask(0);
    let sys = LinuxSyscall;
    rootfs::prepare(
        &sys,
        &RootfsContext {
            spec,
            rootfs: &boot.rootfs,
            bundle: &boot.bundle,
            cgroup: &boot.cgroup,
            new_cgroupns: boot.new.iter().any(|n| n == "cgroup"),
            new_userns: boot.new.iter().any(|n| n == "user"),
        },
    )?;
    if boot.runtime_hooks {
        chan.send(&FromChild::RunHooks)?;
        expect(chan, "HooksDone")?;
    }
    if let Some(h) = &spec.hooks {
        hooks::run(
            "createContainer",
            &h.create_container,
            &state_json(boot, "created"),
        )?;
    }
    rootfs::pivot(&sys, &boot.rootfs, boot.no_pivot)?;
    let has_uts = spec.namespace("uts").is_some();
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        if !has_uts {
            return Err(InitError::NoUts("hostname"));
        }
        syscall::sethostname(h).map_err(|source| InitError::Io {
            what: "set hostname",
            source,
        })?;
    }
    if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        if !has_uts {
            return Err(InitError::NoUts("domainname"));
        }
        syscall::setdomainname(d).map_err(|source| InitError::Io {
            what: "set domainname",
            source,
        })?;
    }
    if process.terminal {
        let sock = console_fd(boot).ok_or(InitError::Io {
            what: "terminal requested without a console socket",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        console::setup(sock, process.console_size, true)?;
    }
    rootfs::finish(&sys, spec)?;
    let prepared = finalize::prepare(spec, boot.preserve_fds, true)?;
    // After the user switch the kernel made us non-dumpable; /proc/self/fd must be
    // reachable for the fifo below.
    let _ = syscall::set_dumpable(true);
    chan.send(&FromChild::Ready)?;

    // Errors from here on cannot reach `create` any more (it has returned): they go to
    // the container's stderr, as runc's do.
    let fail = |what: &str, e: &dyn std::error::Error| -> ! {
        let _ = writeln!(io::stderr(), "berth-runc init: {what}: {}", chain(e));
        syscall::exit_immediately(1)
    };
    let fifo_fd = boot.fifo_fd.unwrap_or(-1);
    let mut fifo = match OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fifo_fd}"))
    {
        Ok(f) => f,
        Err(e) => fail("open exec fifo", &e),
    };
    if let Err(e) = fifo.write_all(b"0") {
        fail("write exec fifo", &e);
    }
    drop(fifo);
    if let Some(h) = &spec.hooks {
        if let Err(e) = hooks::run(
            "startContainer",
            &h.start_container,
            &state_json(boot, "running"),
        ) {
            fail("startContainer hook", &e);
        }
    }
    let e = finalize::exec(prepared);
    fail("exec", &e)
}

fn exec_process(boot: &Bootstrap) -> Result<Infallible, InitError> {
    let process = boot.spec.process.as_ref().ok_or(InitError::NoProcess)?;
    if process.terminal {
        let sock = console_fd(boot).ok_or(InitError::Io {
            what: "terminal requested without a console socket",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        console::setup(sock, process.console_size, false)?;
    }
    let prepared = finalize::prepare(&boot.spec, boot.preserve_fds, false)?;
    // The channel is close-on-exec: the runtime reads end-of-file once execve succeeded.
    Err(finalize::exec(prepared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_is_one_line_without_repeats() {
        let e = InitError::Cwd {
            cwd: "/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            chain(&e),
            r#"chdir to cwd ("/x") set in config.json: No such file or directory (os error 2)"#
        );
    }
}
