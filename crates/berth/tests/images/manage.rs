//! tag, rmi, prune, inspect and the `images` listing.

use crate::support::*;

#[test]
fn rmi_untags_refuses_ambiguous_ids_and_collects_garbage() {
    let b = Berth::new();
    let id = b.load_fixture("busybox.oci.tar", "first:1");
    b.ok(&["tag", "first:1", "second"]);
    let images = b.ok(&["images"]);
    assert!(
        images.contains("first ") && images.contains("second "),
        "{images}"
    );

    // By id with two tags: refused without -f, nothing changes.
    let err = b.fails(&["rmi", &id[7..19]]);
    assert!(err.contains("referenced in multiple repositories"), "{err}");
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);

    // By tag: only untags while another tag remains.
    let out = b.ok(&["rmi", "first:1"]);
    assert_eq!(out.trim(), "Untagged: first:1");
    assert!(!b.store_entries("layers").is_empty());

    // Last tag: untag and delete, and garbage collection empties the store.
    let out = b.ok(&["rmi", "second"]);
    assert!(
        out.contains("Untagged: second:latest") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert!(
        b.store_entries("layers").is_empty(),
        "{:?}",
        b.store_entries("layers")
    );
    assert!(
        b.store_entries("blobs/sha256").is_empty(),
        "{:?}",
        b.store_entries("blobs/sha256")
    );

    let err = b.fails(&["rmi", "second"]);
    assert!(err.contains("no such image: second"), "{err}");
}

#[test]
fn rmi_force_by_id_removes_every_tag() {
    let b = Berth::new();
    let id = b.load_fixture("busybox.oci.tar", "a");
    b.ok(&["tag", "a", "b:2"]);
    let out = b.ok(&["rmi", "-f", &id]);
    assert!(
        out.contains("Untagged: a:latest") && out.contains("Untagged: b:2"),
        "{out}"
    );
    assert!(b.ok(&["images", "-q"]).is_empty());
}

#[test]
fn shared_layers_survive_removal_of_one_image() {
    let b = Berth::new();
    b.load_fixture("busybox.oci.tar", "busy");
    b.load_fixture("layered.oci.tar", "layered");
    // The busybox layer is layer 1 of `layered` too: stored once.
    assert_eq!(b.store_entries("layers").len(), 4);
    b.ok(&["rmi", "busy"]);
    assert_eq!(b.store_entries("layers").len(), 4);
    b.ok(&["rmi", "layered"]);
    assert!(b.store_entries("layers").is_empty());
}

#[test]
fn prune_removes_only_dangling_images_unless_all() {
    let b = Berth::new();
    let busy = b.load_fixture("busybox.oci.tar", "keep");
    let layered = b.ok(&["load", "-i", fixture("layered.oci.tar").to_str().unwrap()]);
    let layered = layered
        .trim()
        .strip_prefix("Loaded image ID: ")
        .unwrap()
        .to_string();
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("Deleted: {layered}")), "{out}");
    assert!(!out.contains(&busy), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), &busy[7..19]);
    let out = b.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("Deleted: {busy}")), "{out}");
    assert!(b.store_entries("blobs/sha256").is_empty());
}

#[test]
fn images_formats_and_inspect() {
    let b = Berth::new();
    let id = b.load_fixture("busybox.oci.tar", "example.com/team/busybox:v1");
    let table = b.ok(&["images"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("example.com/team/busybox   v1   "), "{row}");
    assert!(row.contains(&id[7..19]) && row.ends_with("MB"), "{row}");

    let json: serde_json::Value =
        serde_json::from_str(b.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["Repository"], "example.com/team/busybox");
    assert_eq!(json["Tag"], "v1");
    assert_eq!(json["ID"], &id[7..19]);

    let filtered = b.ok(&["images", "nothing-here"]);
    assert_eq!(filtered.lines().count(), 1, "{filtered}");

    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "example.com/team/busybox:v1"])).unwrap();
    let img = &inspect[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"][0], "example.com/team/busybox:v1");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // By unique id prefix too, and a clear error for unknown names.
    b.ok(&["inspect", &id[7..13]]);
    let err = b.fails(&["image", "inspect", "missing:tag"]);
    assert!(err.contains("no such image: missing:tag"), "{err}");
    let err = b.fails(&["inspect", "missing:tag"]);
    assert!(err.contains("no such object: missing:tag"), "{err}");
}

#[test]
fn kill_9_during_rmi_leaves_a_consistent_store() {
    for delay_ms in [0u64, 2, 5, 10, 20] {
        let b = Berth::new();
        b.load_fixture("busybox.oci.tar", "busy");
        b.load_fixture("layered.oci.tar", "layered");
        let mut child = b
            .cmd(&["rmi", "layered"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever the index lists is whole on disk.
        let index = b.index();
        for img in index["images"].as_object().unwrap().values() {
            for layer in img["layers"].as_array().unwrap() {
                let diff = layer["diff_id"].as_str().unwrap();
                assert!(
                    b.images_dir().join("layers").join(&diff[7..]).is_dir(),
                    "{diff} missing after kill at {delay_ms} ms"
                );
                let blob = layer["digest"].as_str().unwrap();
                assert!(b
                    .images_dir()
                    .join("blobs/sha256")
                    .join(&blob[7..])
                    .is_file());
            }
        }
        if b.ok(&["images"]).contains("layered") {
            b.ok(&["rmi", "layered"]);
        }
        b.ok(&["image", "prune", "-f"]);
        assert_eq!(
            b.store_entries("layers").len(),
            1,
            "after kill at {delay_ms} ms"
        );
        assert!(b.store_entries("tmp").is_empty());
    }
}
