//! save and load: round trips, and interchange with skopeo's docker-archive and oci-archive.

use std::process::Command;

use crate::support::*;

#[test]
fn save_then_load_round_trips_ids_tags_and_digests() {
    let a = Berth::new();
    let id = a.load_fixture("layered.oci.tar", "round/trip:v2");
    let dir = TempDir::new("save");
    let out = dir.path().join("img.tar");
    a.ok(&["save", "-o", out.to_str().unwrap(), "round/trip:v2"]);

    let b = Berth::new();
    let loaded = b.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: round/trip:v2");
    let ia: serde_json::Value =
        serde_json::from_str(&a.ok(&["image", "inspect", "round/trip:v2"])).unwrap();
    let ib: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "round/trip:v2"])).unwrap();
    assert_eq!(ib[0]["Id"], id.as_str());
    assert_eq!(ia[0]["Manifest"], ib[0]["Manifest"]);
    assert_eq!(ia[0]["RootFS"], ib[0]["RootFS"]);
}

#[test]
fn skopeo_reads_what_berth_saves_in_both_formats() {
    let skopeo = require_tool("skopeo");
    let b = Berth::new();
    b.load_fixture("layered.oci.tar", "interop/layered:latest");
    let dir = TempDir::new("interop");
    let saved = dir.path().join("saved.tar");
    b.ok(&["save", "-o", saved.to_str().unwrap(), "interop/layered"]);
    // As an OCI archive: the manifest is byte-identical.
    let raw = run_ok(Command::new(&skopeo).args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", saved.display()),
    ]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        fixture_digest("layered")
    );
    // As a docker-archive: skopeo finds the tag and copies every layer out.
    run_ok(Command::new(&skopeo).args([
        "copy",
        &format!("docker-archive:{}:interop/layered:latest", saved.display()),
        &format!("dir:{}", dir.path().join("out").display()),
    ]));
}

#[test]
fn berth_loads_a_docker_archive_written_by_skopeo() {
    let skopeo = require_tool("skopeo");
    let dir = TempDir::new("docker-archive");
    let archive = dir.path().join("docker.tar");
    // Docker archives cannot hold zstd layers, so this uses the gzip-only busybox image.
    run_ok(Command::new(&skopeo).args([
        "copy",
        &format!(
            "oci-archive:{}:latest",
            fixture("busybox.oci.tar").display()
        ),
        &format!("docker-archive:{}:from/skopeo:1", archive.display()),
    ]));
    let b = Berth::new();
    let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: from/skopeo:1");
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "from/skopeo:1"])).unwrap();
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(b.store_entries("layers").len(), 1);
    assert!(b.store_entries("layers")[0].len() == 64);
    // And it can be pushed and pulled again like any other image.
    let reg = Registry::start();
    let r = reg.reference("again/skopeo:1");
    b.ok(&["tag", "from/skopeo:1", &r]);
    b.ok(&["push", &r]);
    Berth::new().ok(&["pull", "-q", &r]);
}

#[test]
fn load_from_stdin_and_of_a_gzipped_archive() {
    let dir = TempDir::new("gz");
    let gz = dir.path().join("busybox.tar.gz");
    {
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::copy(
            &mut std::fs::File::open(fixture("busybox.oci.tar")).unwrap(),
            &mut enc,
        )
        .unwrap();
        enc.finish().unwrap();
    }
    let b = Berth::new();
    let out = b
        .cmd(&["load"])
        .stdin(std::fs::File::open(&gz).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Loaded image ID: sha256:"));
}

#[test]
fn bad_archives_are_refused_without_changing_the_store() {
    let dir = TempDir::new("badarchive");
    let b = Berth::new();
    let not_tar = dir.path().join("junk.tar");
    std::fs::write(&not_tar, vec![7u8; 4096]).unwrap();
    let err = b.fails(&["load", "-i", not_tar.to_str().unwrap()]);
    assert_eq!(err.lines().count(), 1, "{err}");
    let missing = dir.path().join("missing.tar");
    let err = b.fails(&["load", "-i", missing.to_str().unwrap()]);
    assert!(err.contains("missing.tar"), "{err}");
    assert!(b.ok(&["images", "-q"]).is_empty());
    assert!(
        b.store_entries("tmp").is_empty(),
        "{:?}",
        b.store_entries("tmp")
    );
    let err = b.fails(&[
        "save",
        "-o",
        dir.path().join("x.tar").to_str().unwrap(),
        "nope",
    ]);
    assert!(err.contains("no such image: nope"), "{err}");
    assert!(!dir.path().join("x.tar").exists());
}

#[test]
fn kill_9_during_load_leaves_a_readable_store() {
    for delay_ms in [0u64, 3, 10, 25] {
        let b = Berth::new();
        let mut child = b
            .cmd(&["load", "-i", fixture("layered.oci.tar").to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        b.ok(&["images"]);
        b.ok(&["load", "-i", fixture("layered.oci.tar").to_str().unwrap()]);
        assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
        assert_eq!(b.store_entries("layers").len(), 4);
        assert!(b.store_entries("tmp").is_empty());
    }
}
