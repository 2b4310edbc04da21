//! The NoCloud seed for `--cloud-init`: an ISO 9660 volume labelled `cidata` holding
//! `user-data`, `meta-data` and perhaps `network-config`, attached as a CD-ROM. cloud-init
//! finds it by its label (see cloud-init's NoCloud datasource documentation).
//!
//! berth writes the ISO itself (`iso::write`) rather than calling genisoimage or xorriso:
//! the image is three small files in one directory, and a tool that may be missing would
//! make `vm create` fail for want of a package.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::CloudInitConfig;
use crate::iso::{write_iso, IsoFile, IsoWriteError};

#[derive(Debug, thiserror::Error)]
pub enum CloudInitError {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write the cloud-init seed")]
    Write(#[source] IsoWriteError),
    #[error("read random bytes for the root password")]
    Random(#[source] io::Error),
}

/// What the seed holds, and the password generated for root if one was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub user_data: Vec<u8>,
    pub meta_data: Vec<u8>,
    pub network_config: Option<Vec<u8>>,
    pub generated_password: Option<String>,
    /// Options that the given user-data file overrides.
    pub ignored: Vec<&'static str>,
}

fn read(path: &Path) -> Result<Vec<u8>, CloudInitError> {
    std::fs::read(path).map_err(|source| CloudInitError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds the seed's files for VM `name` with instance id `uuid`.
pub fn build_seed(c: &CloudInitConfig, name: &str, uuid: &str) -> Result<Seed, CloudInitError> {
    let meta_data = match &c.meta_data {
        Some(p) => read(p)?,
        None => format!("instance-id: {uuid}\nlocal-hostname: {name}\n").into_bytes(),
    };
    let network_config = c.network_config.as_deref().map(read).transpose()?;
    let mut ignored = Vec::new();
    let mut generated_password = None;
    let user_data = match &c.user_data {
        Some(p) => {
            if c.root_password_generate {
                ignored.push("root-password-generate");
            }
            if c.root_password_file.is_some() {
                ignored.push("root-password-file");
            }
            if c.ssh_key.is_some() {
                ignored.push("ssh-key");
            }
            if c.disable {
                ignored.push("disable");
            }
            read(p)?
        }
        None => {
            let password = if c.root_password_generate {
                let p = random_password()?;
                generated_password = Some(p.clone());
                Some(p)
            } else if let Some(f) = &c.root_password_file {
                let text = String::from_utf8_lossy(&read(f)?).into_owned();
                Some(text.lines().next().unwrap_or_default().to_string())
            } else {
                None
            };
            let key = match &c.ssh_key {
                Some(f) => Some(
                    String::from_utf8_lossy(&read(f)?)
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            generated_user_data(password.as_deref(), key.as_deref(), c.disable).into_bytes()
        }
    };
    Ok(Seed {
        user_data,
        meta_data,
        network_config,
        generated_password,
        ignored,
    })
}

/// A `#cloud-config` setting root's password (expired at first login, as virt-install
/// does), root's SSH key, and disabling cloud-init after the first boot.
fn generated_user_data(password: Option<&str>, ssh_key: Option<&str>, disable: bool) -> String {
    let mut s = String::from("#cloud-config\n");
    if let Some(p) = password {
        s.push_str(&format!(
            "chpasswd:\n  list: |\n    root:{p}\n  expire: True\nssh_pwauth: True\n"
        ));
    }
    if let Some(k) = ssh_key {
        s.push_str(&format!(
            "disable_root: false\nusers:\n  - default\n  - name: root\n    ssh_authorized_keys:\n      - {}\n",
            yaml_quote(k)
        ));
    }
    if disable {
        s.push_str("runcmd:\n  - [ touch, /etc/cloud/cloud-init.disabled ]\n");
    }
    s
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// 16 characters from an unambiguous alphabet, from the kernel's random source.
fn random_password() -> Result<String, CloudInitError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::new();
    let mut buf = [0u8; 64];
    while out.len() < 16 {
        crate::random::fill(&mut buf).map_err(CloudInitError::Random)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for &b in &buf {
            if (b as usize) < limit && out.len() < 16 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// Writes the seed as an ISO at `path`.
pub fn write_seed(seed: &Seed, path: &Path) -> Result<(), CloudInitError> {
    let mut files = vec![
        IsoFile {
            name: "meta-data".into(),
            data: seed.meta_data.clone(),
        },
        IsoFile {
            name: "user-data".into(),
            data: seed.user_data.clone(),
        },
    ];
    if let Some(n) = &seed.network_config {
        files.push(IsoFile {
            name: "network-config".into(),
            data: n.clone(),
        });
    }
    write_iso(path, "cidata", &files).map_err(CloudInitError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_user_data_sets_password_key_and_disable() {
        let c = CloudInitConfig {
            root_password_generate: true,
            disable: true,
            ..Default::default()
        };
        let s = build_seed(&c, "vm1", "uuid-1").unwrap();
        let pw = s.generated_password.clone().unwrap();
        assert_eq!(pw.len(), 16);
        let ud = String::from_utf8(s.user_data).unwrap();
        assert!(ud.starts_with("#cloud-config\n"), "{ud}");
        assert!(ud.contains(&format!("root:{pw}")), "{ud}");
        assert!(ud.contains("cloud-init.disabled"), "{ud}");
        assert_eq!(
            String::from_utf8(s.meta_data).unwrap(),
            "instance-id: uuid-1\nlocal-hostname: vm1\n"
        );
        assert!(s.ignored.is_empty());
    }

    #[test]
    fn ssh_key_is_quoted() {
        let ud = generated_user_data(None, Some("ssh-ed25519 AAAA user@h"), false);
        assert!(ud.contains("      - \"ssh-ed25519 AAAA user@h\"\n"), "{ud}");
        assert!(!ud.contains("chpasswd"));
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(random_password().unwrap(), random_password().unwrap());
    }
}
