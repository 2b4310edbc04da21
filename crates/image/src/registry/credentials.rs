//! Registry credentials in Docker's `config.json` (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`), so that `docker login` and `berth login` share them. Only the
//! inline `auths` entries are used; credential helpers (`credsStore`) are not run.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::reference::DOCKER_HUB;

/// The key Docker uses for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {path}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("malformed auth entry for {host} in {path}")]
    BadEntry { host: String, path: PathBuf },
    #[error("write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
    }
}

/// The config file berth reads and writes.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".docker").join("config.json")
}

fn key_for(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

/// The `auths` keys that may hold credentials for `registry` (Docker accepts a bare host or
/// a URL with scheme).
fn matches_key(key: &str, registry: &str) -> bool {
    let bare = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let bare = bare
        .strip_suffix("/v1")
        .or(bare.strip_suffix("/v2"))
        .unwrap_or(bare);
    if registry == DOCKER_HUB {
        matches!(
            bare,
            "index.docker.io" | "docker.io" | "registry-1.docker.io"
        )
    } else {
        bare == registry
    }
}

fn load(path: &Path) -> Result<Map<String, Value>, CredentialsError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.into(),
                source,
            })
        }
    };
    serde_json::from_slice(&text).map_err(|source| CredentialsError::Malformed {
        path: path.into(),
        source,
    })
}

/// Looks up credentials for a registry host (`docker.io` for Docker Hub).
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let config = load(path)?;
    let Some(Value::Object(auths)) = config.get("auths") else {
        return Ok(None);
    };
    let Some((_, entry)) = auths.iter().find(|(k, _)| matches_key(k, registry)) else {
        return Ok(None);
    };
    let bad = || CredentialsError::BadEntry {
        host: registry.to_string(),
        path: path.into(),
    };
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })),
        _ => Ok(None),
    }
}

/// Stores credentials (`berth login`), keeping every other key of the file as it was.
pub fn store(path: &Path, registry: &str, creds: &Credentials) -> Result<(), CredentialsError> {
    let mut config = load(path)?;
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths
        .as_object_mut()
        .expect("auths was just made an object");
    auths.retain(|k, _| !matches_key(k, registry));
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    auths.insert(
        key_for(registry).to_string(),
        serde_json::json!({ "auth": token }),
    );
    write(path, &config)
}

/// Removes credentials (`berth logout`). Returns whether there were any.
pub fn remove(path: &Path, registry: &str) -> Result<bool, CredentialsError> {
    let mut config = load(path)?;
    let Some(Value::Object(auths)) = config.get_mut("auths") else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|k, _| !matches_key(k, registry));
    if auths.len() == before {
        return Ok(false);
    }
    write(path, &config)?;
    Ok(true)
}

fn write(path: &Path, config: &Map<String, Value>) -> Result<(), CredentialsError> {
    let err = |source| CredentialsError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut text = serde_json::to_vec_pretty(config).expect("a JSON map always serializes");
    text.push(b'\n');
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&text).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-creds-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("config.json")
    }

    #[test]
    fn store_lookup_remove_round_trip_keeps_other_keys() {
        let path = temp_path("rt");
        std::fs::write(
            &path,
            r#"{"credsStore":"x","auths":{"other:5000":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&path, "localhost:5000", &creds).unwrap();
        store(&path, DOCKER_HUB, &creds).unwrap();
        assert_eq!(
            lookup(&path, "localhost:5000").unwrap(),
            Some(creds.clone())
        );
        assert_eq!(lookup(&path, DOCKER_HUB).unwrap(), Some(creds));
        let other = lookup(&path, "other:5000").unwrap().unwrap();
        assert_eq!(
            (other.username.as_str(), other.password.as_str()),
            ("a", "b")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("https://index.docker.io/v1/"), "{text}");
        assert!(text.contains("credsStore"));
        assert!(remove(&path, "localhost:5000").unwrap());
        assert!(!remove(&path, "localhost:5000").unwrap());
        assert_eq!(lookup(&path, "localhost:5000").unwrap(), None);
    }

    #[test]
    fn malformed_config_names_the_file() {
        let path = temp_path("bad");
        std::fs::write(&path, "{").unwrap();
        let err = lookup(&path, "x").unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
