//! Compiles the spec's seccomp profile (`linux.seccomp`, runtime-spec config-linux.md
//! "Seccomp") into a classic BPF program for `seccomp(SECCOMP_SET_MODE_FILTER)`, without
//! libseccomp. Used by the container init and by `exec`, just before `execve`.
//!
//! Program layout: check the architecture (a foreign one is killed, as libseccomp's default
//! bad-arch action does), load the syscall number, then one `jeq nr / ja body` pair per
//! syscall that has rules, then the default action, then the bodies. A body tries the
//! syscall's rules with argument conditions first, in file order, then its unconditional
//! rule, then falls back to the default action. The kernel caches syscalls whose result
//! never depends on arguments, so the linear dispatch costs nothing for allowed calls.

mod syscalls_x86_64;

use std::collections::BTreeMap;

use crate::spec::{Seccomp, SeccompArg};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unknown seccomp action {0:?}")]
    UnknownAction(String),
    #[error("seccomp action SCMP_ACT_NOTIFY needs a listener, which berth does not support")]
    Notify,
    #[error("unknown seccomp comparison operator {0:?}")]
    UnknownOp(String),
    #[error("seccomp argument index {0} is out of range (0 to 5)")]
    ArgIndex(u32),
    #[error("unknown seccomp flag {0:?}")]
    UnknownFlag(String),
    #[error("the seccomp program has {0} instructions, more than the kernel's 4096")]
    TooLong(usize),
    #[error("seccomp program: jump too far inside the rules of syscall {0}")]
    JumpTooFar(String),
}

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
/// x32 syscalls arrive with the x86_64 audit arch and this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;
const MAX_INSNS: usize = 4096;

/// A compiled filter ready for `seccomp(2)`.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: libc::c_ulong,
}

/// The number of a syscall on this machine's architecture, if it has one.
pub fn syscall_number(name: &str) -> Option<u32> {
    let table = syscalls_x86_64::SYSCALLS;
    table
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| table[i].1)
}

/// The `SCMP_ACT_*` action as a `SECCOMP_RET_*` value.
pub fn action(name: &str, errno: Option<u32>) -> Result<u32, SeccompError> {
    let data = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_ERRNO" => RET_ERRNO | data,
        "SCMP_ACT_TRACE" => RET_TRACE | data,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_NOTIFY" => return Err(SeccompError::Notify),
        other => return Err(SeccompError::UnknownAction(other.to_string())),
    })
}

fn flag(name: &str) -> Result<libc::c_ulong, SeccompError> {
    Ok(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => 1,
        "SECCOMP_FILTER_FLAG_LOG" => 2,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 32,
        other => return Err(SeccompError::UnknownFlag(other.to_string())),
    })
}

/// A jump target inside the program being assembled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Label(usize);

enum Insn {
    Ld(u32),
    And(u32),
    /// Conditional jump (`code`, constant, true target, false target).
    Jmp(u16, u32, Label, Label),
    Ja(Label),
    Ret(u32),
    Bind(Label),
}

#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    /// Resolves labels; `what` names the syscall whose body overflowed a short jump.
    fn finish(self, what: &[(usize, String)]) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let mut at = vec![0usize; self.labels];
        let mut pc = 0;
        for i in &self.insns {
            match i {
                Insn::Bind(l) => at[l.0] = pc,
                _ => pc += 1,
            }
        }
        if pc > MAX_INSNS {
            return Err(SeccompError::TooLong(pc));
        }
        let mut out = Vec::with_capacity(pc);
        let mut idx = 0;
        let name_at = |pc: usize| {
            what.iter()
                .rev()
                .find(|(start, _)| *start <= pc)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        for i in &self.insns {
            let (code, jt, jf, k) = match *i {
                Insn::Bind(_) => continue,
                Insn::Ld(off) => (BPF_LD_W_ABS, 0, 0, off),
                Insn::And(k) => (BPF_ALU_AND_K, 0, 0, k),
                Insn::Ret(k) => (BPF_RET_K, 0, 0, k),
                Insn::Ja(l) => (BPF_JMP_JA, 0, 0, (at[l.0] - idx - 1) as u32),
                Insn::Jmp(code, k, t, f) => {
                    let rel = |l: Label| -> Result<u8, SeccompError> {
                        u8::try_from(at[l.0] - idx - 1)
                            .map_err(|_| SeccompError::JumpTooFar(name_at(idx)))
                    };
                    (code, rel(t)?, rel(f)?, k)
                }
            };
            out.push(libc::sock_filter { code, jt, jf, k });
            idx += 1;
        }
        Ok(out)
    }
}

