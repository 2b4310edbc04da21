//! Bad input: every case is one line on stderr, and nothing is created or changed.

use super::*;

/// Every file under `dir`, for "nothing was created" checks.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bad_input_is_one_line_and_creates_nothing() {
    let env = VmEnv::new();
    let iso = fixture("boot.iso");
    let kernel = fixture("vmlinuz");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["vm", "create", "--name", "bad", "--noautoconsole"]
            .map(String::from)
            .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            base(&["--cdrom", "/nonexistent/ubuntu.iso"]),
            "berth: cdrom /nonexistent/ubuntu.iso does not exist",
        ),
        (
            base(&["--kernel", "/nonexistent/vmlinuz"]),
            "berth: kernel /nonexistent/vmlinuz does not exist",
        ),
        (
            base(&["--kernel", &kernel, "--initrd", "/nonexistent/initrd"]),
            "berth: initrd /nonexistent/initrd does not exist",
        ),
        (
            base(&["--location", "/nonexistent/tree"]),
            "berth: install tree /nonexistent/tree does not exist",
        ),
        (
            base(&["--cdrom", &iso, "--memory", "0"]),
            "berth: --memory 0: memory must be at least 1 MiB",
        ),
        (
            base(&["--cdrom", &iso, "--memory", "1000000000"]),
            "berth: --memory 1000000000: more than the host's memory",
        ),
        (
            base(&["--cdrom", &iso, "--memory", "lots"]),
            "berth: --memory lots: expected a whole number of MiB",
        ),
        (
            base(&["--cdrom", &iso, "--vcpus", "0"]),
            "berth: --vcpus 0: a VM needs at least 1 vCPU",
        ),
        (
            base(&["--cdrom", &iso, "--disk", "size=twenty"]),
            "berth: --disk size=twenty: size must be a number of GiB",
        ),
        (
            base(&["--cdrom", &iso, "--disk", "size=20,format=vmdk"]),
            "berth: --disk size=20,format=vmdk: format must be qcow2 or raw",
        ),
        (
            base(&["--cdrom", &iso, "--disk", "path=/nonexistent/disk.qcow2"]),
            "berth: disk image /nonexistent/disk.qcow2 does not exist",
        ),
        (
            base(&["--cdrom", &iso, "--os-variant", "plan9"]),
            "berth: unknown os variant \"plan9\"",
        ),
        (
            base(&["--cdrom", &iso, "--network", "bogus"]),
            "berth: --network bogus: expected default, none, bridge=NAME or network=NAME",
        ),
        (
            base(&["--cdrom", &iso, "--port", "80"]),
            "berth: --port 80: expected [IP:]HOST:GUEST",
        ),
        (
            base(&["--cdrom", &iso, "--graphics", "spice"]),
            "berth: --graphics spice: expected none or vnc",
        ),
        (
            base(&["--cdrom", &iso, "--boot", "floppy"]),
            "berth: --boot floppy: expected uefi or bios",
        ),
        (
            base(&["--cdrom", &iso, "--import"]),
            "berth: --cdrom and --import exclude each other",
        ),
        (
            base(&["--import"]),
            "berth: --import needs a --disk path=IMAGE to boot",
        ),
        (base(&[]), "berth: an install method is required"),
        (
            base(&["--cdrom", &iso, "--network", "none", "--port", "8080:80"]),
            "berth: --port needs the default (user-mode) network",
        ),
        (
            base(&["--cdrom", &iso, "--cloud-init", "user-data=/nonexistent/ud"]),
            "berth: read /nonexistent/ud",
        ),
        (
            vec![
                "vm".into(),
                "create".into(),
                "--name".into(),
                "a/b".into(),
                "--cdrom".into(),
                iso.clone(),
            ],
            "berth: invalid name \"a/b\"",
        ),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args);
        assert!(
            err.starts_with(want),
            "berth {args:?}:\n  got  {err}\n  want {want}"
        );
        let left: Vec<_> = files_under(&env.root.path().join("vms"));
        assert!(left.is_empty(), "berth {args:?} left {left:?}");
    }

    // With KVM unusable here (no VT-x/AMD-V), --accel kvm is refused; where KVM works the
    // VM is defined.
    let kvm = env.run(&[
        "vm",
        "create",
        "--name",
        "k",
        "--noautoconsole",
        "--no-start",
        "--kernel",
        &kernel,
        "--accel",
        "kvm",
    ]);
    if !kvm.status.success() {
        let err = String::from_utf8_lossy(&kvm.stderr);
        assert!(
            err.starts_with("berth: --accel kvm: KVM is not usable here: "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(files_under(&env.root.path().join("vms")).is_empty());
    } else {
        env.ok(&["vm", "undefine", "k"]);
    }

    // A duplicate name changes nothing of the first VM.
    env.ok(&[
        "vm",
        "create",
        "--name",
        "dup",
        "--noautoconsole",
        "--no-start",
        "--kernel",
        &kernel,
    ]);
    let before = std::fs::read(env.vm_dir("dup").join("vm.json")).unwrap();
    let err = env.fails(&[
        "vm",
        "create",
        "--name",
        "dup",
        "--noautoconsole",
        "--cdrom",
        &iso,
    ]);
    assert_eq!(err, "berth: domain dup already exists");
    assert_eq!(
        std::fs::read(env.vm_dir("dup").join("vm.json")).unwrap(),
        before
    );
    assert!(!env.vm_dir("dup").join("dup.qcow2").exists());

    // Verbs on VMs that do not exist or are not running.
    for verb in [
        "start", "shutdown", "destroy", "dominfo", "domstate", "undefine", "console", "suspend",
    ] {
        assert_eq!(
            env.fails(&["vm", verb, "nosuch"]),
            "berth: domain nosuch not found",
            "{verb}"
        );
    }
    assert_eq!(
        env.fails(&["vm", "shutdown", "dup"]),
        "berth: domain dup is not running"
    );
    assert_eq!(
        env.fails(&["vm", "destroy", "dup"]),
        "berth: domain dup is not running"
    );
    assert_eq!(
        env.fails(&["vm", "suspend", "dup"]),
        "berth: domain dup is not running"
    );
    assert!(!env.root.path().join("vms/.locks/nosuch.lock").exists());
    assert!(!env.run_dir("dup").exists());
}
