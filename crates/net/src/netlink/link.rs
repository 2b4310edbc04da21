//! Link requests (rtnetlink(7) `RTM_*LINK`): bridges, veth pairs, taps' bridge ports,
//! up/down, deletion and lookup by name. Each request is built by a pure function (so its
//! bytes can be tested) and run by a small helper on a [`NetlinkSocket`].

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{attrs, NetlinkError, NetlinkSocket, Request, NLM_F_CREATE, NLM_F_EXCL};
use crate::addr::MacAddr;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;

const AF_UNSPEC: u8 = 0;
const AF_BRIDGE: u8 = 7;
const IFF_UP: u32 = 0x1;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;

const ENODEV: i32 = 19;

/// `struct ifinfomsg` from rtnetlink(7).
pub(crate) fn ifinfomsg(family: u8, index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = family;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// A new bridge `name` with the fixed address `mac` (fails with EEXIST if a link of that
/// name exists). Without a set address a bridge takes the lowest address of its ports, so
/// it would change as containers come and go and leave stale gateway entries in their ARP
/// caches.
pub fn new_bridge_request(name: &str, mac: MacAddr) -> Request {
    let mut req = Request::new(
        RTM_NEWLINK,
        NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(AF_UNSPEC, 0, 0, 0),
        format!("create bridge {name}"),
    );
    req.attr_str(IFLA_IFNAME, name);
    req.attr(IFLA_ADDRESS, &mac.0);
    let info = req.begin_nested(IFLA_LINKINFO);
    req.attr_str(IFLA_INFO_KIND, "bridge");
    req.end_nested(info);
    req
}

/// What [`new_veth_request`] creates: `host` in the caller's namespace, enslaved to the
/// bridge `master`; `peer` created directly in the namespace `peer_netns`.
#[derive(Debug)]
pub struct VethRequest<'a> {
    pub host: &'a str,
    pub master: u32,
    pub peer: &'a str,
    pub peer_mac: MacAddr,
    pub peer_netns: BorrowedFd<'a>,
}

pub fn new_veth_request(v: &VethRequest<'_>) -> Request {
    let mut req = Request::new(
        RTM_NEWLINK,
        NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(AF_UNSPEC, 0, 0, 0),
        format!("create veth pair {} / {}", v.host, v.peer),
    );
    req.attr_str(IFLA_IFNAME, v.host);
    req.attr_u32(IFLA_MASTER, v.master);
    let info = req.begin_nested(IFLA_LINKINFO);
    req.attr_str(IFLA_INFO_KIND, "veth");
    let data = req.begin_nested(IFLA_INFO_DATA);
    let peer = req.begin_nested(VETH_INFO_PEER);
    // The peer's attributes follow its own ifinfomsg (veth_newlink in the kernel).
    req.raw(&ifinfomsg(AF_UNSPEC, 0, 0, 0));
    req.attr_str(IFLA_IFNAME, v.peer);
    req.attr(IFLA_ADDRESS, &v.peer_mac.0);
    let fd = u32::try_from(v.peer_netns.as_raw_fd()).expect("open fds are not negative");
    req.attr_u32(IFLA_NET_NS_FD, fd);
    req.end_nested(peer);
    req.end_nested(data);
    req.end_nested(info);
    req
}

/// Sets link `index` up.
pub fn set_up_request(index: u32, name: &str) -> Request {
    Request::new(
        RTM_NEWLINK,
        0,
        &ifinfomsg(AF_UNSPEC, index, IFF_UP, IFF_UP),
        format!("set link {name} up"),
    )
}

/// Makes link `index` a port of bridge `master`.
pub fn set_master_request(index: u32, master: u32, name: &str) -> Request {
    let mut req = Request::new(
        RTM_NEWLINK,
        0,
        &ifinfomsg(AF_UNSPEC, index, 0, 0),
        format!("attach link {name} to its bridge"),
    );
    req.attr_u32(IFLA_MASTER, master);
    req
}

/// Turns hairpin mode on for bridge port `index`, so frames may leave by the port they
/// came in on (as `bridge link set dev NAME hairpin on` does).
pub fn set_hairpin_request(index: u32, name: &str) -> Request {
    let mut req = Request::new(
        RTM_SETLINK,
        0,
        &ifinfomsg(AF_BRIDGE, index, 0, 0),
        format!("set hairpin mode on {name}"),
    );
    let info = req.begin_nested(IFLA_PROTINFO);
    req.attr_u8(IFLA_BRPORT_MODE, 1);
    req.end_nested(info);
    req
}

