//! Address and route requests (rtnetlink(7) `RTM_NEWADDR`, `RTM_NEWROUTE`). Both replace
//! what is there, so running them twice is harmless.

use std::net::Ipv4Addr;

use super::{NetlinkError, NetlinkSocket, Request, NLM_F_CREATE, NLM_F_REPLACE};

const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const AF_INET: u8 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// Assigns `ip/prefix_len` (with its broadcast address) to link `index`.
pub fn add_address_request(index: u32, ip: Ipv4Addr, prefix_len: u8, name: &str) -> Request {
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    let mut fixed = [0u8; 8];
    fixed[0] = AF_INET;
    fixed[1] = prefix_len;
    fixed[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut req = Request::new(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_REPLACE,
        &fixed,
        format!("add address {ip}/{prefix_len} to {name}"),
    );
    let bcast = crate::addr::Ipv4Net::containing(ip, prefix_len).broadcast();
    req.attr(IFA_LOCAL, &ip.octets());
    req.attr(IFA_ADDRESS, &ip.octets());
    if prefix_len < 31 {
        req.attr(IFA_BROADCAST, &bcast.octets());
    }
    req
}

/// Sets the default route of the main table to `gateway` through link `index`.
pub fn default_route_request(index: u32, gateway: Ipv4Addr, name: &str) -> Request {
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    let fixed = [
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    let mut req = Request::new(
        RTM_NEWROUTE,
        NLM_F_CREATE | NLM_F_REPLACE,
        &fixed,
        format!("add default route via {gateway} on {name}"),
    );
    req.attr(RTA_GATEWAY, &gateway.octets());
    req.attr_u32(RTA_OIF, index);
    req
}

pub fn add_address(
    sock: &mut NetlinkSocket,
    index: u32,
    ip: Ipv4Addr,
    prefix_len: u8,
    name: &str,
) -> Result<(), NetlinkError> {
    sock.execute(&add_address_request(index, ip, prefix_len, name))
}

pub fn add_default_route(
    sock: &mut NetlinkSocket,
    index: u32,
    gateway: Ipv4Addr,
    name: &str,
) -> Result<(), NetlinkError> {
    sock.execute(&default_route_request(index, gateway, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_address_request_bytes() {
        let bytes = add_address_request(3, Ipv4Addr::new(10, 78, 0, 2), 24, "eth0").encode(2);
        assert_eq!(bytes.len(), 16 + 8 + 3 * 8);
        assert_eq!(&bytes[16..24], &[AF_INET, 24, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[24..32], &[8, 0, 2, 0, 10, 78, 0, 2]);
        assert_eq!(&bytes[32..40], &[8, 0, 1, 0, 10, 78, 0, 2]);
        assert_eq!(&bytes[40..48], &[8, 0, 4, 0, 10, 78, 0, 255]);
    }
}
