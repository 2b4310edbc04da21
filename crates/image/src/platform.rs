//! Platforms (`linux/amd64`, `linux/arm64/v8`) and choosing the right manifest from an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant]")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform this binary runs on, in Go's GOOS/GOARCH names that images use.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Self {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an image for `candidate` runs here. A missing variant on either side matches,
    /// and arm64 images often omit `v8`.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && match (&self.variant, &candidate.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(s.to_string()));
        }
        let arch = |a: &str| match a {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            other => other.to_string(),
        };
        match parts.as_slice() {
            [os, a] => Ok(Self {
                os: os.to_string(),
                architecture: arch(a),
                variant: None,
            }),
            [os, a, v] => Ok(Self {
                os: os.to_string(),
                architecture: arch(a),
                variant: Some(v.to_string()),
            }),
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64".parse().unwrap();
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches(&v8));
        assert!(!p.matches(&"linux/amd64".parse().unwrap()));
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v7".parse::<Platform>().is_err());
    }
}
