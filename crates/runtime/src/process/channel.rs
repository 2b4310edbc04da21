//! The typed channel between the runtime and the processes it forks: one JSON message per
//! `SOCK_SEQPACKET` packet, so a child reports its failure as a value (`Message::Error`),
//! not by exit code alone, and end-of-file means the peer is gone.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::syscall;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("send to {peer}")]
    Send {
        peer: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("receive from {peer}")]
    Recv {
        peer: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("decode a message from {peer}")]
    Decode {
        peer: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// One end of a channel; `peer` names the other end in errors.
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

impl Channel {
    pub fn pair(
        parent_peer: &'static str,
        child_peer: &'static str,
    ) -> io::Result<(Channel, Channel)> {
        let (a, b) = syscall::seqpacket_pair()?;
        Ok((
            Channel {
                fd: a,
                peer: parent_peer,
            },
            Channel {
                fd: b,
                peer: child_peer,
            },
        ))
    }

    pub fn from_fd(fd: OwnedFd, peer: &'static str) -> Self {
        Self { fd, peer }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ChannelError> {
        let data = serde_json::to_vec(msg).expect("messages always serialize");
        loop {
            // SOCK_SEQPACKET: one send is one message. MSG_NOSIGNAL: a dead peer is an
            // error, not a SIGPIPE.
            let r = send_packet(self.fd.as_fd(), &data);
            match r {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ChannelError::Send {
                        peer: self.peer,
                        source,
                    })
                }
            }
        }
    }

    /// The next message, or `None` when the peer closed its end.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let len = syscall::peek_len(self.fd.as_fd()).map_err(|source| ChannelError::Recv {
            peer: self.peer,
            source,
        })?;
        let mut buf = vec![0u8; len.max(1)];
        let (n, _) = syscall::recv_fds(self.fd.as_fd(), &mut buf, 0).map_err(|source| {
            ChannelError::Recv {
                peer: self.peer,
                source,
            }
        })?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|source| ChannelError::Decode {
                peer: self.peer,
                source,
            })
    }
}

fn send_packet(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    syscall::send_fds(fd, data, &[]).map(|()| data.len())
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Msg {
        Hello { n: u32 },
        Error { message: String },
    }

    #[test]
    fn messages_keep_their_boundaries_and_eof_is_none() {
        let (a, b) = Channel::pair("child", "parent").unwrap();
        a.send(&Msg::Hello { n: 1 }).unwrap();
        a.send(&Msg::Error {
            message: "mount /proc: permission denied".into(),
        })
        .unwrap();
        assert_eq!(b.recv::<Msg>().unwrap(), Some(Msg::Hello { n: 1 }));
        assert!(matches!(b.recv::<Msg>().unwrap(), Some(Msg::Error { .. })));
        drop(a);
        assert_eq!(b.recv::<Msg>().unwrap(), None);
    }
}
