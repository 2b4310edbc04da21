use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::support::*;

#[test]
fn push_then_pull_round_trip_keeps_the_manifest_digest() {
    let reg = Registry::start();
    let src = Berth::new();
    let target = reg.reference("test/busybox:1.0");
    src.load_fixture("busybox.oci.tar", &target);
    let out = src.ok(&["push", &target]);
    let want = fixture_digest("busybox");
    assert!(out.contains(&format!("1.0: digest: {want}")), "{out}");

    let dst = Berth::new();
    let out = dst.ok(&["pull", &target]);
    assert!(out.contains(&format!("Digest: {want}")), "{out}");
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(out.lines().last(), Some(target.as_str()));
    let images = dst.ok(&["images"]);
    let row = images.lines().nth(1).expect("one image row");
    assert!(
        row.starts_with(&format!("{}   1.0", reg.reference("test/busybox"))),
        "{images}"
    );

    // Pulling again fetches nothing and says so.
    let again = dst.ok(&["pull", &target]);
    assert!(again.contains("Already exists"), "{again}");
    assert!(again.contains("Status: Image is up to date"), "{again}");

    // By digest, into a fresh store.
    let by_digest = Berth::new();
    let r = format!("{}@{want}", reg.reference("test/busybox"));
    by_digest.ok(&["pull", "-q", &r]);
    let inspect: serde_json::Value =
        serde_json::from_str(&by_digest.ok(&["image", "inspect", &r])).unwrap();
    assert_eq!(inspect[0]["RepoDigests"][0], r.as_str());
    assert_eq!(inspect[0]["RepoTags"], serde_json::json!([]));
}

fn check_entry(root: &Path, e: &serde_json::Value) {
    let path = e["path"].as_str().unwrap();
    let full = root.join(path);
    let md = std::fs::symlink_metadata(&full).unwrap_or_else(|err| panic!("{path}: {err}"));
    let ft = md.file_type();
    let ty = e["type"].as_str().unwrap();
    let type_ok = match ty {
        "file" | "hardlink" => ft.is_file(),
        "dir" => ft.is_dir(),
        "symlink" => ft.is_symlink(),
        "chardev" => ft.is_char_device(),
        "blockdev" => ft.is_block_device(),
        "fifo" => ft.is_fifo(),
        other => panic!("unknown type {other}"),
    };
    assert!(type_ok, "{path}: expected {ty}, found {ft:?}");
    if let Some(mode) = e["mode"].as_str() {
        if ty != "symlink" {
            let want = u32::from_str_radix(mode, 8).unwrap();
            assert_eq!(
                md.mode() & 0o7777,
                want,
                "{path}: mode {:o}",
                md.mode() & 0o7777
            );
        }
    }
    assert_eq!(md.uid() as u64, e["uid"].as_u64().unwrap(), "{path}: uid");
    assert_eq!(md.gid() as u64, e["gid"].as_u64().unwrap(), "{path}: gid");
    if let Some(mtime) = e["mtime"].as_i64() {
        assert_eq!(md.mtime(), mtime, "{path}: mtime");
    }
    if let Some(size) = e["size"].as_u64() {
        assert_eq!(md.size(), size, "{path}: size");
    }
    if let Some(sum) = e["sha256"].as_str() {
        assert_eq!(
            sha256_hex(&std::fs::read(&full).unwrap()),
            sum,
            "{path}: content"
        );
    }
    if let Some(n) = e["nlink"].as_u64() {
        assert_eq!(md.nlink(), n, "{path}: nlink");
    }
    match (ty, e["link"].as_str()) {
        ("symlink", Some(target)) => {
            assert_eq!(
                std::fs::read_link(&full).unwrap().to_str().unwrap(),
                target,
                "{path}: target"
            )
        }
        ("hardlink", Some(other)) => {
            let o = std::fs::symlink_metadata(root.join(other)).unwrap();
            assert_eq!(
                (o.dev(), o.ino()),
                (md.dev(), md.ino()),
                "{path}: not the inode of {other}"
            );
        }
        _ => {}
    }
    if let (Some(maj), Some(min)) = (e["major"].as_u64(), e["minor"].as_u64()) {
        let rdev = md.rdev();
        assert_eq!(
            (
                rustix::fs::major(rdev) as u64,
                rustix::fs::minor(rdev) as u64
            ),
            (maj, min),
            "{path}: device numbers"
        );
    }
    if let Some(xattrs) = e["xattrs"].as_object() {
        for (name, value) in xattrs {
            let mut buf = vec![0u8; 256];
            let n = rustix::fs::lgetxattr(&full, name.as_str(), &mut buf)
                .unwrap_or_else(|err| panic!("{path}: xattr {name}: {err}"));
            assert_eq!(
                std::str::from_utf8(&buf[..n]).unwrap(),
                value.as_str().unwrap(),
                "{path}: xattr {name}"
            );
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            walk(root, &p, out);
        }
    }
}

