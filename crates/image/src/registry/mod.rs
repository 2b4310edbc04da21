//! The registry client: the OCI distribution spec / Docker Registry HTTP API v2, with
//! anonymous and bearer-token auth (the `WWW-Authenticate` challenge), basic credentials
//! from Docker's config.json, bounded retries of idempotent requests, and plain HTTP only
//! for loopback registries or ones the user marked insecure.
//!
//! Called by `pull` and `push`; it moves bytes and checks digests of small documents, the
//! callers stream layers through it.

pub mod auth;
pub mod credentials;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::digest::Digest;
use crate::reference::{is_loopback_host, Reference};
use auth::Challenge;
use credentials::{Credentials, CredentialsError};

const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host}")]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: {status}{detail}")]
    Status {
        what: String,
        status: StatusCode,
        /// The registry's own error message, with a leading `: `, or empty.
        detail: String,
    },
    #[error("{what}: authentication required (try `berth login {host}`)")]
    Unauthorized { what: String, host: String },
    #[error("get token from {realm}")]
    Token {
        realm: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("get token from {realm}: response has no token")]
    NoToken { realm: String },
    #[error("read {what}")]
    Body {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: registry sent no upload location")]
    NoLocation { what: String },
    #[error("credentials")]
    Credentials(#[from] CredentialsError),
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// Whether trying the same request again may help.
    fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            _ => false,
        }
    }
}

/// Per-registry connection knowledge gathered during this process.
#[derive(Default)]
struct HostState {
    /// `http` or `https`, once known.
    scheme: Option<&'static str>,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
    /// The host asked for basic auth.
    wants_basic: bool,
}

/// Options for talking to registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Hosts (host[:port]) that may be spoken to over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// Docker's config.json with credentials; `None` means the default location.
    pub auth_file: Option<PathBuf>,
}

/// A registry manifest as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: Option<String>,
    pub digest: Digest,
}

