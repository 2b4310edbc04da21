//! Which accelerator to run guests with: KVM when it can really run an unmodified guest,
//! else TCG.
//!
//! An openable `/dev/kvm` is not enough. Some hosts expose a paravirtual KVM (PVM) that
//! runs only guests built for it: real-mode code still runs, but an unmodified kernel hangs
//! as soon as it enables long mode, and QEMU never says why. So berth decides in steps:
//! 1. `/dev/kvm` must open read-write;
//! 2. the CPU must advertise VT-x or AMD-V (`vmx`/`svm` in /proc/cpuinfo) — a PVM host
//!    does not, and then berth does not even try;
//! 3. a probe guest must get from the reset vector through protected mode and paging to
//!    64-bit long mode and report over an I/O port (QEMU's isa-debug-exit) within a few
//!    seconds, under `-accel kvm`. The probe is a 64 KiB firmware image built below.
//!
//! The answer is cached per boot in `<run_root>/vms/.accel.json` (keyed by the kernel's
//! boot id), since it cannot change before a reboot.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::qemu::args::{Accel, Device, QemuArgs};

/// How long the probe guest may take under KVM (it needs well under 100 ms).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// The byte the probe writes to the debug-exit port once in long mode.
const PROBE_OK: u8 = 0x41;
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// The verdict: the accelerator to use, and why KVM was not chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccelDecision {
    pub accel: Accel,
    /// Why KVM is unusable (set when `accel` is TCG).
    pub kvm_unusable: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    boot_id: String,
    decision: AccelDecision,
}

/// Decides, using the per-boot cache in `cache_dir`. `fresh` tells whether the decision was
/// made now (so the caller says it once).
pub fn detect(qemu: &Path, cache_dir: &Path) -> (AccelDecision, bool) {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    // A dot name: VM names never start with one, so no run directory can take it.
    let cache = cache_dir.join(".accel.json");
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Ok(c) = serde_json::from_slice::<Cached>(&bytes) {
            if !boot_id.is_empty() && c.boot_id == boot_id {
                return (c.decision, false);
            }
        }
    }
    let decision = match kvm_usable(qemu, cache_dir) {
        Ok(()) => AccelDecision {
            accel: Accel::Kvm,
            kvm_unusable: None,
        },
        Err(why) => AccelDecision {
            accel: Accel::Tcg,
            kvm_unusable: Some(why),
        },
    };
    let c = Cached { boot_id, decision };
    if let Ok(json) = serde_json::to_vec(&c) {
        let _ = crate::store::write_atomic(&cache, &json);
    }
    (c.decision, true)
}

/// Ok when KVM runs the probe guest; otherwise why not, in words for the user.
fn kvm_usable(qemu: &Path, scratch: &Path) -> Result<(), String> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => "there is no /dev/kvm".to_string(),
            _ => format!("cannot open /dev/kvm: {e}"),
        })?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if !cpu_has_virtualization(&cpuinfo) {
        return Err(
            "the CPU offers no hardware virtualization (no vmx or svm flag), so /dev/kvm \
             cannot run unmodified guests"
                .to_string(),
        );
    }
    run_probe(qemu, scratch)
}

fn cpu_has_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| f == "vmx" || f == "svm")
}

fn run_probe(qemu: &Path, scratch: &Path) -> Result<(), String> {
    let image = scratch.join(format!("kvm-probe-{}.bin", std::process::id()));
    std::fs::write(&image, probe_firmware())
        .map_err(|e| format!("write {}: {e}", image.display()))?;
    let result = run_probe_image(qemu, &image, Accel::Kvm);
    let _ = std::fs::remove_file(&image);
    result
}

