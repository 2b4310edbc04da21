//! A minimal rtnetlink client: enough of `NETLINK_ROUTE` to create bridges and veth pairs,
//! move links between namespaces, and set addresses and routes. Messages are encoded by
//! hand following rtnetlink(7) and netlink(7); no netlink crate is used.
//!
//! A [`NetlinkSocket`] acts on the network namespace it was opened in, whatever namespace
//! the calling thread is in later (see `netns.rs`, which relies on that).

pub mod addr;
pub mod link;

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::{
    bind, recv, send, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};

// netlink(7) message types and flags.
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// Marks an attribute whose payload is itself a list of attributes.
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

const HEADER_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open netlink socket")]
    Open(#[source] io::Error),
    #[error("send netlink request to {op}")]
    Send {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("receive netlink reply to {op}")]
    Recv {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}")]
    Kernel {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("malformed netlink reply to {op}")]
    Malformed { op: String },
}

impl NetlinkError {
    /// The errno the kernel answered with, if the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// One rtnetlink request under construction: the header, the family-specific fixed part,
/// then attributes (possibly nested).
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
    op: String,
}

/// The position of an open nested attribute; close it with [`Request::end_nested`].
#[derive(Debug)]
#[must_use = "a nested attribute must be closed"]
pub struct Nest(usize);

impl Request {
    /// A request of `msg_type` with `flags` (`NLM_F_REQUEST` is added), followed by the
    /// fixed family header `fixed` (ifinfomsg, ifaddrmsg, rtmsg…). `op` names it in errors.
    pub fn new(msg_type: u16, flags: u16, fixed: &[u8], op: impl Into<String>) -> Self {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[4..6].copy_from_slice(&msg_type.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(fixed);
        pad(&mut buf);
        Self { buf, op: op.into() }
    }

    pub fn op(&self) -> &str {
        &self.op
    }

    /// Appends raw bytes (a fixed header inside a nested attribute, such as the veth peer's
    /// ifinfomsg).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        pad(&mut self.buf);
        self
    }

    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + payload.len()).expect("netlink attributes are small");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        pad(&mut self.buf);
        self
    }

    /// A NUL-terminated string attribute (interface names, link kinds).
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut payload = value.as_bytes().to_vec();
        payload.push(0);
        self.attr(kind, &payload)
    }

    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    pub fn attr_u8(&mut self, kind: u16, value: u8) -> &mut Self {
        self.attr(kind, &[value])
    }

    pub fn begin_nested(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    pub fn end_nested(&mut self, nest: Nest) -> &mut Self {
        let len = u16::try_from(self.buf.len() - nest.0).expect("netlink attributes are small");
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The bytes to send, with the total length and sequence number filled in.
    pub fn encode(&self, seq: u32) -> Vec<u8> {
        let mut out = self.buf.clone();
        let len = u32::try_from(out.len()).expect("netlink messages are small");
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[8..12].copy_from_slice(&seq.to_ne_bytes());
        out
    }
}

fn pad(buf: &mut Vec<u8>) {
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// A `NETLINK_ROUTE` socket, bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct NetlinkSocket {
    fd: OwnedFd,
    seq: u32,
}

impl NetlinkSocket {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )
        .map_err(|e| NetlinkError::Open(e.into()))?;
        // Port id 0: the kernel assigns a unique one.
        bind(&fd, &rustix::net::netlink::SocketAddrNetlink::new(0, 0))
            .map_err(|e| NetlinkError::Open(e.into()))?;
        Ok(Self { fd, seq: 0 })
    }

    /// Sends `req` asking for an acknowledgement and waits for it.
    pub fn execute(&mut self, req: &Request) -> Result<(), NetlinkError> {
        let mut req = req.clone();
        let flags = u16::from_ne_bytes([req.buf[6], req.buf[7]]) | NLM_F_ACK;
        req.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.exchange(&req).map(|_| ())
    }

    /// Sends a get request (no acknowledgement) and returns the payload of the one reply,
    /// after the netlink header.
    pub fn query(&mut self, req: &Request) -> Result<Vec<u8>, NetlinkError> {
        self.exchange(req)?
            .ok_or_else(|| NetlinkError::Malformed { op: req.op.clone() })
    }

    fn exchange(&mut self, req: &Request) -> Result<Option<Vec<u8>>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = req.encode(seq);
        send(&self.fd, &bytes, SendFlags::empty()).map_err(|e| NetlinkError::Send {
            op: req.op.clone(),
            source: e.into(),
        })?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let (n, _) = recv(&self.fd, &mut buf[..], RecvFlags::empty()).map_err(|e| {
                NetlinkError::Recv {
                    op: req.op.clone(),
                    source: e.into(),
                }
            })?;
            match parse_reply(&buf[..n], seq, &req.op)? {
                Reply::Ack => return Ok(None),
                Reply::Data(d) => return Ok(Some(d)),
                Reply::Other => continue,
            }
        }
    }
}

enum Reply {
    Ack,
    Data(Vec<u8>),
    /// Messages for another sequence number (a stale reply): keep reading.
    Other,
}

fn parse_reply(mut buf: &[u8], seq: u32, op: &str) -> Result<Reply, NetlinkError> {
    let malformed = || NetlinkError::Malformed { op: op.to_string() };
    while buf.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let msg_seq = u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes"));
        if len < HEADER_LEN || len > buf.len() {
            return Err(malformed());
        }
        let payload = &buf[HEADER_LEN..len];
        if msg_seq == seq {
            match kind {
                NLMSG_ERROR => {
                    let code = payload
                        .get(0..4)
                        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                        .ok_or_else(malformed)?;
                    if code == 0 {
                        return Ok(Reply::Ack);
                    }
                    return Err(NetlinkError::Kernel {
                        op: op.to_string(),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
                NLMSG_DONE => return Ok(Reply::Ack),
                _ => return Ok(Reply::Data(payload.to_vec())),
            }
        }
        let aligned = (len + 3) & !3;
        buf = &buf[aligned.min(buf.len())..];
    }
    Ok(Reply::Other)
}

/// Iterates the attributes in `buf` as `(kind without flags, payload)`.
pub(crate) fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & !NLA_F_NESTED;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, payload))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length() {
        let mut req = Request::new(16, 0, &[0u8; 16], "test");
        let nest = req.begin_nested(18);
        req.attr_str(1, "veth");
        req.end_nested(nest);
        let bytes = req.encode(9);
        // header 16 + ifinfomsg 16 + nest header 4 + "veth\0" attr (9, padded to 12)
        assert_eq!(bytes.len(), 48);
        assert_eq!(&bytes[32..36], &[16, 0, 18, 0x80]);
        assert_eq!(
            &bytes[36..48],
            &[9, 0, 1, 0, b'v', b'e', b't', b'h', 0, 0, 0, 0]
        );
        let parsed: Vec<_> = attrs(&bytes[32..]).collect();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, 18);
    }

    #[test]
    fn kernel_errors_become_io_errors() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&36u32.to_ne_bytes());
        msg.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&5u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&(-17i32).to_ne_bytes());
        msg.extend_from_slice(&[0u8; 16]);
        let err = parse_reply(&msg, 5, "create bridge b0").err().unwrap();
        assert_eq!(err.errno(), Some(17));
        assert_eq!(err.to_string(), "create bridge b0");
        assert!(matches!(parse_reply(&msg, 6, "x"), Ok(Reply::Other)));
    }
}
