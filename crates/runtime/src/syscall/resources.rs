//! Per-process resource settings applied before exec: rlimits, scheduling policy, I/O
//! priority, personality and umask. Used by `process::finalize` and `process::init`.

use std::io;

use super::{check, check_long};

pub fn getrlimit(resource: libc::c_int) -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    check(unsafe { libc::prlimit64(0, resource as _, std::ptr::null(), &mut lim) })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid in-pointer; the old-limit pointer is null.
    check(unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: integer argument only.
    check(unsafe { libc::personality(persona) }).map(drop)
}

pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// `sched_setattr(0, attr, 0)`.
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority,
        sched_runtime: runtime,
        sched_deadline: deadline,
        sched_period: period,
    };
    // SAFETY: `attr` has the kernel's sched_attr v1 layout and lives across the call.
    check_long(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, prio)`.
pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | level;
    // SAFETY: integer arguments only.
    check_long(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })
        .map(drop)
}
