//! Parsing Docker's option syntax: `--memory 64m`, `--cpus 1.5`, `--restart on-failure:3`,
//! `-v SRC:DST[:ro]`, `--mount type=bind,src=..,dst=..`, `-e K[=V]`, `--env-file`,
//! `--label k=v`. Errors name the option and the value at fault.

use std::path::Path;

use crate::state::{MountConfig, MountKind, RestartPolicy};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("invalid memory value {0:?}: use a number with an optional unit b, k, m or g")]
    Memory(String),
    #[error("invalid memory value {0:?}: the minimum allowed is 6MB")]
    MemoryTooSmall(String),
    #[error("invalid --cpus value {value:?}: range of CPUs is from 0.01 to {max}.00, as there are only {max} CPUs available")]
    Cpus { value: String, max: usize },
    #[error("invalid --pids-limit value {0:?}")]
    Pids(String),
    #[error(
        "invalid restart policy {0:?}: use no, always, unless-stopped or on-failure[:max-retries]"
    )]
    Restart(String),
    #[error("invalid volume specification {0:?}")]
    Volume(String),
    #[error("invalid mount config {spec:?}: {reason}")]
    Mount { spec: String, reason: String },
    #[error("invalid mount config: bind source path does not exist: {0}")]
    MissingBindSource(String),
    #[error("invalid label {0:?}: use key=value")]
    Label(String),
    #[error("read env file {path}: {reason}")]
    EnvFile { path: String, reason: String },
    #[error("invalid capability {0:?}")]
    Capability(String),
}

/// `64m`, `1g`, `512k`, `1048576` → bytes.
pub fn parse_memory(s: &str) -> Result<i64, OptionError> {
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let mult: f64 = match unit.trim_end_matches('b') {
        "" if unit.is_empty() || unit == "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(OptionError::Memory(s.into())),
    };
    let n: f64 = num.parse().map_err(|_| OptionError::Memory(s.into()))?;
    if !n.is_finite() || n < 0.0 {
        return Err(OptionError::Memory(s.into()));
    }
    let bytes = (n * mult) as i64;
    if bytes < 6 * 1024 * 1024 {
        return Err(OptionError::MemoryTooSmall(s.into()));
    }
    Ok(bytes)
}

pub fn parse_cpus(s: &str, host_cpus: usize) -> Result<f64, OptionError> {
    let err = || OptionError::Cpus {
        value: s.into(),
        max: host_cpus,
    };
    let v: f64 = s.trim().parse().map_err(|_| err())?;
    if !(0.01..=host_cpus as f64).contains(&v) {
        return Err(err());
    }
    Ok(v)
}

