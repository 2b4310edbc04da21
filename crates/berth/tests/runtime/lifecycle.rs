//! create / start / state / kill / delete / run / exec / pause, and runc's output shapes.

use super::harness::{eventually, id, Bundle, Runc};

#[test]
fn create_start_kill_delete_walks_every_status() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("life");
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    let st = runc.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["bundle"], b.arg());
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(keys.iter().any(|x| *x == k), "state lacks {k}: {st}");
    }
    runc.ok(&["start", &id]);
    assert_eq!(runc.status(&id), "running");
    let msg = runc.fails(&["start", &id]);
    assert!(
        msg.contains("cannot start an already running container"),
        "{msg}"
    );
    let msg = runc.fails(&["delete", &id]);
    assert!(msg.contains("that is not stopped: running"), "{msg}");
    runc.ok(&["pause", &id]);
    assert_eq!(runc.status(&id), "paused");
    runc.ok(&["resume", &id]);
    assert_eq!(runc.status(&id), "running");
    runc.ok(&["kill", &id, "KILL"]);
    eventually("the container to stop", || runc.status(&id) == "stopped");
    assert_eq!(runc.state(&id)["pid"], 0);
    runc.ok(&["delete", &id]);
    assert!(runc.state_entries().is_empty());
    let msg = runc.fails(&["state", &id]);
    assert!(msg.contains("container does not exist"), "{msg}");
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    let runc = Runc::new();
    // A shell that reports the signals it gets, so pid 1 has handlers.
    let b = Bundle::new(
        &runc,
        &["sh", "-c", "trap 'echo USR1 >> /sig' USR1; trap 'echo TERM >> /sig; exit 0' TERM; while :; do sleep 0.05; done"],
    );
    let id = id("sigs");
    runc.ok(&["run", "-d", "--bundle", b.arg(), &id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    runc.ok(&["kill", &id, "USR1"]);
    eventually("USR1", || {
        std::fs::read_to_string(b.rootfs().join("sig")).is_ok_and(|s| s.contains("USR1"))
    });
    runc.ok(&["kill", &id, "10"]);
    runc.ok(&["kill", &id, "SIGTERM"]);
    eventually("the container to exit", || runc.status(&id) == "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("sig")).unwrap(),
        "USR1\nUSR1\nTERM\n"
    );
    let msg = runc.fails(&["kill", &id, "KILL"]);
    assert!(msg.contains("container not running"), "{msg}");
    runc.ok(&["delete", &id]);
}

#[test]
fn run_in_foreground_returns_the_exit_code_and_removes_the_container() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = id("fg");
    let out = runc.run(&["run", "--bundle", b.arg(), &id]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert!(runc.state_entries().is_empty());
}

#[test]
fn container_gets_its_own_namespaces_hostname_and_env() {
    let runc = Runc::new();
    let b = Bundle::new(
        &runc,
        &[
            "sh",
            "-c",
            "echo $$ $(hostname) $FOO $HOME; cat /proc/self/uid_map | wc -l",
        ],
    );
    b.edit(|c| {
        c["hostname"] = "box".into();
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("FOO=bar".into());
    });
    let out = runc.ok(&["run", "--bundle", b.arg(), &id("ns")]);
    assert_eq!(out.lines().next().unwrap(), "1 box bar /root");
}

#[test]
fn exec_joins_the_container_and_reports_the_exit_code() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("exec");
    runc.ok(&["run", "-d", "--bundle", b.arg(), &id]);
    let out = runc.run(&[
        "exec",
        "--env",
        "X=1",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $X $(pwd) $(cat /proc/1/cmdline | tr '\\0' ' '); exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 /tmp sleep 100\n");
    // --process (containerd and conmon), detached, with a pid file.
    let proc_json = runc.dir.path().join("process.json");
    std::fs::write(
        &proc_json,
        r#"{"args":["sh","-c","echo detached > /exec-marker"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#,
    )
    .unwrap();
    let pid_file = runc.dir.path().join("exec.pid");
    runc.ok(&[
        "exec",
        "--process",
        proc_json.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .parse::<i32>()
            .unwrap()
            > 0
    );
    eventually("the detached exec", || {
        b.rootfs().join("exec-marker").exists()
    });
    let ps: Vec<i64> = serde_json::from_str(&runc.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.contains(&runc.state(&id)["pid"].as_i64().unwrap()));
    let table = runc.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    let msg = runc.fails(&["exec", &id, "no-such-program"]);
    assert!(
        msg.contains(r#"exec: \"no-such-program\": executable file not found in $PATH"#),
        "{msg}"
    );
    runc.ok(&["delete", "--force", &id]);
}

#[test]
fn list_prints_runc_table_and_json() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sleep", "100"]);
    let id = id("list");
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    let table = runc.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert!(lines.next().unwrap().starts_with(&id));
    let json: serde_json::Value =
        serde_json::from_str(&runc.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["status"], "created");
    assert_eq!(json[0]["owner"], "root");
    assert_eq!(runc.ok(&["list", "-q"]).trim(), id);
    // A created container is deleted without --force, as runc does.
    runc.ok(&["delete", &id]);
    assert!(runc.state_entries().is_empty());
}

#[test]
fn hooks_run_at_their_stages_with_the_state_on_stdin() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["true"]);
    let log = runc.dir.path().join("hooks.log");
    let hook = |stage: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {stage} \"$s\" >> {}", log.display())]});
    b.edit(|c| {
        c["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")], "poststop": [hook("poststop")],
        });
    });
    let id = id("hooks");
    runc.ok(&["create", "--bundle", b.arg(), &id]);
    runc.ok(&["start", &id]);
    eventually("the container to stop", || runc.status(&id) == "stopped");
    runc.ok(&["delete", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let stages: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        stages,
        ["prestart", "createRuntime", "poststart", "poststop"]
    );
    assert!(text.contains(&format!("\"id\":\"{id}\"")), "{text}");
}

#[test]
fn spec_writes_runc_default_config() {
    let runc = Runc::new();
    let dir = crate::support::TempDir::new("spec");
    let out = runc
        .cmd(&["spec"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(text.starts_with("{\n\t\"ociVersion\""), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["process"]["args"][0], "sh");
    let again = runc
        .cmd(&["spec"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let features: serde_json::Value = serde_json::from_str(&runc.ok(&["features"])).unwrap();
    assert_eq!(features["linux"]["cgroup"]["v1"], true);
}
