//! Image references (`nginx`, `ghcr.io/org/app:1.2`, `name@sha256:...`), normalised the way
//! the Docker CLI does it: a first path component that looks like a host (has a `.` or `:`,
//! or is `localhost`) names the registry, otherwise the image lives on Docker Hub, and a
//! single-component Hub name gets the `library/` prefix. A reference with neither tag nor
//! digest means `:latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";

/// A fully qualified reference: registry, repository, and a tag or digest (or both).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

fn invalid(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl Reference {
    /// The host:port to talk HTTP to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The manifest reference to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form users type and `docker images` shows: `nginx`, `user/app`,
    /// `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The same repository pinned to a digest, without tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Whether the registry is on this machine (plain HTTP is allowed for those).
    pub fn is_loopback_registry(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    bare == "localhost"
        || bare == "::1"
        || bare
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn valid_component(c: &str) -> bool {
    // Lower-case alphanumerics separated by `.`, `_`, `__` or runs of `-`
    // (distribution-spec, "Pulling manifests": the <name> grammar).
    if c.is_empty() {
        return false;
    }
    let bytes = c.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev_sep: Option<u8> = None;
    let mut sep_len = 0;
    for &b in bytes {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            prev_sep = None;
            sep_len = 0;
            continue;
        }
        match b {
            b'-' if prev_sep.is_none_or(|p| p == b'-') => {}
            b'_' if prev_sep.is_none() || (prev_sep == Some(b'_') && sep_len == 1) => {}
            b'.' if prev_sep.is_none() => {}
            _ => return false,
        }
        prev_sep = Some(b);
        sep_len += 1;
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn looks_like_host(c: &str) -> bool {
    c.contains('.') || c.contains(':') || c == "localhost"
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(invalid(input, "empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((name, d)) => (
                name,
                Some(d.parse::<Digest>().map_err(|e| invalid(input, e.reason))?),
            ),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(invalid(input, format!("invalid tag {t:?}")));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_host(first) => (first.to_string(), path.to_string()),
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if registry.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid(input, "invalid registry host"));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.len() > 255 {
            return Err(invalid(input, "repository name longer than 255 characters"));
        }
        if let Some(bad) = repository.split('/').find(|c| !valid_component(c)) {
            let reason = if bad.chars().any(|c| c.is_ascii_uppercase()) {
                "repository name must be lowercase".to_string()
            } else {
                format!("invalid repository component {bad:?}")
            };
            return Err(invalid(input, reason));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some(DEFAULT_TAG.to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn hub_short_names_are_normalised() {
        assert_eq!(r("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(r("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(r("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            r("index.docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn hosts_and_ports_are_registries() {
        assert_eq!(r("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(r("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(r("127.0.0.1:5000/a/b:c"), "127.0.0.1:5000/a/b:c");
        assert_eq!(r("ghcr.io/org/app"), "ghcr.io/org/app:latest");
    }

    #[test]
    fn digest_references_have_no_default_tag() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let parsed: Reference = format!("nginx@{d}").parse().unwrap();
        assert_eq!(parsed.tag, None);
        assert_eq!(parsed.manifest_ref(), d);
        assert_eq!(
            r(&format!("nginx:1@{d}")),
            format!("docker.io/library/nginx:1@{d}")
        );
    }

    #[test]
    fn bad_references_are_rejected() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "a//b",
            "nginx@sha256:12",
            "-a",
            "a b",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn familiar_names() {
        let p: Reference = "nginx".parse().unwrap();
        assert_eq!(p.familiar_name(), "nginx");
        assert_eq!(p.api_host(), "registry-1.docker.io");
        let p: Reference = "localhost:5000/x".parse().unwrap();
        assert_eq!(p.familiar_name(), "localhost:5000/x");
        assert!(p.is_loopback_registry());
        assert!(!"ghcr.io/x"
            .parse::<Reference>()
            .unwrap()
            .is_loopback_registry());
        assert!(is_loopback_host("127.0.0.1:41234"));
        assert!(is_loopback_host("[::1]:5000"));
    }
}
