//! Lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook runs with the
//! container's state JSON on stdin, its own args and env, and an optional timeout.
//! prestart/createRuntime run in the runtime (`create`), createContainer and startContainer
//! in the container init, poststart in `start`, poststop in `delete`.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::spec::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{stage} hook #{index} ({path}): start")]
    Spawn {
        stage: &'static str,
        index: usize,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{stage} hook #{index} ({path}) failed: {status}{output}")]
    Failed {
        stage: &'static str,
        index: usize,
        path: String,
        status: String,
        output: String,
    },
    #[error("{stage} hook #{index} ({path}) timed out after {secs}s")]
    Timeout {
        stage: &'static str,
        index: usize,
        path: String,
        secs: i64,
    },
}

/// Runs hooks in order; the first failure stops the rest.
pub fn run(stage: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(stage, index, hook, state)?;
    }
    Ok(())
}

fn run_one(stage: &'static str, index: usize, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path.clone();
    let mut cmd = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        stage,
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    stage,
                    index,
                    path,
                    source,
                })
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                stage,
                index,
                path,
                secs: hook.timeout.unwrap_or(0),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let mut output = String::new();
    if !out.trim().is_empty() {
        output.push_str(&format!(", stdout: {}", out.trim()));
    }
    if !err.trim().is_empty() {
        output.push_str(&format!(", stderr: {}", err.trim()));
    }
    Err(HookError::Failed {
        stage,
        index,
        path,
        status: status.to_string(),
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["GREETING=hi".into()],
            timeout,
        }
    }

    #[test]
    fn hook_gets_state_on_stdin_and_its_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!("cat > {0}; echo \" $GREETING\" >> {0}", out.display());
        run(
            "prestart",
            &[hook(&["sh", "-c", &script], None)],
            br#"{"id":"c1"}"#,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c1\"} hi\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failing_hook_reports_its_output() {
        let err = run(
            "poststop",
            &[hook(&["sh", "-c", "echo bad >&2; exit 3"], None)],
            b"{}",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("stderr: bad"),
            "{msg}"
        );
    }

    #[test]
    fn slow_hook_times_out() {
        let err = run(
            "prestart",
            &[hook(&["sh", "-c", "sleep 5"], Some(1))],
            b"{}",
        )
        .unwrap_err();
        assert!(matches!(err, HookError::Timeout { .. }));
    }
}
