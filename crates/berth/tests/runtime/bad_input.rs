//! Bad input: a clear error in runc's format, a non-zero status, and nothing left behind
//! (no state directory, no cgroup, no process).

use super::harness::{cgroup_dirs_named, id, Bundle, Runc};

/// Asserts runc's error line and an empty state root and cgroupfs.
fn assert_clean_failure(runc: &Runc, stderr: &str, id: &str, want: &str) {
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("time=\"") && line.contains(" level=error msg=\""),
        "not runc's format: {stderr}"
    );
    assert!(line.contains(want), "want {want:?} in {line}");
    assert!(
        runc.state_entries().is_empty(),
        "state left: {:?}",
        runc.state_entries()
    );
    assert!(
        cgroup_dirs_named(id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_named(id)
    );
}

#[test]
fn invalid_config_json_is_rejected() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["true"]);
    std::fs::write(b.path().join("config.json"), "{bad").unwrap();
    let id = id("badjson");
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert_clean_failure(&runc, &err, &id, "berth-runc create failed: parse");
}

#[test]
fn missing_config_json_is_rejected() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let id = id("noconfig");
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert_clean_failure(
        &runc,
        &err,
        &id,
        "JSON specification file config.json not found",
    );
}

#[test]
fn unknown_namespace_type_is_rejected() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "foo"}))
    });
    let id = id("badns");
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert_clean_failure(&runc, &err, &id, r#"namespace \"foo\" does not exist"#);
}

#[test]
fn missing_rootfs_is_rejected() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["true"]);
    b.edit(|c| c["root"]["path"] = "nope".into());
    let id = id("norootfs");
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert_clean_failure(&runc, &err, &id, "invalid rootfs: stat");
}

#[test]
fn id_already_in_use_is_rejected_and_the_first_container_survives() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("dup");
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert!(
        err.contains("container with given ID already exists"),
        "{err}"
    );
    assert_eq!(runc.status(&id), "created");
    runc.ok(&["delete", &id]);
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn unknown_signal_name_is_rejected() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("badsig");
    runc.ok(&["run", "-d", "--bundle", b.arg(), &id]);
    let err = runc.fails(&["kill", &id, "FOO"]);
    assert!(err.contains(r#"unknown signal \"FOO\""#), "{err}");
    assert_eq!(runc.status(&id), "running");
    runc.ok(&["delete", "--force", &id]);
}

#[test]
fn failure_inside_the_init_leaves_nothing_behind() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["no-such-program"]);
    let id = id("badexec");
    let err = runc.fails(&["create", "--bundle", b.arg(), &id]);
    assert_clean_failure(
        &runc,
        &err,
        &id,
        r#"exec: \"no-such-program\": executable file not found in $PATH"#,
    );
    let b = Bundle::new(&runc, &["true"]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/x", "type": "bind", "source": "/no/such/dir"}),
        )
    });
    let err = runc.fails(&["run", "--bundle", b.arg(), &id]);
    assert_clean_failure(&runc, &err, &id, "mount source /no/such/dir of /x");
}

#[test]
fn json_log_format_writes_errors_for_containerd() {
    let runc = Runc::new();
    let log = runc.dir.path().join("log.json");
    let out = runc
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "container does not exist"
    );
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert_eq!(v["msg"], "container does not exist");
}
