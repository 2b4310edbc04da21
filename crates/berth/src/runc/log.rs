//! runc's log lines (logrus): `time="..." level=error msg="..."` on stderr, or one JSON
//! object per line in `--log` with `--log-format json`, which containerd and Podman read
//! back to show the runtime's error. With `--log`, errors also go to stderr, plain.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

pub struct Log {
    file: Option<File>,
    json: bool,
    debug: bool,
}

fn now() -> String {
    let t = berth_runtime::state::rfc3339_nano(SystemTime::now());
    // logrus prints whole seconds.
    match t.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => t,
    }
}

/// Go's %q quoting (what logrus uses for msg): backslash, quote and controls escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Log {
    pub fn open(path: Option<&Path>, format: &str, debug: bool) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        Ok(Self {
            file,
            json: format == "json",
            debug,
        })
    }

    fn line(&self, level: &str, msg: &str) -> String {
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": now()}).to_string()
        } else {
            format!("time=\"{}\" level={level} msg={}", now(), quote(msg))
        }
    }

    fn emit(&self, level: &str, msg: &str) {
        let line = self.line(level, msg);
        match &self.file {
            Some(f) => {
                let _ = writeln!(&*f, "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn error(&self, msg: &str) {
        self.emit("error", msg);
        if self.file.is_some() {
            eprintln!("{msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        self.emit("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.emit("debug", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_quote_like_logrus() {
        let log = Log {
            file: None,
            json: false,
            debug: false,
        };
        let line = log.line("error", r#"unknown signal "FOO""#);
        assert!(line.starts_with("time=\""), "{line}");
        assert!(
            line.ends_with(r#"level=error msg="unknown signal \"FOO\"""#),
            "{line}"
        );
    }

    #[test]
    fn json_lines_have_level_msg_time() {
        let log = Log {
            file: None,
            json: true,
            debug: false,
        };
        let v: serde_json::Value = serde_json::from_str(&log.line("error", "x")).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "x");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