/// One rule of one syscall: its conditions (all must hold) and its action.
struct Rule<'a> {
    args: &'a [SeccompArg],
    action: u32,
}

/// Offset of the low or high 32 bits of argument `i` in `struct seccomp_data`.
fn arg_offset(i: u32, high: bool) -> u32 {
    let lo_first = cfg!(target_endian = "little");
    16 + 8 * i + if high == lo_first { 4 } else { 0 }
}

/// Emits the check of one 64-bit condition: control reaches `pass` or `fail`.
fn emit_condition(
    asm: &mut Asm,
    a: &SeccompArg,
    pass: Label,
    fail: Label,
) -> Result<(), SeccompError> {
    if a.index > 5 {
        return Err(SeccompError::ArgIndex(a.index));
    }
    let (hi_off, lo_off) = (arg_offset(a.index, true), arg_offset(a.index, false));
    let (vhi, vlo) = ((a.value >> 32) as u32, a.value as u32);
    let next = asm.label();
    match a.op.as_str() {
        "SCMP_CMP_EQ" | "SCMP_CMP_NE" => {
            let (t, f) = if a.op == "SCMP_CMP_EQ" {
                (pass, fail)
            } else {
                (fail, pass)
            };
            asm.push(Insn::Ld(hi_off));
            asm.push(Insn::Jmp(BPF_JEQ_K, vhi, next, f));
            asm.push(Insn::Bind(next));
            asm.push(Insn::Ld(lo_off));
            asm.push(Insn::Jmp(BPF_JEQ_K, vlo, t, f));
        }
        "SCMP_CMP_GT" | "SCMP_CMP_GE" => {
            let lo_code = if a.op == "SCMP_CMP_GT" {
                BPF_JGT_K
            } else {
                BPF_JGE_K
            };
            let eq = asm.label();
            asm.push(Insn::Ld(hi_off));
            asm.push(Insn::Jmp(BPF_JGT_K, vhi, pass, eq));
            asm.push(Insn::Bind(eq));
            asm.push(Insn::Jmp(BPF_JEQ_K, vhi, next, fail));
            asm.push(Insn::Bind(next));
            asm.push(Insn::Ld(lo_off));
            asm.push(Insn::Jmp(lo_code, vlo, pass, fail));
        }
        "SCMP_CMP_LT" | "SCMP_CMP_LE" => {
            // a < v is !(a >= v); a <= v is !(a > v).
            let lo_code = if a.op == "SCMP_CMP_LT" {
                BPF_JGE_K
            } else {
                BPF_JGT_K
            };
            let eq = asm.label();
            asm.push(Insn::Ld(hi_off));
            asm.push(Insn::Jmp(BPF_JGT_K, vhi, fail, eq));
            asm.push(Insn::Bind(eq));
            asm.push(Insn::Jmp(BPF_JEQ_K, vhi, next, pass));
            asm.push(Insn::Bind(next));
            asm.push(Insn::Ld(lo_off));
            asm.push(Insn::Jmp(lo_code, vlo, fail, pass));
        }
        "SCMP_CMP_MASKED_EQ" => {
            // runtime-spec: `value` is the mask, `valueTwo` the expected result.
            let (mhi, mlo) = ((a.value >> 32) as u32, a.value as u32);
            let (dhi, dlo) = ((a.value_two >> 32) as u32, a.value_two as u32);
            asm.push(Insn::Ld(hi_off));
            asm.push(Insn::And(mhi));
            asm.push(Insn::Jmp(BPF_JEQ_K, dhi, next, fail));
            asm.push(Insn::Bind(next));
            asm.push(Insn::Ld(lo_off));
            asm.push(Insn::And(mlo));
            asm.push(Insn::Jmp(BPF_JEQ_K, dlo, pass, fail));
        }
        other => return Err(SeccompError::UnknownOp(other.to_string())),
    }
    Ok(())
}