#[test]
fn layered_image_unpacks_whiteouts_links_devices_and_xattrs_exactly() {
    let reg = Registry::start();
    let target = reg.seed("layered.oci.tar", "test/layered:latest");
    let dst = Berth::new();
    dst.ok(&["pull", &target]);

    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("layered.expect.json")).unwrap()).unwrap();
    let layers = expect["layers"].as_object().unwrap();
    assert_eq!(layers.len(), 4);
    for (diff_id, layer) in layers {
        let dir = dst.images_dir().join("layers").join(&diff_id[7..]);
        assert!(dir.is_dir(), "layer {diff_id} not unpacked");
        let entries = layer["entries"].as_array().unwrap();
        for e in entries {
            check_entry(&dir, e);
        }
        let mut found = Vec::new();
        walk(&dir, &dir, &mut found);
        found.sort();
        let mut wanted: Vec<String> = entries
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        wanted.sort();
        assert_eq!(
            found, wanted,
            "layer {diff_id}: unexpected or missing paths"
        );
    }
    // The opaque marker became the overlayfs xattr on its directory.
    let opaque = layers
        .iter()
        .find(|(_, l)| l["index"] == 2)
        .map(|(d, _)| {
            dst.images_dir()
                .join("layers")
                .join(&d[7..])
                .join("data/old")
        })
        .unwrap();
    let mut buf = [0u8; 8];
    let n =
        rustix::fs::lgetxattr(&opaque, "trusted.overlay.opaque", &mut buf).expect("opaque xattr");
    assert_eq!(&buf[..n], b"y");
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed_and_store_it_once() {
    let reg = Registry::start();
    let target = reg.seed("layered.oci.tar", "test/layered:latest");
    let dst = Berth::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            dst.cmd(&["pull", "-q", &target])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(dst.store_entries("layers").len(), 4);
    // 4 layers + config + manifest (layer 1 of layered is shared with nothing else here).
    assert_eq!(dst.store_entries("blobs/sha256").len(), 6);
    let index = dst.index();
    assert_eq!(index["images"].as_object().unwrap().len(), 1);
    dst.ok(&["images"]);
    assert!(
        dst.store_entries("tmp").is_empty(),
        "staging left behind: {:?}",
        dst.store_entries("tmp")
    );
}

#[test]
fn kill_9_during_pull_leaves_a_store_the_next_pull_completes() {
    let reg = Registry::start();
    let target = reg.seed("layered.oci.tar", "test/layered:latest");
    // Kill at a spread of moments; each time the store must stay readable and a fresh
    // pull must finish it.
    for delay_ms in [0u64, 5, 15, 30, 60, 120] {
        let dst = Berth::new();
        let mut child = dst
            .cmd(&["pull", "-q", &target])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let images = dst.ok(&["images", "-q"]);
        assert!(images.lines().count() <= 1, "{images}");
        dst.ok(&["pull", "-q", &target]);
        assert_eq!(dst.ok(&["images", "-q"]).lines().count(), 1);
        assert_eq!(
            dst.store_entries("layers").len(),
            4,
            "after kill at {delay_ms} ms"
        );
        // The next command removed the killed pull's staging.
        assert!(
            dst.store_entries("tmp").is_empty(),
            "staging left after kill at {delay_ms} ms"
        );
    }
}

#[test]
fn skopeo_and_berth_agree_on_what_they_push_and_pull() {
    let skopeo = require_tool("skopeo");
    let reg = Registry::start();
    // skopeo pushes, berth pulls: same manifest digest, same layers.
    let pushed_by_skopeo = reg.reference("oracle/from-skopeo:latest");
    run_ok(std::process::Command::new(&skopeo).args([
        "copy",
        "--dest-tls-verify=false",
        &format!(
            "oci-archive:{}:latest",
            fixture("layered.oci.tar").display()
        ),
        &format!("docker://{pushed_by_skopeo}"),
    ]));
    let skopeo_digest = run_ok(std::process::Command::new(&skopeo).args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{pushed_by_skopeo}"),
    ]));
    let b = Berth::new();
    let out = b.ok(&["pull", &pushed_by_skopeo]);
    assert!(
        out.contains(&format!("Digest: {}", skopeo_digest.trim())),
        "{out}"
    );

    // berth pushes, skopeo reads: the same digest, and the blobs copy out intact.
    let pushed_by_berth = reg.reference("oracle/from-berth:v1");
    b.ok(&["tag", &pushed_by_skopeo, &pushed_by_berth]);
    let out = b.ok(&["push", &pushed_by_berth]);
    let raw = run_ok(std::process::Command::new(&skopeo).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{pushed_by_berth}"),
    ]));
    let digest = format!("sha256:{}", sha256_hex(raw.as_bytes()));
    assert!(
        out.contains(&digest),
        "berth said {out}, skopeo sees {digest}"
    );
    assert_eq!(digest, skopeo_digest.trim());
    let dir = TempDir::new("skopeo-out");
    run_ok(std::process::Command::new(&skopeo).args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{pushed_by_berth}"),
        &format!("dir:{}", dir.path().join("img").display()),
    ]));
}

