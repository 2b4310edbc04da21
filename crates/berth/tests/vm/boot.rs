//! Booting: from the ISO (BIOS and UEFI), a kernel and initrd directly, an install tree
//! (`--location` ISO and directory), an imported disk with a cloud-init seed.

use std::os::unix::fs::MetadataExt;

use super::*;

/// `BERTH-DISK <name> <sectors> <driver>` lines of a console log.
fn disks(log: &str) -> Vec<(String, u64, String)> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("BERTH-DISK "))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn cdrom_install_boots_the_iso_with_a_sparse_20g_virtio_disk() {
    let env = VmEnv::new();
    let out = env.create(
        "myvm",
        &[
            "--cdrom",
            &fixture("boot.iso"),
            "--disk",
            "size=20",
            "--os-variant",
            "generic",
        ],
    );
    assert!(out.contains("Starting install..."), "{out}");
    let log = env.wait_console("myvm", "BERTH-GUEST-OK");
    let d = disks(&log);
    // 20 GiB in 512-byte sectors, on virtio-blk; the ISO as a SATA CD-ROM.
    assert!(
        d.contains(&("vda".into(), 20 * 1024 * 1024 * 2, "virtio_blk".into())),
        "{log}"
    );
    assert!(
        d.iter().any(|(n, _, drv)| n == "sr0" && drv == "sr"),
        "{log}"
    );
    assert!(
        log.contains("BERTH-IP 10.0.2.15"),
        "user networking gave no address:\n{log}"
    );

    let image = env.vm_dir("myvm").join("myvm.qcow2");
    let info: serde_json::Value = serde_json::from_str(&crate::support::run_ok(
        Command::new("qemu-img")
            .args(["info", "-U", "--output=json"])
            .arg(&image),
    ))
    .unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 20u64 << 30);
    let allocated = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        allocated < 16 << 20,
        "the image is not sparse: {allocated} bytes allocated"
    );

    // The guest powers off: berth reports it shut off, and the install boot is done.
    env.wait_state("myvm", "shut off");
    let list = env.ok(&["vm", "list", "--all"]);
    assert!(
        list.lines()
            .any(|l| l.contains("myvm") && l.contains("shut off")),
        "{list}"
    );
    assert!(env.ok(&["vm", "list"]).lines().all(|l| !l.contains("myvm")));
    let info = env.ok(&["vm", "dominfo", "myvm"]);
    assert!(!info.contains("install media"), "{info}");
}

#[test]
fn kernel_and_initrd_boot_directly_and_create_follows_the_console() {
    let env = VmEnv::new();
    // Without --noautoconsole and without a terminal, create prints the console until the
    // guest powers off, as virt-install waits for the install.
    let out = env.ok(&[
        "vm",
        "create",
        "--name",
        "direct",
        "--memory",
        "256",
        "--vcpus",
        "2",
        "--graphics",
        "none",
        "--disk",
        "size=1,bus=sata",
        "--kernel",
        &fixture("vmlinuz"),
        "--initrd",
        &fixture("initrd.gz"),
        "--extra-args",
        "quiet",
    ]);
    assert!(out.contains("BERTH-GUEST-OK mode=poweroff cpus=2"), "{out}");
    assert!(!out.contains("Starting install"), "{out}");
    assert!(out.contains("Domain 'direct' has shut off."), "{out}");
    let d = disks(&out);
    assert!(
        d.contains(&("sda".into(), 2 * 1024 * 1024, "sd".into())),
        "{out}"
    );
    // --graphics none: berth adds the serial console to the kernel command line.
    let info = env.ok(&["vm", "dominfo", "direct"]);
    assert!(
        info.contains("Cmdline:        quiet console=ttyS0"),
        "{info}"
    );
    assert!(info.contains("State:          shut off"), "{info}");
}

