//! `berth stop`, `kill`, `wait`: signals go straight to the container's init (its pid is
//! recorded and checked against the container's cgroup); waiting watches the supervisor
//! with a pidfd, so `stop` returns as soon as the container is down and cleaned up.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::state::{ContainerConfig, ContainerState, Status};
use crate::status::alive;
use crate::{Engine, EngineError};

/// `TERM`, `SIGTERM`, `15` → 15 (the runtime's table, shared with `berth-runc kill`).
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    berth_runtime::signal::parse(s).map_err(|_| EngineError::InvalidSignal(s.to_string()))
}

fn send(pid: i32, sig: i32) -> Result<(), EngineError> {
    // SAFETY: `Signal::from_raw_unchecked` only wraps the number; the kernel validates it
    // and parse_signal limited it to 1..=64.
    let signal = unsafe { Signal::from_raw_unchecked(sig) };
    rustix::process::kill_process(Pid::from_raw(pid).expect("positive pid"), signal).map_err(|e| {
        EngineError::Io {
            op: "signal",
            path: format!("/proc/{pid}").into(),
            source: e.into(),
        }
    })
}

impl Engine {
    fn running(&self, key: &str) -> Result<(ContainerConfig, ContainerState), EngineError> {
        let id = self.containers.resolve(key)?;
        let (config, state) = self.load(&id)?;
        if !matches!(state.status, Status::Running | Status::Paused) || state.pid.is_none() {
            return Err(EngineError::NotRunning { name: config.name });
        }
        Ok((config, state))
    }

    fn mark_stopped_by_user(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.containers.state(id)?;
        st.stopped_by_user = true;
        self.containers.save_state(id, &st)?;
        Ok(())
    }

    /// `kill -s SIGNAL`: returns the container id.
    pub fn kill(&self, key: &str, signal: &str) -> Result<String, EngineError> {
        let sig = parse_signal(signal)?;
        let (config, state) = self.running(key)?;
        if sig == 9 || sig == 15 {
            self.mark_stopped_by_user(&config.id)?;
        }
        send(state.pid.expect("running has a pid"), sig)?;
        Ok(config.id)
    }

    /// Waits until the supervisor has finished with the container (exit recorded, cleaned
    /// up) or `timeout` passes. Returns whether it finished.
    pub fn wait_supervisor(&self, state: &ContainerState, timeout: Duration) -> bool {
        let Some(sup) = state.supervisor_pid else {
            return true;
        };
        if !alive(sup, state.supervisor_start) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        if let Ok(fd) = rustix::process::pidfd_open(
            Pid::from_raw(sup).expect("positive pid"),
            rustix::process::PidfdFlags::empty(),
        ) {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                let ts = rustix::event::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                };
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(n) if n > 0 => return true,
                    Ok(_) => return false,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
        }
        while Instant::now() < deadline {
            if !alive(sup, state.supervisor_start) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL and wait for the supervisor to clean up.
    pub(crate) fn kill_now(
        &self,
        config: &ContainerConfig,
        state: &ContainerState,
    ) -> Result<(), EngineError> {
        self.mark_stopped_by_user(&config.id)?;
        if let Some(pid) = state.pid {
            let _ = send(pid, 9);
        }
        if !self.wait_supervisor(state, Duration::from_secs(10)) {
            return Err(EngineError::StopTimeout {
                name: config.name.clone(),
            });
        }
        Ok(())
    }

    /// `stop [-t N] [-s SIG]`: the stop signal, then SIGKILL after the timeout (Docker's
    /// default 10 s). A container that is not running is fine (Docker prints its name).
    pub fn stop(
        &self,
        key: &str,
        timeout: Option<u64>,
        signal: Option<&str>,
    ) -> Result<String, EngineError> {
        let id = self.containers.resolve(key)?;
        let (config, state) = self.load(&id)?;
        if !matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return Ok(id);
        }
        self.mark_stopped_by_user(&id)?;
        let sig = parse_signal(signal.unwrap_or(&config.stop_signal))?;
        let timeout = Duration::from_secs(timeout.or(config.stop_timeout).unwrap_or(10));
        if let Some(pid) = state.pid {
            let _ = send(pid, sig);
        }
        if !self.wait_supervisor(&state, timeout) {
            self.kill_now(&config, &state)?;
        }
        Ok(id)
    }

    /// `wait`: blocks until the container exits; returns its exit code.
    pub fn wait(&self, key: &str) -> Result<i32, EngineError> {
        let id = self.containers.resolve(key)?;
        loop {
            let (_, state) = self.load(&id)?;
            match state.status {
                Status::Exited | Status::Dead | Status::Created => {
                    return Ok(state.exit_code.unwrap_or(0))
                }
                _ => {
                    self.wait_supervisor(&state, Duration::from_secs(3600));
                    // A restart policy may have started it again; loop reads the new state.
                    let (_, after) = self.load(&id)?;
                    if matches!(after.status, Status::Exited | Status::Dead) {
                        return Ok(after.exit_code.unwrap_or(0));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