#[test]
fn interrupted_pull_resumes_without_fetching_verified_layers_again() {
    use crate::support::fake_registry::{Behaviour, FakeRegistry};
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("layered.expect.json")).unwrap()).unwrap();
    let mut layers: Vec<(u64, String)> = expect["layers"]
        .as_object()
        .unwrap()
        .values()
        .map(|l| {
            (
                l["index"].as_u64().unwrap(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    layers.sort();
    let (_, last) = layers.pop().unwrap();
    let fake = FakeRegistry::start(
        &fixture("layered.oci.tar"),
        Behaviour {
            fail: vec![(last.clone(), 500, usize::MAX)],
            ..Behaviour::default()
        },
    );
    let r = fake.reference("x/layered:latest");
    let b = Berth::new();
    let err = b.fails(&["pull", &r]);
    assert!(err.contains(&last) && err.contains("500"), "{err}");
    assert!(b.ok(&["images", "-q"]).is_empty());
    // The layers that arrived were verified and kept.
    let blobs = b.store_entries("blobs/sha256");
    for (_, d) in &layers {
        assert!(
            blobs.contains(&d[7..].to_string()),
            "verified layer {d} was not kept"
        );
    }

    fake.set_behaviour(Behaviour::default());
    b.ok(&["pull", &r]);
    for (_, d) in &layers {
        assert_eq!(
            fake.count(&format!("GET /v2/x/layered/blobs/{d}")),
            1,
            "{d} fetched again"
        );
    }
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn multi_platform_index_resolves_to_the_host_platform() {
    use crate::support::fake_registry::{Behaviour, FakeRegistry};
    let fake = FakeRegistry::start(&fixture("busybox.oci.tar"), Behaviour::default());
    let b = Berth::new();
    let r = fake.reference("x/busybox:multi");
    let out = b.ok(&["pull", &r]);
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", &r])).unwrap();
    assert_eq!(
        inspect[0]["Manifest"]["Digest"],
        fixture_digest("busybox").as_str()
    );
    // The repo digest is the index's, as Docker records it.
    let index_digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap();
    assert_ne!(index_digest, fixture_digest("busybox"));
    assert_eq!(
        inspect[0]["RepoDigests"][0],
        format!("{}@{index_digest}", fake.reference("x/busybox"))
    );
    let err = b.fails(&["pull", "--platform", "linux/s390x", &r]);
    assert!(
        err.contains("no image for platform linux/s390x")
            && err.contains("linux/arm64/v8, linux/amd64"),
        "{err}"
    );
}

#[test]
fn docker_schema2_manifests_pull_like_oci_ones() {
    let skopeo = require_tool("skopeo");
    let reg = Registry::start();
    let r = reg.reference("schema2/busybox:latest");
    run_ok(std::process::Command::new(&skopeo).args([
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!(
            "oci-archive:{}:latest",
            fixture("busybox.oci.tar").display()
        ),
        &format!("docker://{r}"),
    ]));
    let b = Berth::new();
    b.ok(&["pull", &r]);
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", &r])).unwrap();
    assert_eq!(
        inspect[0]["Manifest"]["MediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        inspect[0]["Manifest"]["Layers"][0]["MediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // And it goes back out byte for byte.
    let again = reg.reference("schema2/copy:latest");
    b.ok(&["tag", &r, &again]);
    let pushed = b.ok(&["push", &again]);
    let original = b.ok(&["images", "--digests", "--format", "json"]);
    let digest: serde_json::Value = serde_json::from_str(original.lines().next().unwrap()).unwrap();
    assert!(
        pushed.contains(digest["Digest"].as_str().unwrap()),
        "{pushed}"
    );
}

#[test]
fn a_cut_blob_download_resumes_with_a_range_request() {
    use crate::support::fake_registry::{Behaviour, FakeRegistry};
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("layered.expect.json")).unwrap()).unwrap();
    // The zstd layer holds a 1 MiB random file: big enough to cut in the middle.
    let layer = expect["layers"]
        .as_object()
        .unwrap()
        .values()
        .find(|l| l["index"] == 1)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let fake = FakeRegistry::start(
        &fixture("layered.oci.tar"),
        Behaviour {
            cut: vec![(layer.clone(), 300_000, 1)],
            ..Behaviour::default()
        },
    );
    let r = fake.reference("x/layered:latest");
    let b = Berth::new();
    let err = b.fails(&["pull", &r]);
    assert!(err.contains(&layer), "{err}");
    let partial = b.images_dir().join("partial").join(&layer[7..]);
    assert_eq!(
        std::fs::metadata(&partial).map(|m| m.len()).ok(),
        Some(300_000),
        "the received bytes are kept"
    );

    b.ok(&["pull", &r]);
    assert_eq!(
        fake.count(&format!("GET /v2/x/layered/blobs/{layer} range=300000")),
        1,
        "the second pull asks only for the rest"
    );
    assert!(!partial.exists(), "the partial file became the blob");
    let stored = std::fs::read(b.images_dir().join("blobs/sha256").join(&layer[7..])).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&stored)), layer);
    assert_eq!(b.store_entries("layers").len(), 4);
}
