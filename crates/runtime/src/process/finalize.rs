//! The last steps before the container's program runs, shared by the container init and
//! `exec`: rlimits, oom score, scheduling, the bounding set, the user switch, the working
//! directory check, capabilities, `no_new_privs`, seccomp, fd hygiene, and `execve`.
//!
//! Order follows the kernel's rules: the bounding set needs CAP_SETPCAP (before the user
//! switch); capabilities are set after `setresuid` (with KEEPCAPS so it does not clear
//! them); seccomp without `noNewPrivileges` needs CAP_SYS_ADMIN so it goes early, with it
//! it goes last, right before `execve`, so the runtime's own syscalls are not filtered.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::init::InitError;
use crate::caps::{self, CapSets};
use crate::seccomp::{self, Filter};
use crate::spec::{Process, Rlimit, Spec};
use crate::syscall;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program to run and the filter still to load.
pub struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    late_seccomp: Option<Filter>,
}

/// `RLIMIT_*` names to resource numbers.
pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => 0,
        "RLIMIT_FSIZE" => 1,
        "RLIMIT_DATA" => 2,
        "RLIMIT_STACK" => 3,
        "RLIMIT_CORE" => 4,
        "RLIMIT_RSS" => 5,
        "RLIMIT_NPROC" => 6,
        "RLIMIT_NOFILE" => 7,
        "RLIMIT_MEMLOCK" => 8,
        "RLIMIT_AS" => 9,
        "RLIMIT_LOCKS" => 10,
        "RLIMIT_SIGPENDING" => 11,
        "RLIMIT_MSGQUEUE" => 12,
        "RLIMIT_NICE" => 13,
        "RLIMIT_RTPRIO" => 14,
        "RLIMIT_RTTIME" => 15,
        _ => return None,
    })
}

/// Sets one rlimit. Raising a hard limit needs CAP_SYS_RESOURCE; without it the limit is
/// clamped to the current hard limit (and the soft one to that), with a warning, instead
/// of failing the container: the same config then runs on hosts with lower limits.
pub fn set_rlimit(r: &Rlimit) -> Result<Option<String>, InitError> {
    let res = rlimit_resource(&r.kind).ok_or_else(|| InitError::UnknownRlimit(r.kind.clone()))?;
    let err = |source| InitError::Rlimit {
        kind: r.kind.clone(),
        source,
    };
    match syscall::setrlimit(res, r.soft, r.hard) {
        Ok(()) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let (_, max) = syscall::getrlimit(res).map_err(err)?;
            if r.hard <= max {
                return Err(err(e));
            }
            syscall::setrlimit(res, r.soft.min(max), max).map_err(err)?;
            Ok(Some(format!(
                "{} hard limit {} is above the host's {max}: clamped",
                r.kind, r.hard
            )))
        }
        Err(e) => Err(err(e)),
    }
}

/// Finds `arg0` on the container's PATH, as execvp would.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(InitError::NotFound(arg0.to_string()))
}

/// The user's home directory from the container's /etc/passwd, or `/`.
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString, InitError> {
    CString::new(s).map_err(|_| InitError::Nul)
}

