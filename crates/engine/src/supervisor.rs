//! The per-container supervisor: a small process (`berth` re-executed, like Podman's
//! conmon) that creates the container through the runtime, owns its stdio and log file,
//! waits for it to exit, records the exit status, restarts it per policy and cleans up
//! (network, rootfs, runtime state). It reports to the CLI that started it over a status
//! pipe: `started <pid>`, `error <message>`, then `exited <code>`.
//!
//! Single-threaded: one poll loop over the output pipes (or the pty), the caller's stdin
//! when attached, and a pidfd for the container's init.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

use crate::logs::{LogWriter, Stream};
use crate::runtime::{CreateStdio, Runtime};
use crate::state::{ContainerConfig, RestartPolicy, Status};
use crate::status::{now_rfc3339, start_time};
use crate::{Engine, EngineError};

/// Where the supervisor tells the CLI how things went.
pub struct StatusPipe(Option<File>);

impl StatusPipe {
    /// # Safety
    /// `fd` must be an open file descriptor this process owns and nothing else uses.
    pub unsafe fn from_raw(fd: i32) -> Self {
        // SAFETY: the caller guarantees `fd` is open and exclusively ours.
        Self(Some(unsafe { File::from_raw_fd(fd) }))
    }

    pub fn none() -> Self {
        Self(None)
    }

    fn say(&mut self, line: &str) {
        if let Some(f) = &mut self.0 {
            if f.write_all(format!("{line}\n").as_bytes()).is_err() {
                // The CLI went away (`run -d` returned): nobody is listening any more.
                self.0 = None;
            }
        }
    }
}

/// How the supervisor was started.
pub struct SuperviseOptions {
    /// stdin/stdout/stderr are the CLI's: forward output there, input from there.
    pub attached: bool,
}

fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        255
    }
}

/// Whether the memory cgroup recorded an OOM kill (v2 `memory.events`, v1
/// `memory.oom_control`).
fn oom_killed(id: &str) -> bool {
    let count = |path: PathBuf| -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    };
    count(PathBuf::from(format!(
        "/sys/fs/cgroup/berth/{id}/memory.events"
    ))) > 0
        || count(PathBuf::from(format!(
            "/sys/fs/cgroup/memory/berth/{id}/memory.oom_control"
        ))) > 0
}

fn should_restart(policy: &RestartPolicy, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
    if stopped_by_user {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure(max) => code != 0 && (*max == 0 || restarts < *max),
    }
}

