//! Shared test plumbing: private state roots, a real registry per test, fixtures, and
//! running the berth binary.

#![allow(dead_code)] // each test module uses a different subset

pub mod fake_registry;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("berth-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails loudly when a tool the tests need is missing: tests never pass by skipping.
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run .ci/run (it installs the test dependencies)")
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The fixture directory, built once per test run.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("BERTH_FIXTURES")
            .map_or_else(|| PathBuf::from("/var/cache/berth/fixtures"), PathBuf::from);
        let status = Command::new(repo_root().join("scripts/fixtures"))
            .env("BERTH_FIXTURES", &dir)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/fixtures");
        assert!(status.success(), "scripts/fixtures failed");
        dir
    })
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The manifest digest the fixture builder recorded for an image.
pub fn fixture_digest(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("{name}.digest")))
        .expect("fixture digest")
        .trim()
        .to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A berth state root of its own, with its own run root, default bridge, subnets and
/// nftables table, so tests can run in parallel; dropping it removes every container,
/// network, mount and firewall table it made.
pub struct Berth {
    pub root: TempDir,
    pub run_root: TempDir,
    pub docker_config: TempDir,
    /// Network settings passed as BERTH_BRIDGE/BERTH_SUBNET/BERTH_POOL/BERTH_NFT_TABLE.
    pub bridge: String,
    pub subnet_octet: u32,
    pub nft_table: String,
}

impl Berth {
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        Self {
            root: TempDir::new("root"),
            run_root: TempDir::new("run"),
            docker_config: TempDir::new("dockercfg"),
            bridge: format!("bt{}x{n}", pid % 100_000),
            subnet_octet: 100 + (pid + n) % 150,
            nft_table: format!("bt{pid}_{n}"),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.root.path())
            .arg("--run-root")
            .arg(self.run_root.path())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env("BERTH_BRIDGE", &self.bridge)
            .env("BERTH_SUBNET", format!("10.{}.0.0/24", self.subnet_octet))
            .env("BERTH_POOL", format!("10.{}.128.0/17", self.subnet_octet))
            .env("BERTH_NFT_TABLE", &self.nft_table)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_ROOT")
            .env_remove("BERTH_RUNTIME")
            .stdin(Stdio::null());
        c
    }

    /// Runs berth and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        expect_success(&format!("berth {args:?}"), &self.run(args))
    }

    /// Runs berth, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        expect_failure(&format!("berth {args:?}"), &self.run(args))
    }

    /// Loads a fixture archive and tags it; returns the image id.
    pub fn load_fixture(&self, archive: &str, tag: &str) -> String {
        let out = self.ok(&["load", "-i", fixture(archive).to_str().unwrap()]);
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image ID: "))
            .unwrap_or_else(|| panic!("no image id in load output: {out}"))
            .to_string();
        self.ok(&["tag", &id, tag]);
        id
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.path().join("images")
    }

    /// Entries of a store subdirectory (`blobs/sha256`, `layers`, `tmp`).
    pub fn store_entries(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.images_dir().join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn index(&self) -> serde_json::Value {
        match std::fs::read(self.images_dir().join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).expect("index.json parses"),
            Err(_) => serde_json::json!({"images": {}, "tags": {}}),
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if !self.root.path().join("containers").exists() {
            return;
        }
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", "-v", id]);
        }
        let nets = self.run(&["network", "ls", "-q"]);
        for n in String::from_utf8_lossy(&nets.stdout).lines() {
            let _ = self.run(&["network", "rm", n]);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table])
            .stderr(Stdio::null())
            .status();
        // Anything still mounted under the roots (a test that failed half way).
        for root in [self.root.path(), self.run_root.path()] {
            unmount_under(root);
        }
    }
}

/// Debian's docker-registry (the reference distribution registry) on a free loopback port,
/// killed by pid when dropped.
pub struct Registry {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with_auth(None)
    }

    /// With `htpasswd`, the registry demands basic auth with the users in that file.
    pub fn start_with_auth(htpasswd: Option<&Path>) -> Self {
        let bin = require_tool("docker-registry");
        let dir = TempDir::new("registry");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(h) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                h.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).expect("registry log"))
            .spawn()
            .expect("start docker-registry");
        wait_for_port(port);
        Self { port, dir, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("127.0.0.1:{}/{repo_tag}", self.port)
    }

    /// Publishes a fixture archive here with `berth push` from a scratch store; returns the
    /// reference.
    pub fn seed(&self, archive: &str, repo_tag: &str) -> String {
        let publisher = Berth::new();
        let target = self.reference(repo_tag);
        publisher.load_fixture(archive, &target);
        publisher.ok(&["push", &target]);
        target
    }

    /// The on-disk data file of a blob, for corrupting it.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that a command (`what`) succeeded; returns its stdout.
pub fn expect_success(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a command (`what`) failed; returns its stderr.
pub fn expect_failure(what: &str, out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{what} succeeded but should have failed:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lazily unmounts every mount point below `root`, deepest first.
pub fn unmount_under(root: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = root.to_string_lossy().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&p)
            .stderr(Stdio::null())
            .status();
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Runs a command, asserting success; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