fn run_probe_image(qemu: &Path, image: &Path, accel: Accel) -> Result<(), String> {
    let mut args = QemuArgs::new();
    args.no_defaults()
        .machine("pc")
        .accel(accel)
        .memory_mib(16)
        .display(&crate::qemu::args::Display::None)
        .bios(image)
        .device(&Device::IsaDebugExit {
            iobase: DEBUG_EXIT_PORT,
        });
    let mut child = Command::new(qemu)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("run {}: {e}", qemu.display()))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let want = (i32::from(PROBE_OK) << 1) | 1;
                return if status.code() == Some(want) {
                    Ok(())
                } else {
                    Err(format!(
                        "a probe guest failed under {accel} (qemu exited with {status})"
                    ))
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "a probe guest hung under {accel} for {} s (a paravirtual /dev/kvm?)",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// Where the probe code sits in the 64 KiB image: physical 0xFE000, segment F000:E000.
const CODE_OFFSET: usize = 0xE000;

/// A 64 KiB firmware image whose reset vector (offset 0xFFF0) jumps to code that enters
/// protected mode, builds identity page tables for the first 2 MiB at 0x1000, enables
/// PAE + long mode + paging, far-jumps to 64-bit code and writes [`PROBE_OK`] to port
/// [`DEBUG_EXIT_PORT`]. Every other byte is `hlt`.
pub fn probe_firmware() -> Vec<u8> {
    let mut rom = vec![0xF4u8; 0x10000];
    #[rustfmt::skip]
    let code: &[u8] = &[
        // 16-bit, CS = F000, IP = E000
        0xFA,                                     // cli
        0x31, 0xC0,                               // xor ax, ax
        0x8E, 0xD8,                               // mov ds, ax
        0x2E, 0x66, 0x0F, 0x01, 0x16, 0xB0, 0xE0, // lgdt dword cs:[0xE0B0]
        0x0F, 0x20, 0xC0,                         // mov eax, cr0
        0x0C, 0x01,                               // or al, 1 (PE)
        0x0F, 0x22, 0xC0,                         // mov cr0, eax
        0x66, 0xEA, 0x1C, 0xE0, 0x0F, 0x00, 0x08, 0x00, // jmp dword 0x08:0x000FE01C
        // 32-bit protected mode at 0xFE01C
        0x66, 0xB8, 0x10, 0x00,                   // mov ax, 0x10
        0x8E, 0xD8,                               // mov ds, ax
        0x8E, 0xC0,                               // mov es, ax
        0x8E, 0xD0,                               // mov ss, ax
        0xBF, 0x00, 0x10, 0x00, 0x00,             // mov edi, 0x1000
        0x31, 0xC0,                               // xor eax, eax
        0xB9, 0x00, 0x0C, 0x00, 0x00,             // mov ecx, 3072
        0xF3, 0xAB,                               // rep stosd (zero 0x1000..0x4000)
        0xC7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, // PML4[0] = 0x2003
        0xC7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00, // PDPT[0] = 0x3003
        0xC7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, // PD[0] = 2 MiB page
        0xB8, 0x00, 0x10, 0x00, 0x00,             // mov eax, 0x1000
        0x0F, 0x22, 0xD8,                         // mov cr3, eax
        0x0F, 0x20, 0xE0,                         // mov eax, cr4
        0x83, 0xC8, 0x20,                         // or eax, 0x20 (PAE)
        0x0F, 0x22, 0xE0,                         // mov cr4, eax
        0xB9, 0x80, 0x00, 0x00, 0xC0,             // mov ecx, 0xC0000080 (EFER)
        0x0F, 0x32,                               // rdmsr
        0x0D, 0x00, 0x01, 0x00, 0x00,             // or eax, 0x100 (LME)
        0x0F, 0x30,                               // wrmsr
        0x0F, 0x20, 0xC0,                         // mov eax, cr0
        0x0D, 0x00, 0x00, 0x00, 0x80,             // or eax, 0x80000000 (PG)
        0x0F, 0x22, 0xC0,                         // mov cr0, eax
        0xEA, 0x83, 0xE0, 0x0F, 0x00, 0x18, 0x00, // jmp 0x18:0x000FE083
        // 64-bit long mode at 0xFE083
        0xB0, PROBE_OK,                           // mov al, PROBE_OK
        0xE6, 0xF4,                               // out DEBUG_EXIT_PORT, al
        0xF4,                                     // hlt
        0xEB, 0xFD,                               // jmp back to hlt
    ];
    rom[CODE_OFFSET..CODE_OFFSET + code.len()].copy_from_slice(code);
    // The GDT at 0xFE090 (8-aligned after the code) and its descriptor at 0xFE0B0.
    #[rustfmt::skip]
    let gdt: [u64; 4] = [
        0,
        0x00CF_9A00_0000_FFFF, // 0x08: 32-bit code, flat
        0x00CF_9200_0000_FFFF, // 0x10: data, flat
        0x00AF_9A00_0000_FFFF, // 0x18: 64-bit code
    ];
    let gdt_at = CODE_OFFSET + 0x90;
    for (i, d) in gdt.iter().enumerate() {
        rom[gdt_at + i * 8..gdt_at + i * 8 + 8].copy_from_slice(&d.to_le_bytes());
    }
    let desc_at = CODE_OFFSET + 0xB0;
    rom[desc_at..desc_at + 2].copy_from_slice(&(32u16 - 1).to_le_bytes());
    rom[desc_at + 2..desc_at + 6].copy_from_slice(&(0xFE000u32 + 0x90).to_le_bytes());
    // Reset vector: jmp far F000:E000.
    rom[0xFFF0..0xFFF5].copy_from_slice(&[0xEA, 0x00, 0xE0, 0x00, 0xF0]);
    rom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_image_layout() {
        let rom = probe_firmware();
        assert_eq!(rom.len(), 65536);
        assert_eq!(&rom[0xFFF0..0xFFF5], &[0xEA, 0x00, 0xE0, 0x00, 0xF0]);
        // The 32-bit entry the first far jump names.
        assert_eq!(
            &rom[CODE_OFFSET + 0x1C..CODE_OFFSET + 0x20],
            &[0x66, 0xB8, 0x10, 0x00]
        );
        // The 64-bit entry the second far jump names.
        assert_eq!(
            &rom[CODE_OFFSET + 0x83..CODE_OFFSET + 0x85],
            &[0xB0, PROBE_OK]
        );
        // lgdt's operand points at the descriptor, which points at the GDT.
        assert_eq!(&rom[CODE_OFFSET + 10..CODE_OFFSET + 12], &[0xB0, 0xE0]);
        let base = u32::from_le_bytes(
            rom[CODE_OFFSET + 0xB2..CODE_OFFSET + 0xB6]
                .try_into()
                .unwrap(),
        );
        assert_eq!(base, 0xFE090);
        // The GDT sits between the code and the descriptor, intact.
        assert_eq!(&rom[CODE_OFFSET + 0x8A..CODE_OFFSET + 0x90], &[0xF4; 6]);
        assert_eq!(
            u64::from_le_bytes(
                rom[CODE_OFFSET + 0xA8..CODE_OFFSET + 0xB0]
                    .try_into()
                    .unwrap()
            ),
            0x00AF_9A00_0000_FFFF
        );
    }

    #[test]
    fn cpu_flags() {
        assert!(cpu_has_virtualization(
            "processor: 0\nflags\t\t: fpu vme vmx sse\n"
        ));
        assert!(cpu_has_virtualization("flags : svm lm\n"));
        assert!(!cpu_has_virtualization("flags : fpu hypervisor lm\n"));
    }

    #[test]
    fn probe_runs_under_tcg_when_qemu_is_installed() {
        // The same image must pass under TCG; this guards the hand-assembled bytes.
        let Some(qemu) = crate::qemu::find_binary(crate::qemu::SYSTEM_BINARY) else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("berth-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("probe.bin");
        std::fs::write(&image, probe_firmware()).unwrap();
        let result = run_probe_image(&qemu, &image, Accel::Tcg);
        std::fs::remove_dir_all(dir).unwrap();
        result.unwrap();
    }
}
