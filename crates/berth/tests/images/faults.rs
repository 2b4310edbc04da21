//! Bad input and faults: each must give a one-line error naming the thing at fault and
//! leave the store as it was.

use std::io::Write;

use crate::support::fake_registry::{Behaviour, FakeRegistry};
use crate::support::*;

/// The store holds no image and no staging after a failed pull.
fn assert_store_untouched(b: &Berth) {
    assert_eq!(
        b.index()["images"].as_object().map_or(0, |m| m.len()),
        0,
        "an image was recorded"
    );
    assert!(
        b.store_entries("tmp").is_empty(),
        "staging left behind: {:?}",
        b.store_entries("tmp")
    );
    assert!(b.ok(&["images", "-q"]).is_empty());
}

fn one_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got: {err}");
    lines[0]
}

fn seeded_registry(fixture_name: &str) -> (Registry, String, serde_json::Value) {
    let reg = Registry::start();
    let target = reg.seed(fixture_name, "faults/img:latest");
    let local = Berth::new();
    local.ok(&["pull", "-q", &target]);
    let inspect: serde_json::Value =
        serde_json::from_str(&local.ok(&["image", "inspect", &target])).unwrap();
    (reg, target, inspect[0].clone())
}

#[test]
fn corrupt_blob_digest_mismatch_is_rejected_and_store_unchanged() {
    let (reg, target, inspect) = seeded_registry("layered.oci.tar");
    let layer = inspect["Manifest"]["Layers"][3]["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = reg.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let b = Berth::new();
    let err = b.fails(&["pull", &target]);
    let line = one_line(&err);
    assert!(
        line.contains(&layer) && line.contains("digest mismatch"),
        "{line}"
    );
    assert_store_untouched(&b);
}

#[test]
fn truncated_blob_is_rejected_and_store_unchanged() {
    let (reg, target, inspect) = seeded_registry("layered.oci.tar");
    let layer = inspect["Manifest"]["Layers"][1]["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = reg.blob_data(&layer);
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let b = Berth::new();
    let err = b.fails(&["pull", &target]);
    let line = one_line(&err);
    assert!(line.contains(&layer), "{line}");
    assert!(
        line.contains("truncated") || line.contains("decompress"),
        "{line}"
    );
    assert_store_untouched(&b);
}

#[test]
fn registry_status_errors_are_named() {
    let archive = fixture("busybox.oci.tar");
    for (status, word) in [
        (403u16, "403 Forbidden"),
        (404, "404 Not Found"),
        (429, "429 Too Many Requests"),
        (500, "500 Internal Server Error"),
        (503, "503 Service Unavailable"),
    ] {
        let fake = FakeRegistry::start(
            &archive,
            Behaviour {
                fail: vec![("/manifests/".into(), status, usize::MAX)],
                ..Behaviour::default()
            },
        );
        let b = Berth::new();
        let r = fake.reference("x/busybox:latest");
        let err = b.fails(&["pull", &r]);
        let line = one_line(&err);
        assert!(
            line.contains(word) && line.contains("manifest"),
            "{status}: {line}"
        );
        assert_store_untouched(&b);
    }
}

#[test]
fn transient_server_errors_are_retried() {
    let fake = FakeRegistry::start(
        &fixture("busybox.oci.tar"),
        Behaviour {
            fail: vec![("/blobs/".into(), 503, 1), ("/manifests/".into(), 429, 1)],
            ..Behaviour::default()
        },
    );
    let b = Berth::new();
    b.ok(&["pull", &fake.reference("x/busybox:latest")]);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn bearer_token_challenge_is_answered() {
    let fake = FakeRegistry::start(
        &fixture("busybox.oci.tar"),
        Behaviour {
            bearer: true,
            ..Behaviour::default()
        },
    );
    let b = Berth::new();
    let out = b.ok(&["pull", &fake.reference("x/busybox:latest")]);
    assert!(out.contains(&fixture_digest("busybox")), "{out}");
    assert!(
        fake.token_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[test]
fn malformed_oversized_and_unsupported_manifests_are_rejected() {
    let archive = fixture("busybox.oci.tar");
    let huge = vec![b' '; 5 << 20];
    let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[{"mediaType":"application/x-foo","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}]}"#;
    for (body, expect) in [
        (b"{not json".to_vec(), "malformed manifest"),
        (huge, "larger than"),
        (
            foreign.to_vec(),
            "unsupported layer media type \"application/x-foo\"",
        ),
        (
            br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
            "schemaVersion 1",
        ),
    ] {
        let fake = FakeRegistry::start(
            &archive,
            Behaviour {
                replace: vec![("/manifests/".into(), body)],
                ..Behaviour::default()
            },
        );
        let b = Berth::new();
        let err = b.fails(&["pull", &fake.reference("x/busybox:latest")]);
        let line = one_line(&err);
        assert!(line.contains(expect), "want {expect:?} in {line}");
        assert_store_untouched(&b);
    }
}

#[test]
fn malformed_config_is_rejected() {
    let archive = fixture("busybox.oci.tar");
    let fake = FakeRegistry::start(&archive, Behaviour::default());
    let b = Berth::new();
    b.ok(&["pull", "-q", &fake.reference("x/busybox:latest")]);
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", &fake.reference("x/busybox:latest")]))
            .unwrap();
    let config = inspect[0]["Id"].as_str().unwrap().to_string();
    // Serve a config that does not match its digest: the registry is lying.
    let fake = FakeRegistry::start(
        &archive,
        Behaviour {
            replace: vec![(config.clone(), b"{}".to_vec())],
            ..Behaviour::default()
        },
    );
    let b = Berth::new();
    let err = b.fails(&["pull", &fake.reference("x/busybox:latest")]);
    assert!(one_line(&err).contains(&config), "{err}");
    assert_store_untouched(&b);
}

#[test]
fn unreachable_registry_is_named() {
    let b = Berth::new();
    let port = free_port();
    let err = b.fails(&["pull", &format!("127.0.0.1:{port}/x/y:z")]);
    let line = one_line(&err);
    assert!(
        line.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{line}"
    );
}

#[test]
fn wrong_platform_is_refused() {
    let (_reg, target, _) = seeded_registry("busybox.oci.tar");
    let b = Berth::new();
    let err = b.fails(&["pull", "--platform", "linux/arm64", &target]);
    assert!(
        one_line(&err).contains("does not match the requested linux/arm64"),
        "{err}"
    );
    assert_store_untouched(&b);
    let err = b.fails(&["pull", "--platform", "bogus", &target]);
    assert!(one_line(&err).contains("invalid platform"), "{err}");
}

#[test]
fn invalid_references_are_refused() {
    let b = Berth::new();
    for bad in ["UPPER/case", "a//b", "x:", "x@sha256:123"] {
        let err = b.fails(&["pull", bad]);
        assert!(
            one_line(&err).contains("invalid reference format"),
            "{bad}: {err}"
        );
    }
}

/// Builds an OCI archive with one uncompressed layer made of the given raw tar entries
/// (name, type, link target, data), bypassing the tar crate's own path checks.
pub fn evil_archive(
    dir: &std::path::Path,
    entries: &[(&str, tar::EntryType, &str, &[u8])],
) -> std::path::PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        layer.append(&h, *data).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let diff = format!("sha256:{}", sha256_hex(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff, "size": layer.len()}]
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]
    }))
    .unwrap();
    let path = dir.join("evil.oci.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(name).unwrap();
        h.set_cksum();
        out.append(&h, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for blob in [&layer, &config, &manifest] {
        add(&format!("blobs/sha256/{}", sha256_hex(blob)), blob);
    }
    out.into_inner().unwrap().flush().unwrap();
    path
}

#[test]
fn tar_entries_that_escape_the_layer_are_rejected_on_load_and_pull() {
    use tar::EntryType::{Link, Regular, Symlink};
    type Entry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        ("dotdot", vec![("../evil", Regular, "", b"x")], "../evil"),
        (
            "absolute",
            vec![("/etc/evil", Regular, "", b"x")],
            "/etc/evil",
        ),
        (
            "symlink",
            vec![
                ("link", Symlink, "/", b""),
                ("link/evil", Regular, "", b"x"),
            ],
            "link/evil",
        ),
        (
            "hardlink",
            vec![("passwd", Link, "../../../etc/passwd", b"")],
            "passwd",
        ),
    ];
    let skopeo = require_tool("skopeo");
    let reg = Registry::start();
    for (name, entries, entry) in cases {
        let dir = TempDir::new(name);
        let archive = evil_archive(dir.path(), &entries);
        let b = Berth::new();
        let err = b.fails(&["load", "-i", archive.to_str().unwrap()]);
        let line = one_line(&err);
        assert!(
            line.contains(entry) && line.contains("escape"),
            "{name}: {line}"
        );
        assert_store_untouched(&b);

        let r = reg.reference(&format!("evil/{name}:latest"));
        run_ok(std::process::Command::new(&skopeo).args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci-archive:{}:latest", archive.display()),
            &format!("docker://{r}"),
        ]));
        let err = b.fails(&["pull", &r]);
        let line = one_line(&err);
        assert!(
            line.contains(entry) && line.contains("escape"),
            "{name} via pull: {line}"
        );
        assert_store_untouched(&b);
    }
    assert!(!std::path::Path::new("/etc/evil").exists());
}

#[test]
fn disk_full_during_pull_is_reported_and_store_unchanged() {
    let (_reg, target, _) = seeded_registry("layered.oci.tar");
    let b = Berth::new();
    // A 2 MiB filesystem under the state root: the 3 MB image cannot fit.
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "berth-test-full"])
        .arg(b.root.path())
        .status()
        .expect("mount tmpfs");
    assert!(status.success(), "mounting a tmpfs needs root");
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(b.root.path());
    let err = b.fails(&["pull", &target]);
    let line = one_line(&err);
    assert!(line.contains("No space left on device"), "{line}");
    assert_store_untouched(&b);
}
