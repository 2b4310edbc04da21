//! `--cloud-init [user-data=FILE][,meta-data=FILE][,network-config=FILE]
//! [,root-password-generate=on][,root-password-file=FILE][,ssh-key=FILE][,disable=on]`,
//! virt-install's option. With no options it means `root-password-generate=on,disable=on`,
//! as in virt-install.

use std::path::PathBuf;

use super::{parse_bool, ConfigError, OptList};

const FLAG: &str = "--cloud-init";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudInitConfig {
    pub user_data: Option<PathBuf>,
    pub meta_data: Option<PathBuf>,
    pub network_config: Option<PathBuf>,
    pub root_password_generate: bool,
    pub root_password_file: Option<PathBuf>,
    pub ssh_key: Option<PathBuf>,
    /// Disable cloud-init in the guest after its first boot.
    pub disable: bool,
}

impl CloudInitConfig {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if value.is_empty() {
            return Ok(CloudInitConfig {
                root_password_generate: true,
                disable: true,
                ..Default::default()
            });
        }
        let opts = OptList::parse(value);
        if let Some(b) = &opts.bare {
            return Err(ConfigError::UnknownOption {
                flag: FLAG,
                value: value.to_string(),
                key: b.clone(),
            });
        }
        let mut c = CloudInitConfig::default();
        for (k, v) in &opts.pairs {
            let file = || {
                if v.is_empty() {
                    Err(ConfigError::bad(FLAG, value, k, "a file"))
                } else {
                    Ok(Some(PathBuf::from(v)))
                }
            };
            let flag =
                || parse_bool(v).ok_or_else(|| ConfigError::bad(FLAG, value, k, "on or off"));
            match k.as_str() {
                "user-data" => c.user_data = file()?,
                "meta-data" => c.meta_data = file()?,
                "network-config" => c.network_config = file()?,
                "root-password-generate" => c.root_password_generate = flag()?,
                "root-password-file" => c.root_password_file = file()?,
                "ssh-key" => c.ssh_key = file()?,
                "disable" => c.disable = flag()?,
                _ => {
                    return Err(ConfigError::UnknownOption {
                        flag: FLAG,
                        value: value.to_string(),
                        key: k.clone(),
                    })
                }
            }
        }
        if c.root_password_generate && c.root_password_file.is_some() {
            return Err(ConfigError::invalid(
                FLAG,
                value,
                "root-password-generate and root-password-file exclude each other",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let c =
            CloudInitConfig::parse("user-data=/a/ud.yaml,root-password-generate=on,ssh-key=/k.pub")
                .unwrap();
        assert_eq!(c.user_data.as_deref(), Some("/a/ud.yaml".as_ref()));
        assert!(c.root_password_generate);
        assert_eq!(c.ssh_key.as_deref(), Some("/k.pub".as_ref()));
        assert!(!c.disable);
        let bare = CloudInitConfig::parse("").unwrap();
        assert!(bare.root_password_generate && bare.disable);
        assert!(CloudInitConfig::parse("user-data=").is_err());
        assert!(CloudInitConfig::parse("foo=1").is_err());
        assert!(CloudInitConfig::parse("root-password-generate=on,root-password-file=/p").is_err());
    }
}
