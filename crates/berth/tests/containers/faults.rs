//! Bad input: a clear one-line error and nothing created.

use super::*;

fn container_count(b: &Berth) -> usize {
    b.ok(&["ps", "-aq"]).lines().count()
}

#[test]
fn bad_input_is_refused_and_creates_nothing() {
    let b = with_busybox();
    b.ok(&["create", "--name", "taken", "busybox", "true"]);
    let before = container_count(&b);
    let port = free_port();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "run".into(),
                "--pull".into(),
                "never".into(),
                "no-such-image".into(),
            ],
            "no such image",
        ),
        (
            vec!["run".into(), format!("127.0.0.1:{port}/missing:1")],
            "cannot reach registry",
        ),
        (
            vec![
                "run".into(),
                "-p".into(),
                "99999:80".into(),
                "busybox".into(),
            ],
            "99999",
        ),
        (
            vec![
                "run".into(),
                "-p".into(),
                "80:http".into(),
                "busybox".into(),
            ],
            "invalid",
        ),
        (
            vec![
                "run".into(),
                "--name".into(),
                "taken".into(),
                "busybox".into(),
            ],
            "already in use",
        ),
        (
            vec![
                "run".into(),
                "-v".into(),
                "/no/such/dir:/x".into(),
                "busybox".into(),
            ],
            "bind source path does not exist: /no/such/dir",
        ),
        (
            vec![
                "run".into(),
                "--memory".into(),
                "lots".into(),
                "busybox".into(),
            ],
            "invalid memory value",
        ),
        (
            vec![
                "run".into(),
                "--memory".into(),
                "1k".into(),
                "busybox".into(),
            ],
            "minimum",
        ),
        (
            vec!["run".into(), "--cpus".into(), "99".into(), "busybox".into()],
            "--cpus",
        ),
        (
            vec![
                "run".into(),
                "--restart".into(),
                "sometimes".into(),
                "busybox".into(),
            ],
            "restart policy",
        ),
        (
            vec![
                "run".into(),
                "--network".into(),
                "nonet".into(),
                "busybox".into(),
            ],
            "network nonet not found",
        ),
        (
            vec![
                "run".into(),
                "--cap-add".into(),
                "CAP_FLY".into(),
                "busybox".into(),
            ],
            "invalid capability",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = b.run(&args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        // Docker's "Unable to find image ... locally" notice may come first; the error is
        // the one line that starts with "berth:".
        assert_eq!(
            err.lines().filter(|l| l.starts_with("berth:")).count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert_eq!(container_count(&b), before, "{args:?} created a container");
    }
    let err = b.fails(&["stop", "nothing-here"]);
    assert!(err.contains("no such container: nothing-here"), "{err}");
    let err = b.fails(&["kill", "-s", "SIGNOPE", "taken"]);
    assert!(
        err.contains("SIGNOPE") || err.contains("not running"),
        "{err}"
    );
    let err = b.fails(&["start", "-a", "taken", "taken"]);
    assert!(err.contains("multiple"), "{err}");
}

#[test]
fn a_missing_command_is_reported_with_the_exit_code_docker_uses() {
    let b = with_busybox();
    let out = b.run(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/binary"), "{err}");
    assert!(
        b.ok(&["ps", "-aq"]).is_empty(),
        "--rm leaves nothing even when the start fails"
    );
}
