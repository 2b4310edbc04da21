//! Identity and privilege: user, group and supplementary ids, capability sets (bounding,
//! ambient, `capset`), `no_new_privs` and the seccomp filter. Used by `process::init`,
//! `process::finalize`, `caps` and `seccomp`.

use std::io;

use super::{check, check_long, prctl};

pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `gids`.
    check(unsafe { libc::setgroups(gids.len(), gids.as_ptr()) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only. The raw syscall changes this thread only, which is
    // the whole process here (single-threaded).
    check_long(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: as for `setresgid`.
    check_long(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn getuid() -> u32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { libc::getuid() }
}

pub fn getgid() -> u32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { libc::getgid() }
}

pub fn set_keepcaps(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0).map(drop)
}

pub fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
}

pub fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0).map(drop)
}

pub fn ambient_raise(cap: u32) -> io::Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
        cap as libc::c_ulong,
    )
    .map(drop)
}

pub fn ambient_clear_all() -> io::Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map(drop)
}

/// Sets the effective, permitted and inheritable capability sets (64-bit masks).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        Data {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data have the kernel's v3 layout (two data entries), both live
    // across the call.
    check_long(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) }).map(drop)
}

/// Installs a classic BPF seccomp filter with the given `SECCOMP_FILTER_FLAG_*` flags.
pub fn seccomp_set_filter(prog: &[libc::sock_filter], flags: libc::c_ulong) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies it.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}
