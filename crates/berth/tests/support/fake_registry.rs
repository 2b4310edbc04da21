//! A small registry that misbehaves on purpose, for the faults a real registry will not
//! produce on demand: 403/429/5xx answers, a bearer-token challenge, bodies that lie.
//! It serves the content of a real OCI archive (a fixture), so everything else is genuine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How the fake answers.
#[derive(Default, Clone)]
pub struct Behaviour {
    /// Demand `Authorization: Bearer <token>` obtained from `/token`.
    pub bearer: bool,
    /// Answer requests whose path contains the key with this status, for `count` requests
    /// (usize::MAX: always).
    pub fail: Vec<(String, u16, usize)>,
    /// Replace the body served for paths containing the key.
    pub replace: Vec<(String, Vec<u8>)>,
    /// For paths containing the key, promise the whole body but send only this many
    /// bytes and close the connection, for `count` requests.
    pub cut: Vec<(String, usize, usize)>,
}

pub struct FakeRegistry {
    pub port: u16,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub token_requests: Arc<AtomicUsize>,
}

struct Content {
    /// tag or digest -> (media type, bytes)
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
}

const TOKEN: &str = "berth-test-token";

fn load_archive(path: &std::path::Path) -> Content {
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).expect("open fixture"));
    for e in archive.entries().expect("read fixture") {
        let mut e = e.expect("fixture entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        files.insert(name.trim_start_matches("./").to_string(), data);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&files["index.json"]).expect("index.json");
    let desc = &index["manifests"][0];
    let digest = desc["digest"].as_str().expect("digest").to_string();
    let mt = desc["mediaType"].as_str().expect("media type").to_string();
    let manifest = files[&format!("blobs/sha256/{}", &digest[7..])].clone();
    let mut manifests = HashMap::new();
    manifests.insert("latest".to_string(), (mt.clone(), manifest.clone()));
    // `multi`: an index with this image as linux/amd64 and an arm64 entry that is not served.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": mt, "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
             "size": 10, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": mt, "digest": digest, "size": manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    }))
    .expect("index serializes");
    manifests.insert(
        "multi".to_string(),
        ("application/vnd.oci.image.index.v1+json".to_string(), index),
    );
    manifests.insert(digest, (mt, manifest));
    let blobs = files
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("blobs/sha256/")
                .map(|h| (format!("sha256:{h}"), v))
        })
        .collect();
    Content { manifests, blobs }
}

impl FakeRegistry {
    pub fn start(archive: &std::path::Path, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let content = Arc::new(load_archive(archive));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let token_requests = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let shared_behaviour = behaviour.clone();
        {
            let (stop, requests, token_requests) =
                (stop.clone(), requests.clone(), token_requests.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (content, behaviour, requests, token_requests) = (
                                content.clone(),
                                behaviour.clone(),
                                requests.clone(),
                                token_requests.clone(),
                            );
                            std::thread::spawn(move || {
                                let _ = serve(
                                    stream,
                                    port,
                                    &content,
                                    &behaviour,
                                    &requests,
                                    &token_requests,
                                );
                            });
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    }
                }
            });
        }
        Self {
            port,
            behaviour: shared_behaviour,
            stop,
            requests,
            token_requests,
        }
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("127.0.0.1:{}/{repo_tag}", self.port)
    }

    /// Changes how the registry answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests seen so far whose `METHOD path` contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}

fn serve(
    stream: TcpStream,
    port: u16,
    content: &Content,
    behaviour: &Mutex<Behaviour>,
    requests: &Mutex<Vec<String>>,
    token_requests: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut auth = None;
        let mut range_start: Option<usize> = None;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    auth = Some(v.trim().to_string());
                }
                if k.eq_ignore_ascii_case("range") {
                    range_start = v
                        .trim()
                        .strip_prefix("bytes=")
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|n| n.parse().ok());
                }
            }
        }
        requests.lock().unwrap().push(match range_start {
            Some(n) => format!("{method} {path} range={n}"),
            None => format!("{method} {path}"),
        });
        let b = behaviour.lock().unwrap().clone();
        if path.starts_with("/token") {
            token_requests.fetch_add(1, Ordering::Relaxed);
            respond(
                &mut stream,
                200,
                &[("Content-Type", "application/json".into())],
                format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
            )?;
            continue;
        }
        if b.bearer && auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:x:pull""#
            );
            respond(
                &mut stream,
                401,
                &[("WWW-Authenticate", challenge)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )?;
            continue;
        }
        let failing = {
            let mut guard = behaviour.lock().unwrap();
            let mut hit = None;
            for (key, status, count) in guard.fail.iter_mut() {
                if path.contains(key.as_str()) && *count > 0 {
                    if *count != usize::MAX {
                        *count -= 1;
                    }
                    hit = Some(*status);
                    break;
                }
            }
            hit
        };
        if let Some(status) = failing {
            let body = format!(r#"{{"errors":[{{"code":"X","message":"injected {status}"}}]}}"#);
            respond(&mut stream, status, &[], body.as_bytes())?;
            continue;
        }
        let replaced = b
            .replace
            .iter()
            .find(|(k, _)| path.contains(k.as_str()))
            .map(|(_, v)| v.clone());
        if path == "/v2/" {
            respond(&mut stream, 200, &[], b"{}")?;
        } else if let Some(reference) = path.split("/manifests/").nth(1) {
            match content.manifests.get(reference) {
                Some((mt, bytes)) => {
                    let body = replaced.unwrap_or_else(|| bytes.clone());
                    respond(
                        &mut stream,
                        200,
                        &[("Content-Type", mt.clone())],
                        if method == "HEAD" { &[] } else { &body },
                    )?
                }
                None => respond(
                    &mut stream,
                    404,
                    &[],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                )?,
            }
        } else if let Some(digest) = path.split("/blobs/").nth(1) {
            match content.blobs.get(digest) {
                Some(bytes) => {
                    let body = replaced.unwrap_or_else(|| bytes.clone());
                    let cut = {
                        let mut guard = behaviour.lock().unwrap();
                        let mut hit = None;
                        for (key, keep, count) in guard.cut.iter_mut() {
                            if path.contains(key.as_str()) && *count > 0 {
                                *count -= 1;
                                hit = Some(*keep);
                                break;
                            }
                        }
                        hit
                    };
                    match (range_start, cut) {
                        (_, Some(keep)) => {
                            let head = format!(
                                "HTTP/1.1 200 X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            stream.write_all(head.as_bytes())?;
                            stream.write_all(&body[..keep.min(body.len())])?;
                            return Ok(());
                        }
                        (Some(start), None) if start < body.len() => {
                            let range = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
                            respond(
                                &mut stream,
                                206,
                                &[("Content-Range", range)],
                                &body[start..],
                            )?
                        }
                        _ => respond(&mut stream, 200, &[], &body)?,
                    }
                }
                None => respond(
                    &mut stream,
                    404,
                    &[],
                    br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
                )?,
            }
        } else {
            respond(&mut stream, 404, &[], b"")?;
        }
    }
}