impl Engine {
    /// Runs the supervisor for container `id` until it is done with it. Returns the exit
    /// code for the supervisor process.
    pub fn supervise(&self, id: &str, options: SuperviseOptions, mut status: StatusPipe) -> i32 {
        // Own session: a Ctrl-C in the terminal of `berth run` is for the container (the CLI
        // forwards it), not for the supervisor.
        let _ = rustix::process::setsid();
        // SAFETY: setting SIGPIPE to ignored has no preconditions; writes to a vanished
        // reader then fail with EPIPE instead of killing the supervisor.
        unsafe {
            libc_sigpipe_ignore();
        }
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        let runtime = Runtime::new(&self.run_root);
        let mut attached = options.attached;
        let mut delay = Duration::from_millis(100);
        loop {
            let config = match self.containers.config(id) {
                Ok(c) => c,
                Err(e) => {
                    status.say(&format!("error {e}"));
                    return 1;
                }
            };
            let outcome = self.run_once(&config, &runtime, attached, &mut status);
            attached = false;
            let code = match outcome {
                Ok(code) => code,
                Err(e) => {
                    let message = error_chain(&e);
                    if let Ok(mut st) = self.containers.state(id) {
                        st.status = if st.started_at.is_empty() {
                            Status::Created
                        } else {
                            Status::Exited
                        };
                        st.error = message.clone();
                        st.exit_code = Some(st.exit_code.unwrap_or(128));
                        st.supervisor_pid = None;
                        st.pid = None;
                        let _ = self.containers.save_state(id, &st);
                    }
                    status.say(&format!("error {message}"));
                    if config.auto_remove {
                        let _ = self.remove_records(&config, true, false);
                    }
                    return 1;
                }
            };
            let Ok(mut st) = self.containers.state(id) else {
                return 1;
            };
            if should_restart(&config.restart, code, st.restart_count, st.stopped_by_user) {
                st.status = Status::Restarting;
                st.restart_count += 1;
                let _ = self.containers.save_state(id, &st);
                status.say(&format!("exited {code}"));
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(60));
                continue;
            }
            st.supervisor_pid = None;
            st.supervisor_start = None;
            let _ = self.containers.save_state(id, &st);
            status.say(&format!("exited {code}"));
            if config.auto_remove {
                let _ = self.remove_records(&config, true, true);
            }
            return 0;
        }
    }

    /// One life of the container: prepare, create, connect, start, pump output, clean up.
    fn run_once(
        &self,
        config: &ContainerConfig,
        runtime: &Runtime,
        attached: bool,
        status: &mut StatusPipe,
    ) -> Result<i32, EngineError> {
        let id = &config.id;
        let dir = self.containers.dir(id);
        let prepared = self.prepare(config)?;
        let mut log =
            LogWriter::open(&dir.join("container.log")).map_err(|source| EngineError::Io {
                op: "open",
                path: dir.join("container.log"),
                source,
            })?;
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| EngineError::Io {
                op: "create pipe for",
                path: dir.clone(),
                source: e.into(),
            })
        };

        // Standard streams: a pty (through the runtime's console socket) or pipes.
        // Under the run root with a short name: a socket path must fit in 108 bytes.
        let console_dir = self.run_root.join("console");
        let _ = std::fs::create_dir_all(&console_dir);
        let console_path = console_dir.join(format!("{}.sock", &id[..12]));
        let (listener, out_r, err_r, stdio) = if config.tty {
            let _ = std::fs::remove_file(&console_path);
            let listener =
                std::os::unix::net::UnixListener::bind(&console_path).map_err(|source| {
                    EngineError::Io {
                        op: "listen on",
                        path: console_path.clone(),
                        source,
                    }
                })?;
            let stdio = CreateStdio {
                stdin: None,
                stdout: None,
                stderr: None,
            };
            (Some(listener), None, None, stdio)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin = if attached && config.open_stdin {
                Some(
                    std::io::stdin()
                        .as_fd()
                        .try_clone_to_owned()
                        .map_err(|source| EngineError::Io {
                            op: "duplicate stdin for",
                            path: dir.clone(),
                            source,
                        })?,
                )
            } else {
                None
            };
            let stdio = CreateStdio {
                stdin,
                stdout: Some(out_w),
                stderr: Some(err_w),
            };
            (None, Some(out_r), Some(err_r), stdio)
        };
        let created = runtime.create(
            id,
            &prepared.bundle,
            listener.as_ref().map(|_| console_path.as_path()),
            stdio,
        );
        let pid = match created {
            Ok(pid) => pid,
            Err(mut e) => {
                // The runtime reports on its stderr, which is the container's: take the
                // message from there when its log has none.
                if let (crate::runtime::RuntimeError::Failed { message, .. }, Some(err)) =
                    (&mut e, &err_r)
                {
                    if message.is_empty() {
                        *message = crate::runtime::message_of(&drain(err));
                    }
                }
                let _ = prepared.overlay.unmount();
                return Err(EngineError::Runtime(e));
            }
        };
        let master = match &listener {
            Some(l) => match receive_pty(l) {
                Ok(m) => Some(m),
                Err(source) => {
                    self.teardown(config, runtime);
                    return Err(EngineError::Io {
                        op: "receive the pty from",
                        path: console_path,
                        source,
                    });
                }
            },
            None => None,
        };
        if let (Some(m), true) = (&master, attached) {
            copy_window_size(m.as_fd());
        }
        let (networks, published) = match self.connect_networks(config, pid) {
            Ok(n) => n,
            Err(e) => {
                self.teardown(config, runtime);
                return Err(e);
            }
        };
        let pidfd = rustix::process::pidfd_open(
            Pid::from_raw(pid).expect("runtime pid is positive"),
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| EngineError::Io {
            op: "watch the container's process in",
            path: dir.clone(),
            source: e.into(),
        })?;
        if let Err(mut e) = runtime.start(id) {
            // The init may have said why it died on its stderr (the container's).
            if let (crate::runtime::RuntimeError::Failed { message, .. }, Some(err)) =
                (&mut e, &err_r)
            {
                let said = crate::runtime::message_of(&drain(err));
                if !said.is_empty() {
                    message.push_str(": ");
                    message.push_str(&said);
                }
            }
            self.teardown(config, runtime);
            return Err(EngineError::Runtime(e));
        }
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut st = self.containers.state(id)?;
        st.status = Status::Running;
        st.pid = Some(pid);
        st.supervisor_pid = Some(me);
        st.supervisor_start = start_time(me);
        st.started_at = now_rfc3339();
        st.finished_at.clear();
        st.exit_code = None;
        st.error.clear();
        st.oom_killed = false;
        st.networks = networks;
        st.published = published;
        self.containers.save_state(id, &st)?;
        status.say(&format!("started {pid}"));

        // Attach clients are a convenience: without the socket the container still runs.
        let mut attach_server = crate::attach::AttachServer::bind(&self.run_root, id).ok();
        let mut pump = Pump {
            log: &mut log,
            attach: attach_server.as_mut(),
            forward: attached,
            follow_size: false,
            last_size: None,
        };
        let wait = match &master {
            Some(m) => {
                pump.follow_size = attached;
                let input = (attached && config.open_stdin).then_some(m);
                pump.run(&[(m, Stream::Stdout)], input, &pidfd, pid)
            }
            None => pump.run(
                &[
                    (out_r.as_ref().expect("pipes"), Stream::Stdout),
                    (err_r.as_ref().expect("pipes"), Stream::Stderr),
                ],
                None,
                &pidfd,
                pid,
            ),
        };
        let code = wait.map_err(|source| EngineError::Io {
            op: "supervise",
            path: dir.clone(),
            source,
        })?;
        let oom = oom_killed(id);
        self.teardown(config, runtime);
        let mut st = self.containers.state(id)?;
        st.status = Status::Exited;
        st.exit_code = Some(code);
        st.oom_killed = oom;
        st.finished_at = now_rfc3339();
        st.pid = None;
        st.published.clear();
        self.containers.save_state(id, &st)?;
        if let Some(a) = attach_server.as_mut() {
            a.exited(code);
        }
        Ok(code)
    }

    /// Undoes what a start set up: runtime state and cgroup, network, rootfs mount.
    pub fn teardown(&self, config: &ContainerConfig, runtime: &Runtime) {
        let _ = runtime.delete(&config.id);
        let _ = std::fs::remove_file(
            self.run_root
                .join("console")
                .join(format!("{}.sock", &config.id[..12])),
        );
        self.disconnect_networks(config);
        let _ = self.overlay(&config.id).unmount();
    }
}

