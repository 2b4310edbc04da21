//! The truth about a container's status. `state.json` is written by the supervisor; when
//! the supervisor is gone (killed, machine rebooted: /run is on disk here) a container it
//! recorded as running is not running any more, whatever the file says. Readers call
//! `Engine::load` and get the corrected state; the correction is saved.

use crate::state::{ContainerConfig, ContainerState, Status};
use crate::{Engine, EngineError};

/// The start time of a process (field 22 of /proc/PID/stat), to tell a live process from
/// a later one that reused its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is the process that started at `start` (any process if `start` is None).
pub fn alive(pid: i32, start: Option<u64>) -> bool {
    match (start_time(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

impl Engine {
    /// Loads a container's config and its corrected state.
    pub fn load(&self, id: &str) -> Result<(ContainerConfig, ContainerState), EngineError> {
        let config = self.containers.config(id)?;
        let mut state = self.containers.state(id)?;
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            let supervised = state
                .supervisor_pid
                .is_some_and(|p| alive(p, state.supervisor_start));
            if !supervised {
                // Its supervisor died: the container is reported exited, and whatever is
                // left of its processes is stopped so nothing runs unaccounted for.
                if let Some(pid) = state.pid {
                    if alive(pid, None) && process_belongs_to(pid, id) {
                        let _ = rustix::process::kill_process(
                            rustix::process::Pid::from_raw(pid).expect("positive pid"),
                            rustix::process::Signal::KILL,
                        );
                    }
                }
                state.status = Status::Exited;
                state.exit_code.get_or_insert(137);
                if state.finished_at.is_empty() {
                    state.finished_at = now_rfc3339();
                }
                state.error = "the container's supervisor exited unexpectedly".into();
                state.supervisor_pid = None;
                let _ = self.containers.save_state(id, &state);
            }
        }
        Ok((config, state))
    }
}

/// Whether `pid` runs in the container's cgroup (the runtime names cgroups after the id),
/// so that a reused pid is never killed by mistake.
fn process_belongs_to(pid: i32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("own stat");
        assert!(alive(me, Some(t)));
        assert!(!alive(me, Some(t + 1)));
        assert!(!alive(i32::MAX, None));
    }
}