#[test]
fn location_iso_and_tree_boot_the_installer_kernel_once() {
    let env = VmEnv::new();
    env.create(
        "fromiso",
        &[
            "--location",
            &fixture("boot.iso"),
            "--disk",
            "size=1",
            "--extra-args",
            "quiet",
        ],
    );
    env.create(
        "fromtree",
        &[
            "--location",
            &fixture("tree"),
            "--disk",
            "none",
            "--network",
            "none",
        ],
    );
    let iso_log = env.wait_console("fromiso", "BERTH-GUEST-OK");
    let tree_log = env.wait_console("fromtree", "BERTH-GUEST-OK");
    // From the ISO, the kernel came out of install.amd/ and the ISO is attached for the
    // installer to read.
    let d = disks(&iso_log);
    assert!(d.iter().any(|(n, ..)| n == "sr0"), "{iso_log}");
    assert!(d.iter().any(|(n, ..)| n == "vda"), "{iso_log}");
    assert!(
        !disks(&tree_log).iter().any(|(n, ..)| n == "sr0"),
        "{tree_log}"
    );
    assert!(
        !tree_log.contains("BERTH-NET"),
        "--network none gave a NIC:\n{tree_log}"
    );
    let boot = env.vm_dir("fromiso").join("boot");
    assert_eq!(
        std::fs::read(boot.join("vmlinuz")).unwrap(),
        std::fs::read(fixture("vmlinuz")).unwrap()
    );
    // The install boot happened once: the next start boots the disk, without the ISO.
    env.wait_state("fromiso", "shut off");
    let info = env.ok(&["vm", "dominfo", "fromiso"]);
    assert!(info.contains("install only"), "{info}");
    assert!(!info.contains("install media at next start"), "{info}");
}

#[test]
fn uefi_boots_the_same_iso() {
    let env = VmEnv::new();
    // GRUB's EFI loader needs more than 256 MiB to load the kernel and initrd.
    env.create(
        "efi",
        &[
            "--cdrom",
            &fixture("boot.iso"),
            "--boot",
            "uefi",
            "--disk",
            "none",
            "--memory",
            "512",
        ],
    );
    let log = env.wait_console("efi", "BERTH-GUEST-OK");
    assert!(log.contains("BdsDxe"), "OVMF did not boot it:\n{log}");
    assert!(env.vm_dir("efi").join("OVMF_VARS.fd").is_file());
    let info = env.ok(&["vm", "dominfo", "efi"]);
    assert!(info.contains("Firmware:       uefi"), "{info}");
}

#[test]
fn cloud_init_seed_reaches_an_imported_guest() {
    let env = VmEnv::new();
    // The hybrid ISO boots as a disk too: it stands in for a cloud image.
    let image = env.root.path().join("cloud.img");
    std::fs::copy(fixture("boot.iso"), &image).unwrap();
    let user_data = env.root.path().join("user-data.yaml");
    std::fs::write(&user_data, "#cloud-config\nhostname: seeded\n").unwrap();
    let disk = format!("path={},format=raw", image.display());
    let ci = format!("user-data={}", user_data.display());
    env.create("cloud", &["--import", "--disk", &disk, "--cloud-init", &ci]);
    // No user-data: berth writes one that sets a generated root password.
    let out = env.create_kernel_vm(
        "pw",
        "poweroff",
        &["--cloud-init", "root-password-generate=on"],
    );
    let pw = out
        .lines()
        .find_map(|l| {
            l.split(": ")
                .nth(1)
                .filter(|_| l.starts_with("Generated password"))
        })
        .unwrap_or_else(|| panic!("no generated password in:\n{out}"))
        .to_string();

    let log = env.wait_console("cloud", "BERTH-GUEST-OK");
    assert!(
        log.contains("BERTH-SEED cidata meta-data user-data"),
        "{log}"
    );
    assert!(log.contains("BERTH-USERDATA hostname: seeded"), "{log}");
    let d = disks(&log);
    assert!(
        d.iter()
            .any(|(n, _, drv)| n == "vda" && drv == "virtio_blk"),
        "{log}"
    );
    let log = env.wait_console("pw", "BERTH-GUEST-OK");
    assert!(
        log.contains(&format!("BERTH-USERDATA     root:{pw}")),
        "{log}"
    );
}