/// Does everything up to `execve`. `personality` is the container's (create only).
pub fn prepare(
    spec: &Spec,
    preserve_fds: u32,
    with_personality: bool,
) -> Result<Prepared, InitError> {
    let process: &Process = spec.process.as_ref().ok_or(InitError::NoProcess)?;
    let linux = spec.linux_or_default();
    let filter = linux.seccomp.as_ref().map(seccomp::compile).transpose()?;

    for r in &process.rlimits {
        if let Some(warning) = set_rlimit(r)? {
            eprintln!("berth-runc: warning: {warning}");
        }
    }
    if let Some(adj) = process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|source| {
            InitError::Io {
                what: "set oom_score_adj",
                source,
            }
        })?;
    }
    if with_personality {
        if let Some(p) = &linux.personality {
            let persona = match p.domain.as_str() {
                "LINUX" => 0,
                "LINUX32" => 0x0008,
                other => return Err(InitError::Personality(other.to_string())),
            };
            syscall::personality(persona).map_err(|source| InitError::Io {
                what: "set personality",
                source,
            })?;
        }
    }
    if let Some(s) = &process.scheduler {
        apply_scheduler(s)?;
    }
    if let Some(io) = &process.io_priority {
        let class = match io.class.as_str() {
            "IOPRIO_CLASS_RT" => 1,
            "IOPRIO_CLASS_BE" => 2,
            "IOPRIO_CLASS_IDLE" => 3,
            other => return Err(InitError::IoPriority(other.to_string())),
        };
        syscall::ioprio_set(class, io.priority.clamp(0, 7) as u32).map_err(|source| {
            InitError::Io {
                what: "set io priority",
                source,
            }
        })?;
    }

    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user.uid)));
    }
    let arg0 = process.args.first().ok_or(InitError::NoProcess)?;
    let path = lookup(arg0, &env)?;

    let sets = CapSets::from_spec(process.capabilities.as_ref());
    caps::apply_bounding(&sets)?;
    let mut late = None;
    if let Some(f) = filter {
        if process.no_new_privileges {
            late = Some(f);
        } else {
            seccomp::load(&f).map_err(InitError::Seccomp)?;
        }
    }

    let user = &process.user;
    let io = |what| move |source| InitError::Io { what, source };
    syscall::set_keepcaps(true).map_err(io("keep capabilities"))?;
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !setgroups_denied {
        syscall::setgroups(&user.additional_gids).map_err(io("set supplementary groups"))?;
    }
    syscall::setresgid(user.gid).map_err(io("set gid"))?;
    syscall::setresuid(user.uid).map_err(io("set uid"))?;
    syscall::set_keepcaps(false).map_err(io("keep capabilities"))?;

    // CVE-2024-21626: a cwd reached through a leaked fd (`/proc/self/fd/N`) would lie
    // outside the container's root; the kernel then reports it as "(unreachable)...".
    std::env::set_current_dir(&process.cwd).map_err(|source| InitError::Cwd {
        cwd: process.cwd.clone(),
        source,
    })?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    let n = syscall::getcwd_raw(&mut buf).map_err(|source| InitError::Cwd {
        cwd: process.cwd.clone(),
        source,
    })?;
    if buf.first() != Some(&b'/') || n == 0 {
        return Err(InitError::CwdOutsideRoot(process.cwd.clone()));
    }

    caps::apply_sets(&sets)?;
    syscall::umask(user.umask.unwrap_or(0o022));
    if process.no_new_privileges {
        syscall::set_no_new_privs().map_err(io("set no_new_privs"))?;
    }
    // CVE-2024-21626: nothing but stdio and the preserved fds reaches the program.
    syscall::cloexec_from(3 + preserve_fds as RawFd).map_err(io("close inherited fds"))?;

    Ok(Prepared {
        path: cstring(path.into_os_string().into_encoded_bytes())?,
        argv: process
            .args
            .iter()
            .map(|a| cstring(a.as_str()))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| cstring(e.as_str()))
            .collect::<Result<_, _>>()?,
        late_seccomp: late,
    })
}

fn apply_scheduler(s: &crate::spec::Scheduler) -> Result<(), InitError> {
    let policy = match s.policy.as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => return Err(InitError::Scheduler(other.to_string())),
    };
    let mut flags = 0u64;
    for f in &s.flags {
        flags |= match f.as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => return Err(InitError::Scheduler(other.to_string())),
        };
    }
    syscall::sched_setattr(
        policy,
        flags,
        s.nice,
        s.priority.max(0) as u32,
        s.runtime,
        s.deadline,
        s.period,
    )
    .map_err(|source| InitError::Io {
        what: "set scheduler",
        source,
    })
}

/// Replaces this process with the container's program. Returns only on failure.
pub fn exec(p: Prepared) -> InitError {
    syscall::reset_signals();
    if let Some(f) = &p.late_seccomp {
        if let Err(e) = seccomp::load(f) {
            return InitError::Seccomp(e);
        }
    }
    let source = syscall::execve(&p.path, &p.argv, &p.envp);
    InitError::Exec {
        path: p.path.to_string_lossy().into_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_container_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(lookup("sh", &env).unwrap(), Path::new("/bin/sh"));
        assert_eq!(lookup("./x", &env).unwrap(), Path::new("./x"));
        let err = lookup("no-such-program", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"exec: "no-such-program": executable file not found in $PATH"#
        );
    }

    #[test]
    fn rlimit_names_map_to_resources() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as i32)
        );
        assert_eq!(
            rlimit_resource("RLIMIT_RTTIME"),
            Some(libc::RLIMIT_RTTIME as i32)
        );
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }

    #[test]
    fn rlimit_above_the_hard_limit_is_clamped_not_fatal() {
        let res = libc::RLIMIT_NOFILE as i32;
        let (_, max) = syscall::getrlimit(res).unwrap();
        let r = Rlimit {
            kind: "RLIMIT_NOFILE".into(),
            soft: max + 1,
            hard: max + 1,
        };
        // Raised with CAP_SYS_RESOURCE, clamped with a warning without it: never an error.
        let warning = set_rlimit(&r).unwrap();
        let (soft, hard) = syscall::getrlimit(res).unwrap();
        match warning {
            Some(w) => {
                assert!(w.contains("clamped"), "{w}");
                assert_eq!((soft, hard), (max, max));
            }
            None => assert_eq!((soft, hard), (max + 1, max + 1)),
        }
    }
}