pub fn parse_pids_limit(s: &str) -> Result<i64, OptionError> {
    match s.trim().parse::<i64>() {
        Ok(v) if v != 0 => Ok(v),
        _ => Err(OptionError::Pids(s.into())),
    }
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy, OptionError> {
    match s.split_once(':') {
        None => match s {
            "" | "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure(0)),
            _ => Err(OptionError::Restart(s.into())),
        },
        Some(("on-failure", n)) => n
            .parse()
            .map(RestartPolicy::OnFailure)
            .map_err(|_| OptionError::Restart(s.into())),
        Some(_) => Err(OptionError::Restart(s.into())),
    }
}

fn is_volume_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `-v SRC:DST[:OPTS]`, `-v DST` (anonymous volume). Bind sources must exist (Docker
/// creates missing ones for `-v` but that hides typos; berth refuses, like `--mount`).
pub fn parse_volume(spec: &str) -> Result<MountConfig, OptionError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || OptionError::Volume(spec.into());
    let (source, target, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(bad()),
    };
    if !target.starts_with('/') {
        return Err(bad());
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" | "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave"
            | "rslave" | "nocopy" => {}
            _ => return Err(bad()),
        }
    }
    let kind = if source.is_empty() || is_volume_name(source) && !source.starts_with('/') {
        MountKind::Volume
    } else if source.starts_with('/') {
        if !Path::new(source).exists() {
            return Err(OptionError::MissingBindSource(source.into()));
        }
        MountKind::Bind
    } else {
        return Err(bad());
    };
    Ok(MountConfig {
        kind,
        source: source.into(),
        target: target.into(),
        readonly,
    })
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly]`.
pub fn parse_mount(spec: &str) -> Result<MountConfig, OptionError> {
    let err = |reason: &str| OptionError::Mount {
        spec: spec.into(),
        reason: reason.into(),
    };
    let (mut kind, mut source, mut target, mut readonly) =
        (MountKind::Volume, String::new(), String::new(), false);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => return Err(err("type must be bind, volume or tmpfs")),
                }
            }
            "source" | "src" => source = v.into(),
            "target" | "destination" | "dst" => target = v.into(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" | "volume-nocopy" | "tmpfs-size" | "tmpfs-mode" | "consistency" => {}
            _ => return Err(err(&format!("unknown option {k:?}"))),
        }
    }
    if !target.starts_with('/') {
        return Err(err("target must be an absolute path"));
    }
    if kind == MountKind::Bind {
        if source.is_empty() {
            return Err(err("bind mounts need a source"));
        }
        if !Path::new(&source).exists() {
            return Err(OptionError::MissingBindSource(source));
        }
    }
    Ok(MountConfig {
        kind,
        source,
        target,
        readonly,
    })
}

/// `-e K=V` or `-e K` (the value comes from berth's own environment; absent → skipped).
pub fn parse_env(spec: &str) -> Option<String> {
    if spec.contains('=') {
        Some(spec.to_string())
    } else {
        std::env::var(spec).ok().map(|v| format!("{spec}={v}"))
    }
}

pub fn read_env_file(path: &Path) -> Result<Vec<String>, OptionError> {
    let text = std::fs::read_to_string(path).map_err(|e| OptionError::EnvFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_env)
        .collect())
}

pub fn parse_label(spec: &str) -> Result<(String, String), OptionError> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        None if !spec.is_empty() => Ok((spec.into(), String::new())),
        _ => Err(OptionError::Label(spec.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("10485760").unwrap(), 10 << 20);
        assert_eq!(parse_memory("7mb").unwrap(), 7 << 20);
        assert!(matches!(parse_memory("lots"), Err(OptionError::Memory(_))));
        assert!(matches!(
            parse_memory("1k"),
            Err(OptionError::MemoryTooSmall(_))
        ));
        assert!(parse_memory("-5m").is_err());
    }

    #[test]
    fn cpus_restart_pids() {
        assert_eq!(parse_cpus("1.5", 2).unwrap(), 1.5);
        assert!(parse_cpus("3", 2)
            .unwrap_err()
            .to_string()
            .contains("only 2 CPUs"));
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure(3)
        );
        assert_eq!(
            parse_restart("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(parse_pids_limit("100").unwrap(), 100);
        assert!(parse_pids_limit("x").is_err());
    }

    #[test]
    fn volumes_and_mounts() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!((v.kind, v.readonly), (MountKind::Bind, true));
        let v = parse_volume("cache:/cache").unwrap();
        assert_eq!(v.kind, MountKind::Volume);
        assert_eq!(parse_volume("/anon").unwrap().source, "");
        assert_eq!(
            parse_volume("/no/such/dir/here:/x").unwrap_err(),
            OptionError::MissingBindSource("/no/such/dir/here".into())
        );
        assert!(parse_volume("rel/path:/x").is_err());
        assert!(parse_volume("/tmp:data").is_err());
        let m = parse_mount("type=tmpfs,target=/run").unwrap();
        assert_eq!(m.kind, MountKind::Tmpfs);
        let m = parse_mount("type=bind,src=/tmp,dst=/t,readonly").unwrap();
        assert!(m.readonly);
        assert!(parse_mount("type=bind,dst=/t").is_err());
    }
}