/// Compiles a profile. Syscall names this architecture lacks are skipped, as libseccomp
/// and runc do (profiles list syscalls of every architecture).
pub fn compile(profile: &Seccomp) -> Result<Filter, SeccompError> {
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut flags = 0;
    for f in &profile.flags {
        flags |= flag(f)?;
    }
    // syscall number -> (name, rules in evaluation order)
    let mut by_nr: BTreeMap<u32, (String, Vec<Rule>, Option<u32>)> = BTreeMap::new();
    for entry in &profile.syscalls {
        let act = action(&entry.action, entry.errno_ret)?;
        for a in &entry.args {
            if a.index > 5 {
                return Err(SeccompError::ArgIndex(a.index));
            }
        }
        for name in &entry.names {
            let Some(nr) = syscall_number(name) else {
                continue;
            };
            let slot = by_nr
                .entry(nr)
                .or_insert_with(|| (name.clone(), Vec::new(), None));
            if entry.args.is_empty() {
                // The first unconditional rule wins; later ones cannot be reached.
                slot.2.get_or_insert(act);
            } else {
                slot.1.push(Rule {
                    args: &entry.args,
                    action: act,
                });
            }
        }
    }
    // A syscall whose only outcome is the default action needs no code.
    by_nr.retain(|_, (_, conds, uncond)| {
        !(conds.iter().all(|r| r.action == default) && uncond.is_none_or(|a| a == default))
    });

    let mut asm = Asm::default();
    let arch_ok = asm.label();
    let bad = asm.label();
    asm.push(Insn::Ld(4));
    asm.push(Insn::Jmp(BPF_JEQ_K, NATIVE_ARCH, arch_ok, bad));
    asm.push(Insn::Bind(bad));
    asm.push(Insn::Ret(RET_KILL_PROCESS));
    asm.push(Insn::Bind(arch_ok));
    asm.push(Insn::Ld(0));
    if cfg!(target_arch = "x86_64") {
        let (native, x32) = (asm.label(), asm.label());
        asm.push(Insn::Jmp(BPF_JGE_K, X32_SYSCALL_BIT, x32, native));
        asm.push(Insn::Bind(x32));
        asm.push(Insn::Ret(RET_KILL_PROCESS));
        asm.push(Insn::Bind(native));
    }
    let bodies: Vec<Label> = by_nr.keys().map(|_| asm.label()).collect();
    for (nr, body) in by_nr.keys().zip(&bodies) {
        let next = asm.label();
        let go = asm.label();
        asm.push(Insn::Jmp(BPF_JEQ_K, *nr, go, next));
        asm.push(Insn::Bind(go));
        asm.push(Insn::Ja(*body));
        asm.push(Insn::Bind(next));
    }
    asm.push(Insn::Ret(default));

    let mut names = Vec::new();
    let mut pc = asm
        .insns
        .iter()
        .filter(|i| !matches!(i, Insn::Bind(_)))
        .count();
    for ((name, conds, uncond), body) in by_nr.values().zip(&bodies) {
        names.push((pc, name.clone()));
        let start = asm.insns.len();
        asm.push(Insn::Bind(*body));
        for rule in conds {
            let next_rule = asm.label();
            for a in rule.args {
                let pass = asm.label();
                emit_condition(&mut asm, a, pass, next_rule)?;
                asm.push(Insn::Bind(pass));
            }
            asm.push(Insn::Ret(rule.action));
            asm.push(Insn::Bind(next_rule));
            // After a failed rule the accumulator holds an argument: reload the number
            // is unnecessary since bodies only compare arguments.
        }
        asm.push(Insn::Ret(uncond.unwrap_or(default)));
        pc += asm.insns[start..]
            .iter()
            .filter(|i| !matches!(i, Insn::Bind(_)))
            .count();
    }
    let program = asm.finish(&names)?;
    Ok(Filter { program, flags })
}

