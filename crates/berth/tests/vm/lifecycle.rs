//! Stopping guests: ACPI shutdown, destroy of a guest that ignores ACPI, a QEMU killed
//! behind berth's back, and undefine.

use super::*;

#[test]
fn shutdown_powers_off_an_acpi_guest_and_returns_after_qemu_exits() {
    let env = VmEnv::new();
    env.create_kernel_vm("acpi", "acpi", &[]);
    env.wait_console("acpi", "BERTH-WAITING acpi");
    let pid = env.qemu_pid("acpi").expect("qemu runs");
    assert_eq!(env.ok(&["vm", "domstate", "acpi"]).trim(), "running");

    // Starting a running VM: one line, nothing changes.
    let err = env.fails(&["vm", "start", "acpi"]);
    assert_eq!(err, "berth: domain acpi is already active");
    assert_eq!(env.qemu_pid("acpi"), Some(pid));

    let out = env.ok(&["vm", "shutdown", "acpi"]);
    assert!(out.contains("has been shut down"), "{out}");
    assert!(
        !is_alive(pid),
        "shutdown returned while qemu {pid} still runs"
    );
    assert_eq!(env.ok(&["vm", "domstate", "acpi"]).trim(), "shut off");
    assert!(
        !env.run_dir("acpi").exists(),
        "the run directory outlived qemu"
    );

    // Shutting down a stopped VM: one line.
    let err = env.fails(&["vm", "shutdown", "acpi"]);
    assert_eq!(err, "berth: domain acpi is not running");
}

#[test]
fn destroy_stops_a_guest_that_ignores_acpi_and_a_killed_qemu_is_shut_off() {
    let env = VmEnv::new();
    env.create_kernel_vm("stubborn", "ignore", &[]);
    env.wait_console("stubborn", "BERTH-WAITING ignore");
    let pid = env.qemu_pid("stubborn").expect("qemu runs");

    let err = env.fails(&["vm", "shutdown", "stubborn", "--timeout", "3"]);
    assert!(err.contains("did not shut down within 3 s"), "{err}");
    assert!(is_alive(pid));
    assert_eq!(env.ok(&["vm", "domstate", "stubborn"]).trim(), "running");

    env.ok(&["vm", "destroy", "stubborn"]);
    assert!(!is_alive(pid));
    assert_eq!(env.ok(&["vm", "domstate", "stubborn"]).trim(), "shut off");
    assert_eq!(
        env.fails(&["vm", "destroy", "stubborn"]),
        "berth: domain stubborn is not running"
    );

    // Killed behind berth's back: reported shut off, never running, and startable again.
    env.ok(&["vm", "start", "stubborn"]);
    let pid = env.qemu_pid("stubborn").expect("qemu runs again");
    let list = env.ok(&["vm", "list"]);
    assert!(
        list.contains(&format!(" {pid} ")) && list.contains("running"),
        "{list}"
    );
    let raw = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(raw, rustix::process::Signal::KILL).unwrap();
    while is_alive(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.ok(&["vm", "domstate", "stubborn"]).trim(), "shut off");
    let list = env.ok(&["vm", "list", "--all"]);
    let row = list.lines().find(|l| l.contains("stubborn")).unwrap();
    assert!(
        row.contains("shut off") && row.trim_start().starts_with('-'),
        "{list}"
    );
    assert!(!env.ok(&["vm", "list"]).contains("stubborn"));
    env.ok(&["vm", "start", "stubborn"]);
    env.wait_state("stubborn", "running");
    env.ok(&["vm", "destroy", "stubborn"]);
}

#[test]
fn undefine_remove_all_storage_leaves_nothing() {
    let env = VmEnv::new();
    let external = env.root.path().join("external.qcow2");
    let ext = format!("path={},size=1", external.display());
    let ud = env.root.path().join("ud.yaml");
    std::fs::write(&ud, "#cloud-config\n").unwrap();
    let ci = format!("user-data={}", ud.display());
    let iso = fixture("boot.iso");
    let iso_before = std::fs::metadata(&iso).unwrap().len();
    let out = env.create(
        "gone",
        &[
            "--cdrom",
            &iso,
            "--disk",
            "size=1",
            "--disk",
            &ext,
            "--cloud-init",
            &ci,
            "--boot",
            "uefi",
            "--no-start",
        ],
    );
    assert!(out.contains("defined"), "{out}");
    assert!(external.is_file());
    assert!(env.vm_dir("gone").join("gone.qcow2").is_file());

    // Without --remove-all-storage the disks stay.
    env.create("kept", &["--cdrom", &iso, "--disk", "size=1", "--no-start"]);
    let out = env.ok(&["vm", "undefine", "kept"]);
    assert!(out.contains("kept."), "{out}");
    assert!(env.vm_dir("kept").join("kept.qcow2").is_file());
    assert!(!env.vm_dir("kept").join("vm.json").exists());
    std::fs::remove_dir_all(env.vm_dir("kept")).unwrap();

    let out = env.ok(&["vm", "undefine", "gone", "--remove-all-storage"]);
    assert!(
        out.contains("Volume 'vda'") && out.contains("removed."),
        "{out}"
    );
    assert!(!external.exists(), "{out}");
    // Only the store's own lock directory remains, empty.
    let vms = env.root.path().join("vms");
    let left: Vec<_> = std::fs::read_dir(&vms)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with(".locks"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let locks: Vec<_> = std::fs::read_dir(vms.join(".locks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(locks.is_empty(), "lock files left behind: {locks:?}");
    assert!(!env.run_dir("gone").exists());
    assert_eq!(std::fs::metadata(&iso).unwrap().len(), iso_before);
    assert_eq!(
        env.fails(&["vm", "dominfo", "gone"]),
        "berth: domain gone not found"
    );
}
