//! The OS variants berth knows without osinfo-db: the releases people install most, with
//! the minimums their vendors publish (and osinfo-db records).

use super::{OsFamily, OsVariant, Source};

pub(super) struct Entry {
    pub id: &'static str,
    pub aliases: &'static [&'static str],
    pub name: &'static str,
    pub family: OsFamily,
    pub memory_mib: u64,
    pub storage_gib: u64,
    pub vcpus: u32,
    pub requires_uefi: bool,
}

const fn linux(
    id: &'static str,
    aliases: &'static [&'static str],
    name: &'static str,
    memory_mib: u64,
    storage_gib: u64,
) -> Entry {
    Entry {
        id,
        aliases,
        name,
        family: OsFamily::Linux,
        memory_mib,
        storage_gib,
        vcpus: 1,
        requires_uefi: false,
    }
}

pub(super) const TABLE: &[Entry] = &[
    linux("ubuntu20.04", &["ubuntufocal"], "Ubuntu 20.04 LTS", 2048, 5),
    linux(
        "ubuntu22.04",
        &["ubuntujammy"],
        "Ubuntu 22.04 LTS",
        2048,
        10,
    ),
    linux(
        "ubuntu24.04",
        &["ubuntunoble"],
        "Ubuntu 24.04 LTS",
        2048,
        10,
    ),
    linux("debian11", &["debianbullseye"], "Debian 11", 1024, 10),
    linux("debian12", &["debianbookworm"], "Debian 12", 1024, 10),
    linux("fedora39", &[], "Fedora Linux 39", 2048, 15),
    linux("fedora40", &[], "Fedora Linux 40", 2048, 15),
    linux("centos-stream9", &[], "CentOS Stream 9", 1536, 10),
    linux(
        "rhel9",
        &["rhel9.0", "rhel9.2", "rhel9.4"],
        "Red Hat Enterprise Linux 9",
        1536,
        10,
    ),
    linux("alpinelinux3.19", &[], "Alpine Linux 3.19", 512, 1),
    Entry {
        id: "win10",
        aliases: &[],
        name: "Microsoft Windows 10",
        family: OsFamily::Windows,
        memory_mib: 2048,
        storage_gib: 20,
        vcpus: 1,
        requires_uefi: false,
    },
    Entry {
        id: "win11",
        aliases: &[],
        name: "Microsoft Windows 11",
        family: OsFamily::Windows,
        memory_mib: 4096,
        storage_gib: 64,
        vcpus: 2,
        requires_uefi: true,
    },
];

pub(super) fn lookup(name: &str) -> Option<OsVariant> {
    let e = TABLE
        .iter()
        .find(|e| e.id == name || e.aliases.contains(&name))?;
    Some(OsVariant {
        short_id: e.id.to_string(),
        name: e.name.to_string(),
        family: e.family,
        min_memory_mib: Some(e.memory_mib),
        min_storage_bytes: Some(e.storage_gib << 30),
        min_vcpus: Some(e.vcpus),
        virtio: e.family != OsFamily::Windows,
        requires_uefi: e.requires_uefi,
        source: Source::Builtin,
    })
}
