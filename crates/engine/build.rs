//! Builds `berth-init` (init/berth-init.c) as a static executable that `berth run --init`
//! bind-mounts into containers; the bytes are embedded in the berth binary.

fn main() {
    let src = "init/berth-init.c";
    println!("cargo:rerun-if-changed={src}");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("berth-init");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = std::process::Command::new(&compiler)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler} to build berth-init: {e}"));
    assert!(status.success(), "{compiler} failed to build {src} (needs a C compiler and static libc: Debian's gcc and libc6-dev)");
}