/// Whatever is buffered in a pipe, without blocking.
fn drain(fd: &OwnedFd) -> Vec<u8> {
    let _ = rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// # Safety
/// Changes the process-wide disposition of SIGPIPE; call before any thread is spawned.
unsafe fn libc_sigpipe_ignore() {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE and the supervisor is
    // single-threaded; the caller upholds the rest.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Accepts the runtime's connection on the console socket and takes the pty master it
/// sends (SCM_RIGHTS).
pub fn receive_pty(listener: &std::os::unix::net::UnixListener) -> std::io::Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let (stream, _) = listener.accept()?;
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(&stream, &mut iov, &mut ancillary, RecvFlags::CMSG_CLOEXEC)?;
    for msg in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::other(
        "no pty master received on the console socket",
    ))
}

/// Gives the pty the size of the terminal berth was started from.
fn copy_window_size(master: BorrowedFd<'_>) -> Option<rustix::termios::Winsize> {
    let stdout = std::io::stdout();
    let size = rustix::termios::tcgetwinsize(stdout.as_fd()).ok()?;
    let _ = rustix::termios::tcsetwinsize(master, size);
    Some(size)
}

/// Moves output from the container to the log (and to the attached terminal).
struct Pump<'a> {
    log: &'a mut LogWriter,
    /// Clients of `berth attach`.
    attach: Option<&'a mut crate::attach::AttachServer>,
    forward: bool,
    /// Give the pty the attached terminal's size (tty mode).
    follow_size: bool,
    last_size: Option<(u16, u16)>,
}

fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::IO) => return Ok(0), // pty closed
            Err(e) => return Err(e.into()),
        }
    }
}

