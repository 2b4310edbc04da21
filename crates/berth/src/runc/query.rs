//! `state`, `list`, `ps` and `events`: read-only views in runc's output formats.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_runtime::{Container, OciState, Status};

pub fn state(root: &Path, id: &str) -> Result<ExitCode> {
    let c = Container::load(root, id)?;
    // Two-space indent and no trailing newline, as runc prints it.
    std::io::stdout().write_all(serde_json::to_string_pretty(&c.oci_state())?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The user name owning a path, as `list` shows it.
fn owner_of(path: &Path) -> String {
    let Ok(uid) = std::fs::metadata(path).map(|m| m.uid()) else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Go's text/tabwriter with runc's settings (minwidth 12, padding 3).
pub fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

pub fn list(root: &Path, format: &str, quiet: bool) -> Result<ExitCode> {
    let containers = Container::list(root)?;
    if quiet {
        for c in &containers {
            println!("{}", c.id());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let states: Vec<(OciState, String)> = containers
        .iter()
        .map(|c| {
            let mut s = c.oci_state();
            s.owner = owner_of(c.dir());
            (s, String::new())
        })
        .collect();
    match format {
        "json" => {
            let v: Vec<&OciState> = states.iter().map(|(s, _)| s).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (s, _) in &states {
                rows.push(vec![
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print!("{}", tabulate(&rows));
        }
        other => bail!("invalid format option {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<ExitCode> {
    let c = Container::load(root, id)?;
    let pids = c.pids()?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            return Ok(ExitCode::SUCCESS);
        }
        "table" => {}
        other => bail!("invalid format option {other:?}"),
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("couldn't find PID field in ps output")?;
    println!("{header}");
    for l in lines {
        let pid: Option<i32> = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_interval(s: &str) -> Result<Duration> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => bail!("invalid interval {s:?}"),
    };
    Ok(Duration::from_secs_f64(secs))
}

pub fn events(root: &Path, id: &str, stats: bool, interval: &str) -> Result<ExitCode> {
    let c = Container::load(root, id)?;
    let event =
        |c: &Container| serde_json::json!({"type": "stats", "id": c.id(), "data": c.stats()});
    if stats {
        println!("{}", event(&c));
        return Ok(ExitCode::SUCCESS);
    }
    let every = parse_interval(interval)?;
    loop {
        if c.status() == Status::Stopped {
            return Ok(ExitCode::SUCCESS);
        }
        println!("{}", event(&c));
        std::io::stdout().flush()?;
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_table_matches_runc_columns() {
        let rows = vec![
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec(),
            [
                "t1",
                "436",
                "created",
                "/tmp/rs",
                "2026-11-29T06:08:57.407929408Z",
                "root",
            ]
            .map(String::from)
            .to_vec(),
        ];
        assert_eq!(
            tabulate(&rows),
            "ID          PID         STATUS      BUNDLE      CREATED                          OWNER\n\
             t1          436         created     /tmp/rs     2026-11-29T06:08:57.407929408Z   root\n"
        );
    }

    #[test]
    fn intervals_parse_like_go_durations() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("5x").is_err());
    }
}