pub fn delete_request(name: &str) -> Request {
    let mut req = Request::new(
        RTM_DELLINK,
        0,
        &ifinfomsg(AF_UNSPEC, 0, 0, 0),
        format!("delete link {name}"),
    );
    req.attr_str(IFLA_IFNAME, name);
    req
}

pub fn get_request(name: &str) -> Request {
    let mut req = Request::new(
        RTM_GETLINK,
        0,
        &ifinfomsg(AF_UNSPEC, 0, 0, 0),
        format!("look up link {name}"),
    );
    req.attr_str(IFLA_IFNAME, name);
    req
}

/// The index of link `name`, or `None` if there is no such link.
pub fn index(sock: &mut NetlinkSocket, name: &str) -> Result<Option<u32>, NetlinkError> {
    let req = get_request(name);
    match sock.query(&req) {
        Ok(payload) => {
            let idx = payload
                .get(4..8)
                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| NetlinkError::Malformed {
                    op: req.op().to_string(),
                })?;
            Ok(Some(idx))
        }
        Err(e) if e.errno() == Some(ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The index of link `name`; an error naming it if it does not exist.
pub fn require_index(sock: &mut NetlinkSocket, name: &str) -> Result<u32, NetlinkError> {
    index(sock, name)?.ok_or_else(|| NetlinkError::Kernel {
        op: format!("look up link {name}"),
        source: std::io::Error::from_raw_os_error(ENODEV),
    })
}

/// Deletes link `name`; `Ok(false)` if it was already gone.
pub fn delete(sock: &mut NetlinkSocket, name: &str) -> Result<bool, NetlinkError> {
    match sock.execute(&delete_request(name)) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The name in an `RTM_NEWLINK` reply payload (used by tests and diagnostics).
pub fn reply_name(payload: &[u8]) -> Option<String> {
    attrs(payload.get(16..)?)
        .find(|(k, _)| *k == IFLA_IFNAME)
        .map(|(_, v)| String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(v)).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_request_bytes() {
        let bytes = set_up_request(7, "eth0").encode(1);
        let mut want: Vec<u8> = Vec::new();
        want.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
        want.extend_from_slice(&16u16.to_ne_bytes()); // RTM_NEWLINK
        want.extend_from_slice(&1u16.to_ne_bytes()); // NLM_F_REQUEST
        want.extend_from_slice(&1u32.to_ne_bytes()); // seq
        want.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        want.extend_from_slice(&[0, 0, 0, 0]); // family AF_UNSPEC, pad, type
        want.extend_from_slice(&7u32.to_ne_bytes()); // ifi_index
        want.extend_from_slice(&1u32.to_ne_bytes()); // ifi_flags IFF_UP
        want.extend_from_slice(&1u32.to_ne_bytes()); // ifi_change IFF_UP
        assert_eq!(bytes, want);
    }

    #[test]
    fn new_bridge_request_bytes() {
        let mac = MacAddr([2, 0x42, 10, 77, 0, 1]);
        let bytes = new_bridge_request("br0", mac).encode(3);
        assert_eq!(bytes.len(), 16 + 16 + 8 + 12 + 16);
        assert_eq!(&bytes[6..8], &(0x1u16 | 0x400 | 0x200).to_ne_bytes());
        // IFLA_IFNAME "br0\0"
        assert_eq!(&bytes[32..40], &[8, 0, 3, 0, b'b', b'r', b'0', 0]);
        // IFLA_ADDRESS (6 bytes, padded to 8)
        assert_eq!(&bytes[40..52], &[10, 0, 1, 0, 2, 0x42, 10, 77, 0, 1, 0, 0]);
        // IFLA_LINKINFO (nested) { IFLA_INFO_KIND "bridge\0" (11 bytes, padded to 12) }
        assert_eq!(&bytes[52..56], &[16, 0, 18, 0x80]);
        assert_eq!(&bytes[56..60], &[11, 0, 1, 0]);
        assert_eq!(&bytes[60..68], b"bridge\0\0");
    }

    #[test]
    fn hairpin_request_uses_bridge_family() {
        let bytes = set_hairpin_request(4, "vb1").encode(1);
        assert_eq!(bytes[16], AF_BRIDGE);
        assert_eq!(&bytes[32..36], &[12, 0, 12, 0x80]);
        assert_eq!(&bytes[36..44], &[5, 0, 4, 0, 1, 0, 0, 0]);
    }
}