impl Pump<'_> {
    fn emit(&mut self, stream: Stream, data: &[u8]) {
        let _ = self.log.write(stream, data);
        if let Some(a) = self.attach.as_mut() {
            a.output(stream, data);
        }
        if self.forward {
            let ok = match stream {
                Stream::Stdout => std::io::stdout()
                    .write_all(data)
                    .and_then(|()| std::io::stdout().flush()),
                Stream::Stderr => std::io::stderr().write_all(data),
            };
            if ok.is_err() {
                self.forward = false;
            }
        }
    }

    fn reap(pid: i32) -> std::io::Result<i32> {
        let status = rustix::process::waitpid(
            Some(Pid::from_raw(pid).expect("positive pid")),
            WaitOptions::empty(),
        )?;
        Ok(status.map_or(255, |(_, s)| exit_code(s)))
    }

    /// Copies output until the container has exited and its outputs are closed (or, if
    /// something inherited them and lives on, a moment after the exit). With `input`, the
    /// attached stdin goes to the given descriptor (the pty); with `follow_size`, the pty
    /// takes the attached terminal's size whenever it changes.
    fn run(
        &mut self,
        outputs: &[(&OwnedFd, Stream)],
        input: Option<&OwnedFd>,
        pidfd: &OwnedFd,
        pid: i32,
    ) -> std::io::Result<i32> {
        let mut buf = vec![0u8; 64 << 10];
        let stdin = std::io::stdin();
        let mut open: Vec<bool> = vec![true; outputs.len()];
        let mut input = input;
        let mut code = None;
        let mut deadline: Option<Instant> = None;
        loop {
            if code.is_some() && !open.iter().any(|o| *o) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                break;
            }
            if let (Some(master), true) =
                (outputs.first().filter(|_| self.follow_size), self.forward)
            {
                if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout().as_fd()) {
                    let key = (size.ws_row, size.ws_col);
                    if self.last_size != Some(key) {
                        let _ = rustix::termios::tcsetwinsize(master.0, size);
                        self.last_size = Some(key);
                    }
                }
            }
            let mut fds = Vec::with_capacity(outputs.len() + 2);
            for ((fd, _), o) in outputs.iter().zip(&open) {
                if *o {
                    fds.push(PollFd::new(*fd, PollFlags::IN));
                }
            }
            if input.is_some() {
                fds.push(PollFd::from_borrowed_fd(stdin.as_fd(), PollFlags::IN));
            }
            if code.is_none() {
                fds.push(PollFd::new(pidfd, PollFlags::IN));
            }
            let listener = self.attach.as_ref().map(|a| a.fd().as_raw_fd());
            let listener_fd = self.attach.as_ref().map(|a| a.fd());
            if let Some(fd) = listener_fd {
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            }
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<i32> = fds
                .iter()
                .filter(|f| !f.revents().is_empty())
                .map(|f| f.as_fd().as_raw_fd())
                .collect();
            drop(fds);
            for fd in ready {
                if Some(fd) == listener {
                    if let Some(a) = self.attach.as_mut() {
                        a.accept();
                    }
                } else if fd == pidfd.as_raw_fd() {
                    code = Some(Self::reap(pid)?);
                    deadline = Some(Instant::now() + Duration::from_secs(2));
                } else if let Some(i) = outputs.iter().position(|(o, _)| o.as_raw_fd() == fd) {
                    let n = read_some(outputs[i].0.as_fd(), &mut buf)?;
                    if n == 0 {
                        open[i] = false;
                    } else {
                        let data = buf[..n].to_vec();
                        self.emit(outputs[i].1, &data);
                    }
                } else if let Some(target) = input {
                    let n = std::io::stdin().lock().read(&mut buf)?;
                    if n == 0 {
                        input = None;
                    } else {
                        rustix::io::write(target, &buf[..n])?;
                    }
                }
            }
        }
        Ok(code.unwrap_or(255))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_follow_docker() {
        assert!(!should_restart(&RestartPolicy::No, 1, 0, false));
        assert!(should_restart(&RestartPolicy::Always, 0, 5, false));
        assert!(!should_restart(&RestartPolicy::Always, 0, 5, true));
        assert!(should_restart(&RestartPolicy::OnFailure(2), 1, 1, false));
        assert!(!should_restart(&RestartPolicy::OnFailure(2), 1, 2, false));
        assert!(!should_restart(&RestartPolicy::OnFailure(0), 0, 0, false));
        assert!(should_restart(&RestartPolicy::UnlessStopped, 0, 0, false));
    }
}
