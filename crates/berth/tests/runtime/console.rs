//! `--console-socket`: the pty master arrives over SCM_RIGHTS and drives the container's sh.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use super::harness::{eventually, id, Bundle, Runc};

fn read_until(master: &mut std::fs::File, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        let ready = berth_runtime::syscall::poll_read(&[master.as_fd()], 100).unwrap();
        if ready[0] == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
        if seen.contains(want) {
            return seen;
        }
    }
    panic!("never saw {want:?} on the console; got {seen:?}");
}

#[test]
fn console_socket_receives_the_pty_master() {
    let runc = Runc::new();
    let b = Bundle::new(&runc, &["sh"]);
    b.edit(|c| {
        c["process"]["terminal"] = true.into();
        c["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 111});
    });
    let sock = runc.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = id("tty");
    runc.ok(&[
        "create",
        "--bundle",
        b.arg(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let (stream, _) = listener.accept().unwrap();
    let mut name = [0u8; 256];
    let (n, mut fds) = berth_runtime::syscall::recv_fds(stream.as_fd(), &mut name, 1).unwrap();
    assert!(String::from_utf8_lossy(&name[..n]).starts_with("/dev/pts/"));
    let mut master = std::fs::File::from(fds.pop().expect("a pty master"));
    runc.ok(&["start", &id]);
    master
        .write_all(b"echo hi-$((40+2)); stty size; tty\n")
        .unwrap();
    let seen = read_until(&mut master, "/dev/pts/0");
    assert!(seen.contains("hi-42"), "{seen}");
    assert!(seen.contains("30 111"), "{seen}");
    master.write_all(b"exit\n").unwrap();
    eventually("sh to exit", || runc.status(&id) == "stopped");
    runc.ok(&["delete", &id]);
}
