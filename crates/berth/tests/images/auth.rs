//! Credentials: a real registry that demands basic auth, with login and logout.

use std::process::Command;

use crate::support::*;

#[test]
fn login_pull_push_logout_against_a_basic_auth_registry() {
    let htpasswd_tool = require_tool("htpasswd");
    let dir = TempDir::new("htpasswd");
    let file = dir.path().join("htpasswd");
    run_ok(Command::new(htpasswd_tool).args(["-Bbc", file.to_str().unwrap(), "alice", "s3cret"]));
    let reg = Registry::start_with_auth(Some(&file));
    let b = Berth::new();
    let target = reg.reference("private/busybox:1");
    b.load_fixture("busybox.oci.tar", &target);

    let err = b.fails(&["push", &target]);
    assert!(err.contains("authentication required"), "{err}");

    let err = b.fails(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    assert!(err.contains("incorrect username or password"), "{err}");
    assert!(!b.docker_config.path().join("config.json").exists());

    let out = b
        .cmd(&["login", "-u", "alice", "--password-stdin", &reg.host()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"s3cret\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Login Succeeded"
    );
    let config = std::fs::read_to_string(b.docker_config.path().join("config.json")).unwrap();
    assert!(config.contains(&reg.host()), "{config}");

    b.ok(&["push", &target]);
    b.ok(&["rmi", &target]);
    b.ok(&["pull", &target]);

    b.ok(&["logout", &reg.host()]);
    b.ok(&["rmi", &target]);
    let err = b.fails(&["pull", &target]);
    assert!(err.contains("authentication required"), "{err}");
}
