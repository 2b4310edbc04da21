//! Finds UEFI firmware for q35 guests: the QEMU firmware descriptors that distributions
//! install in /usr/share/qemu/firmware (docs/interop/firmware.json in QEMU), as libvirt
//! reads them, falling back to Debian's OVMF paths. berth takes a flash-mapped UEFI build
//! without Secure Boot or SMM requirements, with a variable-store template it copies per VM.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// OVMF's code image and the template of its variable store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UefiFirmware {
    pub code: PathBuf,
    pub vars_template: PathBuf,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "interface-types", default)]
    interface_types: Vec<String>,
    mapping: Mapping,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
struct Mapping {
    #[serde(default)]
    device: String,
    executable: Option<FlashFile>,
    #[serde(rename = "nvram-template")]
    nvram_template: Option<FlashFile>,
}

#[derive(Deserialize)]
struct FlashFile {
    filename: PathBuf,
}

#[derive(Deserialize)]
struct Target {
    architecture: String,
    #[serde(default)]
    machines: Vec<String>,
}

const DESCRIPTOR_DIRS: &[&str] = &["/etc/qemu/firmware", "/usr/share/qemu/firmware"];
const FALLBACKS: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
];

/// The UEFI firmware to use, if one is installed.
pub fn find_uefi() -> Option<UefiFirmware> {
    let mut files: Vec<PathBuf> = DESCRIPTOR_DIRS
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    // Descriptors are ordered by file name (their numeric prefix is a priority).
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .find_map(|bytes| usable(&bytes))
        .or_else(|| {
            FALLBACKS.iter().find_map(|(code, vars)| {
                (Path::new(code).is_file() && Path::new(vars).is_file()).then(|| UefiFirmware {
                    code: code.into(),
                    vars_template: vars.into(),
                })
            })
        })
}

fn usable(descriptor: &[u8]) -> Option<UefiFirmware> {
    let d: Descriptor = serde_json::from_slice(descriptor).ok()?;
    let q35 = d
        .targets
        .iter()
        .any(|t| t.architecture == "x86_64" && t.machines.iter().any(|m| m.starts_with("pc-q35")));
    let plain = !d
        .features
        .iter()
        .any(|f| matches!(f.as_str(), "secure-boot" | "requires-smm" | "enrolled-keys"));
    if !(d.interface_types.iter().any(|t| t == "uefi")
        && q35
        && plain
        && d.mapping.device == "flash")
    {
        return None;
    }
    let fw = UefiFirmware {
        code: d.mapping.executable?.filename,
        vars_template: d.mapping.nvram_template?.filename,
    };
    (fw.code.is_file() && fw.vars_template.is_file()).then_some(fw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_boot_builds_are_skipped() {
        let secure = br#"{"interface-types":["uefi"],"mapping":{"device":"flash",
            "executable":{"filename":"/bin/sh"},"nvram-template":{"filename":"/bin/sh"}},
            "targets":[{"architecture":"x86_64","machines":["pc-q35-*"]}],
            "features":["secure-boot","requires-smm"]}"#;
        assert_eq!(usable(secure), None);
        let plain = br#"{"interface-types":["uefi"],"mapping":{"device":"flash",
            "executable":{"filename":"/bin/sh"},"nvram-template":{"filename":"/bin/sh"}},
            "targets":[{"architecture":"x86_64","machines":["pc-i440fx-*","pc-q35-*"]}],
            "features":["acpi-s3"]}"#;
        assert_eq!(
            usable(plain),
            Some(UefiFirmware {
                code: "/bin/sh".into(),
                vars_template: "/bin/sh".into()
            })
        );
    }
}
