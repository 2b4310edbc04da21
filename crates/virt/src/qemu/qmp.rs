//! A small synchronous QMP client over a unix socket: the greeting, capabilities
//! negotiation, then one command at a time (see QEMU's docs/interop/qmp-spec: every
//! message is one JSON object on a line; asynchronous events may arrive before a reply).
//! The VM verbs (`vm/*.rs`) and the state probe (`runtime.rs`) use it.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("connect to qmp socket {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("qmp {command}")]
    Io {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("qmp {command}: qemu closed the connection")]
    Closed { command: String },
    #[error("qmp {command}: malformed reply")]
    Malformed {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("qmp {command}: unexpected reply {reply}")]
    Unexpected { command: String, reply: String },
    #[error("qmp {command}: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("qmp: no {event} event within {seconds} s")]
    EventTimeout { event: String, seconds: u64 },
}

/// The run states `query-status` reports that berth tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Stopped by `stop` (suspend) or waiting to start.
    Paused,
    /// The guest shut down but QEMU has not exited yet.
    Shutdown,
    /// Any other state QEMU reports (`inmigrate`, `internal-error`, ...).
    Other(String),
}

/// One QMP connection, in command mode.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events received while waiting for replies, oldest first.
    events: Vec<Value>,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation. `timeout` bounds
    /// every later read and write.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let connect_err = |source| QmpError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(connect_err)?;
        let writer = stream.try_clone().map_err(connect_err)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message("greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Unexpected {
                command: "greeting".into(),
                reply: greeting.to_string(),
            });
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self, command: &str) -> Result<Value, QmpError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QmpError::Io {
                command: command.to_string(),
                source,
            })?;
        if n == 0 {
            return Err(QmpError::Closed {
                command: command.to_string(),
            });
        }
        serde_json::from_str(&line).map_err(|source| QmpError::Malformed {
            command: command.to_string(),
            source,
        })
    }

    /// Runs `command` and returns its `return` value; events that arrive first are kept.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| QmpError::Io {
                command: command.to_string(),
                source,
            })?;
        loop {
            let reply = self.read_message(command)?;
            if reply.get("event").is_some() {
                self.events.push(reply);
                continue;
            }
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: e["class"].as_str().unwrap_or("Error").to_string(),
                    desc: e["desc"].as_str().unwrap_or("").to_string(),
                });
            }
            return Err(QmpError::Unexpected {
                command: command.to_string(),
                reply: reply.to_string(),
            });
        }
    }

    /// Waits for the event `name` (already received or arriving within `timeout`).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value, QmpError> {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QmpError::EventTimeout {
                    event: name.to_string(),
                    seconds: timeout.as_secs(),
                });
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|source| QmpError::Io {
                    command: name.to_string(),
                    source,
                })?;
            match self.read_message(name) {
                Ok(v) if v["event"] == name => return Ok(v),
                Ok(v) => self.events.push(v),
                Err(QmpError::Io { source, .. })
                    if matches!(
                        source.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn query_status(&mut self) -> Result<RunStatus, QmpError> {
        let r = self.execute("query-status", None)?;
        let status = r["status"].as_str().unwrap_or_default();
        Ok(match status {
            "running" => RunStatus::Running,
            "paused" | "suspended" | "prelaunch" => RunStatus::Paused,
            "shutdown" => RunStatus::Shutdown,
            other => RunStatus::Other(other.to_string()),
        })
    }

    /// Presses the ACPI power button.
    pub fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// Resets the machine at once, like the reset button.
    pub fn system_reset(&mut self) -> Result<(), QmpError> {
        self.execute("system_reset", None).map(drop)
    }

    /// Pauses the vCPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.execute("stop", None).map(drop)
    }

    /// Resumes the vCPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", None).map(drop)
    }

    /// The VNC server's address as `(host, port)`, if there is one.
    pub fn query_vnc(&mut self) -> Result<Option<(String, u16)>, QmpError> {
        let r = self.execute("query-vnc", None)?;
        if r["enabled"] != true {
            return Ok(None);
        }
        let host = r["host"].as_str().unwrap_or("127.0.0.1").to_string();
        let port = r["service"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5900);
        Ok(Some((host, port)))
    }

    /// Grows the disk attached as device `id` to `bytes`; the guest sees the new size.
    pub fn block_resize(&mut self, id: &str, bytes: u64) -> Result<(), QmpError> {
        self.execute("block_resize", Some(json!({ "device": id, "size": bytes })))
            .map(drop)
    }

    /// Runs a human monitor command (`savevm`, `loadvm`, `delvm` have no QMP equivalent
    /// in QEMU 7.2 that is not a background job); returns its output.
    pub fn human(&mut self, command_line: &str) -> Result<String, QmpError> {
        let r = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QEMU answering one client with canned lines.
    fn fake_qemu(dir: &Path, script: Vec<(&'static str, Vec<&'static str>)>) -> PathBuf {
        let path = dir.join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            for (expect, replies) in script {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                assert!(line.contains(expect), "{line} lacks {expect}");
                for reply in replies {
                    writeln!(w, "{reply}").unwrap();
                }
            }
        });
        path
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-qmp-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn events_before_a_reply_are_kept() {
        let dir = tmp("events");
        let path = fake_qemu(
            &dir,
            vec![
                ("qmp_capabilities", vec![r#"{"return": {}}"#]),
                (
                    "system_powerdown",
                    vec![
                        r#"{"event": "POWERDOWN", "timestamp": {}}"#,
                        r#"{"return": {}}"#,
                        r#"{"event": "SHUTDOWN", "data": {"guest": true}}"#,
                    ],
                ),
                (
                    "query-status",
                    vec![r#"{"return": {"status": "paused", "running": false}}"#],
                ),
            ],
        );
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        q.system_powerdown().unwrap();
        assert_eq!(q.query_status().unwrap(), RunStatus::Paused);
        assert_eq!(
            q.wait_event("POWERDOWN", Duration::from_secs(1)).unwrap()["event"],
            "POWERDOWN"
        );
        assert_eq!(
            q.wait_event("SHUTDOWN", Duration::from_secs(1)).unwrap()["data"]["guest"],
            true
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn command_errors_carry_class_and_description() {
        let dir = tmp("errors");
        let path = fake_qemu(
            &dir,
            vec![
                ("qmp_capabilities", vec![r#"{"return": {}}"#]),
                (
                    "block_resize",
                    vec![r#"{"error": {"class": "GenericError", "desc": "Cannot shrink"}}"#],
                ),
            ],
        );
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        let e = q.block_resize("vda", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "qmp block_resize: GenericError: Cannot shrink"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
