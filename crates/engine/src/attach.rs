//! `berth attach`: while a container runs, its supervisor serves a unix socket
//! (`<run root>/attach/<short id>.sock`). Every client gets the container's output as it is
//! produced, in frames `[stream: u8][length: u32 BE][bytes]` (stream 1 stdout, 2 stderr),
//! and a last frame `[3][4][exit code: i32 BE]` when the container exits.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logs::Stream;

const EXIT: u8 = 3;

pub fn socket_path(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("attach").join(format!("{}.sock", &id[..12]))
}

/// The supervisor's side.
pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<UnixStream>,
}

impl AttachServer {
    pub fn bind(run_root: &Path, id: &str) -> io::Result<Self> {
        let path = socket_path(run_root, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            path,
            clients: Vec::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes the clients waiting to connect.
    pub fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            // A client that stops reading must not stall the container's output.
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
            self.clients.push(stream);
        }
    }

    fn send(&mut self, kind: u8, data: &[u8]) {
        let mut frame = Vec::with_capacity(data.len() + 5);
        frame.push(kind);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        self.clients.retain_mut(|c| c.write_all(&frame).is_ok());
    }

    pub fn output(&mut self, stream: Stream, data: &[u8]) {
        if !self.clients.is_empty() {
            self.send(if stream == Stream::Stdout { 1 } else { 2 }, data);
        }
    }

    pub fn exited(&mut self, code: i32) {
        self.send(EXIT, &code.to_be_bytes());
        self.clients.clear();
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client's side: copies the output until the container exits; returns its exit code
/// (`None` if the supervisor went away without saying).
pub fn follow(
    path: &Path,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> io::Result<Option<i32>> {
    let mut conn = UnixStream::connect(path)?;
    let mut head = [0u8; 5];
    let mut data = Vec::new();
    loop {
        if let Err(e) = conn.read_exact(&mut head) {
            return if e.kind() == io::ErrorKind::UnexpectedEof {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        data.resize(len, 0);
        conn.read_exact(&mut data)?;
        match head[0] {
            1 => {
                stdout.write_all(&data)?;
                stdout.flush()?;
            }
            2 => stderr.write_all(&data)?,
            EXIT if len == 4 => {
                return Ok(Some(i32::from_be_bytes([
                    data[0], data[1], data[2], data[3],
                ])))
            }
            _ => {}
        }
    }
}