/// Installs a compiled filter on the calling thread (and, with TSYNC, its siblings).
pub fn load(filter: &Filter) -> std::io::Result<()> {
    crate::syscall::seccomp_set_filter(&filter.program, filter.flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SeccompSyscall;

    /// A classic-BPF interpreter for the instructions the compiler emits.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                BPF_ALU_AND_K => acc &= i.k,
                BPF_RET_K => return i.k,
                BPF_JMP_JA => pc += i.k as usize,
                code => {
                    let cond = match code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGT_K => acc > i.k,
                        BPF_JGE_K => acc >= i.k,
                        _ => panic!("unexpected opcode {code:#x}"),
                    };
                    pc += if cond { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    fn rule(names: &[&str], action: &str, args: Vec<SeccompArg>) -> SeccompSyscall {
        SeccompSyscall {
            names: names.iter().map(|s| s.to_string()).collect(),
            action: action.into(),
            errno_ret: None,
            args,
        }
    }

    fn arg(index: u32, value: u64, value_two: u64, op: &str) -> SeccompArg {
        SeccompArg {
            index,
            value,
            value_two,
            op: op.into(),
        }
    }

    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap()
    }

    #[test]
    fn allowlist_profile_allows_listed_and_denies_the_rest() {
        let p = Seccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            default_errno_ret: Some(38),
            syscalls: vec![rule(
                &["read", "write", "no_such_syscall"],
                "SCMP_ACT_ALLOW",
                vec![],
            )],
            ..Seccomp::default()
        };
        let f = compile(&p).unwrap();
        assert_eq!(run(&f.program, NATIVE_ARCH, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&f.program, NATIVE_ARCH, nr("write"), [0; 6]), RET_ALLOW);
        assert_eq!(
            run(&f.program, NATIVE_ARCH, nr("mount"), [0; 6]),
            RET_ERRNO | 38
        );
    }

    #[test]
    fn foreign_architecture_and_x32_are_killed() {
        let p = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            ..Seccomp::default()
        };
        let f = compile(&p).unwrap();
        assert_eq!(run(&f.program, 0x4000_0003, 1, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(
            run(&f.program, NATIVE_ARCH, X32_SYSCALL_BIT | 1, [0; 6]),
            RET_KILL_PROCESS
        );
        assert_eq!(run(&f.program, NATIVE_ARCH, 1, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn argument_comparisons_use_all_64_bits() {
        let big = 0x1_0000_0005u64;
        type Case<'a> = (&'a str, u64, &'a [(u64, bool)]);
        let cases: [Case; 6] = [
            (
                "SCMP_CMP_EQ",
                big,
                &[(big, true), (5, false), (big + 1, false)],
            ),
            ("SCMP_CMP_NE", big, &[(big, false), (5, true)]),
            (
                "SCMP_CMP_GT",
                big,
                &[
                    (big + 1, true),
                    (big, false),
                    (0x2_0000_0000, true),
                    (6, false),
                ],
            ),
            (
                "SCMP_CMP_GE",
                big,
                &[(big, true), (big - 1, false), (u64::MAX, true)],
            ),
            (
                "SCMP_CMP_LT",
                big,
                &[
                    (big - 1, true),
                    (big, false),
                    (7, true),
                    (0x2_0000_0000, false),
                ],
            ),
            (
                "SCMP_CMP_LE",
                big,
                &[(big, true), (big + 1, false), (0, true)],
            ),
        ];
        for (op, value, checks) in cases {
            let p = Seccomp {
                default_action: "SCMP_ACT_ALLOW".into(),
                syscalls: vec![rule(
                    &["personality"],
                    "SCMP_ACT_ERRNO",
                    vec![arg(0, value, 0, op)],
                )],
                ..Seccomp::default()
            };
            let f = compile(&p).unwrap();
            for &(a, matches) in checks {
                let want = if matches { RET_ERRNO | 1 } else { RET_ALLOW };
                assert_eq!(
                    run(
                        &f.program,
                        NATIVE_ARCH,
                        nr("personality"),
                        [a, 0, 0, 0, 0, 0]
                    ),
                    want,
                    "{op} {a:#x} vs {value:#x}"
                );
            }
        }
    }

    #[test]
    fn masked_eq_and_multiple_rules_per_syscall() {
        // Docker's clone rule: allowed unless a namespace flag is set.
        let p = Seccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![
                rule(
                    &["clone"],
                    "SCMP_ACT_ALLOW",
                    vec![arg(0, 0x7E02_0000, 0, "SCMP_CMP_MASKED_EQ")],
                ),
                rule(
                    &["socket"],
                    "SCMP_ACT_ALLOW",
                    vec![arg(0, 1, 0, "SCMP_CMP_EQ"), arg(1, 2, 0, "SCMP_CMP_EQ")],
                ),
                rule(
                    &["socket"],
                    "SCMP_ACT_ALLOW",
                    vec![arg(0, 2, 0, "SCMP_CMP_EQ")],
                ),
            ],
            ..Seccomp::default()
        };
        let f = compile(&p).unwrap();
        let clone = nr("clone");
        assert_eq!(
            run(
                &f.program,
                NATIVE_ARCH,
                clone,
                [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(
                &f.program,
                NATIVE_ARCH,
                clone,
                [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
            ),
            RET_ERRNO | 1
        );
        let socket = nr("socket");
        assert_eq!(
            run(&f.program, NATIVE_ARCH, socket, [1, 2, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            run(&f.program, NATIVE_ARCH, socket, [1, 1, 0, 0, 0, 0]),
            RET_ERRNO | 1
        );
        assert_eq!(
            run(&f.program, NATIVE_ARCH, socket, [2, 9, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }

    #[test]
    fn bad_profiles_are_rejected() {
        let mut p = Seccomp {
            default_action: "SCMP_ACT_BOGUS".into(),
            ..Seccomp::default()
        };
        assert!(matches!(compile(&p), Err(SeccompError::UnknownAction(_))));
        p.default_action = "SCMP_ACT_ALLOW".into();
        p.syscalls = vec![rule(
            &["read"],
            "SCMP_ACT_ERRNO",
            vec![arg(6, 0, 0, "SCMP_CMP_EQ")],
        )];
        assert!(matches!(compile(&p), Err(SeccompError::ArgIndex(6))));
        p.syscalls = vec![rule(
            &["read"],
            "SCMP_ACT_ERRNO",
            vec![arg(0, 0, 0, "SCMP_CMP_ALMOST")],
        )];
        assert!(matches!(compile(&p), Err(SeccompError::UnknownOp(_))));
    }

    #[test]
    fn every_known_syscall_fits_in_one_program() {
        let names: Vec<&str> = syscalls_x86_64::SYSCALLS.iter().map(|(n, _)| *n).collect();
        let p = Seccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![rule(&names, "SCMP_ACT_ALLOW", vec![])],
            ..Seccomp::default()
        };
        let f = compile(&p).unwrap();
        assert!(f.program.len() < MAX_INSNS);
        assert_eq!(run(&f.program, NATIVE_ARCH, nr("mseal"), [0; 6]), RET_ALLOW);
    }

    /// Loads a filter into a forked child and checks the kernel enforces it.
    #[test]
    fn loaded_filter_makes_denied_syscall_fail_with_errno() {
        let p = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            syscalls: vec![SeccompSyscall {
                errno_ret: Some(libc::EPERM as u32),
                ..rule(&["getcwd"], "SCMP_ACT_ERRNO", vec![])
            }],
            ..Seccomp::default()
        };
        let f = compile(&p).unwrap();
        // The test harness is multi-threaded, so the child only makes raw syscalls.
        let status = crate::process::fork::run_in_child(|| {
            if crate::syscall::set_no_new_privs().is_err() || load(&f).is_err() {
                return 2;
            }
            let mut buf = [0u8; 256];
            match crate::syscall::getcwd_raw(&mut buf) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => 0,
                _ => 1,
            }
        });
        assert_eq!(status, 0);
    }
}