#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    auth_file: PathBuf,
    insecure: Arc<Vec<String>>,
    hosts: Arc<Mutex<HashMap<String, HostState>>>,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The registry's own error text from a `{"errors":[{"code":..,"message":..}]}` body.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        e.code.to_lowercase()
                    } else {
                        e.message.clone()
                    }
                })
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|source| RegistryError::Unreachable {
                host: "(client setup)".into(),
                source,
            })?;
        Ok(Self {
            http,
            auth_file: options
                .auth_file
                .unwrap_or_else(credentials::default_config_path),
            insecure: Arc::new(options.insecure),
            hosts: Arc::default(),
        })
    }

    fn plain_http_allowed(&self, host: &str) -> bool {
        is_loopback_host(host) || self.insecure.iter().any(|h| h == host)
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        Ok(credentials::lookup(&self.auth_file, registry)?)
    }

    /// Sends a request built by `build` (given the base URL `scheme://host/v2/repo`),
    /// authenticating on a 401 challenge and retrying transient failures. Only 2xx is Ok.
    async fn send(
        &self,
        method: Method,
        r: &Reference,
        actions: &str,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let idempotent = matches!(method, Method::GET | Method::HEAD);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(r, actions, what, &build).await {
                Err(e) if idempotent && attempt < ATTEMPTS && e.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        r: &Reference,
        actions: &str,
        what: &str,
        build: &impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let host = r.api_host().to_string();
        let scope = format!("repository:{}:{}", r.repository, actions);
        let base = self.base_url(&host).await?;
        let url = format!("{base}/v2/{}", r.repository);
        let mut authed_once = false;
        loop {
            let mut req = build(&self.http, &url);
            if let Some(header) = self.cached_auth(&r.registry, &host, &scope)? {
                req = req.header(AUTHORIZATION, header);
            }
            let resp = req
                .send()
                .await
                .map_err(|source| RegistryError::Unreachable {
                    host: host.clone(),
                    source: source.without_url(),
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge);
                match challenge {
                    Some(Challenge::Bearer { realm, service, .. }) => {
                        let token = self
                            .fetch_token(r, &realm, service.as_deref(), &scope)
                            .await?;
                        self.host_state(&host, |s| {
                            s.tokens.insert(scope.clone(), token);
                        });
                        continue;
                    }
                    Some(Challenge::Basic) if self.credentials(&r.registry)?.is_some() => {
                        self.host_state(&host, |s| s.wants_basic = true);
                        continue;
                    }
                    _ => {}
                }
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(RegistryError::Unauthorized {
                    what: what.to_string(),
                    host: r.registry.clone(),
                });
            }
            let body = resp.bytes().await.unwrap_or_default();
            return Err(RegistryError::Status {
                what: what.to_string(),
                status,
                detail: error_detail(&body),
            });
        }
    }

    fn host_state<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut hosts = self.hosts.lock().expect("registry host table poisoned");
        f(hosts.entry(host.to_string()).or_default())
    }

    fn cached_auth(
        &self,
        registry: &str,
        host: &str,
        scope: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let (token, basic) =
            self.host_state(host, |s| (s.tokens.get(scope).cloned(), s.wants_basic));
        if let Some(t) = token {
            return Ok(HeaderValue::from_str(&format!("Bearer {t}")).ok());
        }
        if basic {
            if let Some(c) = self.credentials(registry)? {
                return Ok(Some(basic_header(&c)));
            }
        }
        Ok(None)
    }

    async fn fetch_token(
        &self,
        r: &Reference,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut url = format!("{realm}?scope={}", query_escape(scope));
        if let Some(s) = service {
            url.push_str(&format!("&service={}", query_escape(s)));
        }
        let wrap = |source: RegistryError| RegistryError::Token {
            realm: realm.to_string(),
            source: Box::new(source),
        };
        let mut req = self.http.get(&url);
        if let Some(c) = self.credentials(&r.registry)? {
            req = req.header(AUTHORIZATION, basic_header(&c));
        }
        let resp = req.send().await.map_err(|source| {
            wrap(RegistryError::Unreachable {
                host: realm.to_string(),
                source,
            })
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|source| {
            wrap(RegistryError::Body {
                what: "token".into(),
                source,
            })
        })?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(wrap(RegistryError::Unauthorized {
                what: format!("token for {scope}"),
                host: r.registry.clone(),
            }));
        }
        if !status.is_success() {
            return Err(wrap(RegistryError::Status {
                what: "token".into(),
                status,
                detail: error_detail(&body),
            }));
        }
        serde_json::from_slice::<auth::TokenResponse>(&body)
            .ok()
            .and_then(auth::TokenResponse::into_token)
            .ok_or_else(|| RegistryError::NoToken {
                realm: realm.to_string(),
            })
    }

    /// `https://host`, or `http://host` for a loopback/insecure registry that does not speak
    /// TLS (tried once per process, as Docker does for its insecure registries).
    async fn base_url(&self, host: &str) -> Result<String, RegistryError> {
        if let Some(s) = self.host_state(host, |s| s.scheme) {
            return Ok(format!("{s}://{host}"));
        }
        let scheme = if !self.plain_http_allowed(host) {
            "https"
        } else {
            let probe = self
                .http
                .get(format!("https://{host}/v2/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match probe {
                Ok(_) => "https",
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => "http",
                Err(source) => {
                    return Err(RegistryError::Unreachable {
                        host: host.to_string(),
                        source,
                    })
                }
            }
        };
        self.host_state(host, |s| s.scheme = Some(scheme));
        Ok(format!("{scheme}://{host}"))
    }

    /// Fetches a manifest by tag or digest. When fetched by digest the content is checked
    /// against it; by tag the digest is computed from the bytes (the registry's
    /// `Docker-Content-Digest` header is advisory).
    pub async fn fetch_manifest(&self, r: &Reference) -> Result<FetchedManifest, RegistryError> {
        let reference = r.manifest_ref();
        let what = format!("manifest {r}");
        let resp = self
            .send(Method::GET, r, "pull", &what, |c, base| {
                c.get(format!("{base}/manifests/{reference}"))
                    .header(ACCEPT, crate::manifest::MANIFEST_ACCEPT)
            })
            .await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(resp, &what, crate::manifest::MAX_MANIFEST_BYTES).await?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = &r.digest {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches a small blob (a config) whole, checking size and digest.
    pub async fn fetch_small_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        limit: usize,
    ) -> Result<Bytes, RegistryError> {
        let what = format!("blob {digest}");
        if size > limit as u64 {
            return Err(RegistryError::TooLarge { what, limit });
        }
        let resp = self.open_blob(r, digest, 0).await?;
        let bytes = read_limited(resp, &what, limit).await?;
        if bytes.len() as u64 != size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Starts a blob download at byte `offset`; the caller streams and verifies the body.
    pub async fn open_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<Response, RegistryError> {
        let what = format!("blob {digest}");
        self.send(Method::GET, r, "pull", &what, |c, base| {
            let req = c.get(format!("{base}/blobs/{digest}"));
            if offset > 0 {
                req.header(reqwest::header::RANGE, format!("bytes={offset}-"))
            } else {
                req
            }
        })
        .await
    }

    /// Whether the repository already has a blob (HEAD).
    pub async fn blob_exists(&self, r: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let what = format!("blob {digest}");
        match self
            .send(Method::HEAD, r, "pull,push", &what, |c, base| {
                c.head(format!("{base}/blobs/{digest}"))
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(RegistryError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads a blob from a file in one monolithic PUT (distribution-spec "Pushing a blob
    /// monolithically", POST then PUT).
    pub async fn push_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        path: &std::path::Path,
    ) -> Result<(), RegistryError> {
        let what = format!("upload blob {digest}");
        let resp = self
            .send(Method::POST, r, "pull,push", &what, |c, base| {
                c.post(format!("{base}/blobs/uploads/"))
                    .header(CONTENT_LENGTH, "0")
            })
            .await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::NoLocation { what: what.clone() })?
            .to_string();
        let base = self.base_url(r.api_host()).await?;
        let mut url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{base}{location}")
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", query_escape(&digest.to_string())));
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| RegistryError::Open {
                path: path.into(),
                source,
            })?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        // The upload URL is absolute; `send` only supplies auth and error handling here.
        let body = Mutex::new(Some(body));
        self.send(Method::PUT, r, "pull,push", &what, |c, _| {
            let req = c
                .put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size);
            match body.lock().expect("upload body lock").take() {
                Some(b) => req.body(b),
                None => req,
            }
        })
        .await?;
        Ok(())
    }

    /// Uploads a manifest under a tag or digest and returns the digest the registry keeps.
    pub async fn push_manifest(
        &self,
        r: &Reference,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let what = format!("upload manifest {}:{reference}", r.name());
        self.send(Method::PUT, r, "pull,push", &what, |c, base| {
            c.put(format!("{base}/manifests/{reference}"))
                .header(CONTENT_TYPE, media_type)
                .body(bytes.clone())
        })
        .await?;
        Ok(Digest::of(&bytes))
    }

    /// Checks credentials against a registry (`berth login`): GET /v2/ with them.
    pub async fn check_login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<(), RegistryError> {
        let probe: Reference = format!("{registry}/berth-login-probe")
            .parse()
            .map_err(|_| RegistryError::NoLocation {
                what: format!("login to {registry}"),
            })?;
        let host = probe.api_host().to_string();
        let base = self.base_url(&host).await?;
        let what = format!("login to {registry}");
        let resp = self
            .http
            .get(format!("{base}/v2/"))
            .send()
            .await
            .map_err(|source| RegistryError::Unreachable {
                host: host.clone(),
                source,
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let status = match challenge {
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut url = realm.clone();
                if let Some(s) = service {
                    url.push_str(&format!("?service={}", query_escape(&s)));
                }
                self.http
                    .get(url)
                    .header(AUTHORIZATION, basic_header(creds))
                    .send()
                    .await
                    .map_err(|source| RegistryError::Unreachable {
                        host: realm,
                        source,
                    })?
                    .status()
            }
            _ => self
                .http
                .get(format!("{base}/v2/"))
                .header(AUTHORIZATION, basic_header(creds))
                .send()
                .await
                .map_err(|source| RegistryError::Unreachable {
                    host: host.clone(),
                    source,
                })?
                .status(),
        };
        if status.is_success() {
            Ok(())
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            Err(RegistryError::Status {
                what,
                status,
                detail: ": incorrect username or password".into(),
            })
        } else {
            Err(RegistryError::Status {
                what,
                status,
                detail: String::new(),
            })
        }
    }
}

fn basic_header(c: &Credentials) -> HeaderValue {
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    let mut v =
        HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

/// Reads a whole response body, refusing more than `limit` bytes.
async fn read_limited(
    mut resp: Response,
    what: &str,
    limit: usize,
) -> Result<Bytes, RegistryError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Body {
        what: what.to_string(),
        source,
    })? {
        if buf.len() + chunk.len() > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_become_details() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_detail(body), ": manifest unknown");
        assert_eq!(error_detail(b"<html>"), "");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
