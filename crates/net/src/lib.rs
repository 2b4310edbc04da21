//! Container and VM networking: bridges, veth pairs, IP address management, NAT and
//! published ports, name resolution through hosts files, taps for VMs.
//!
//! The container engine drives it through [`Net`]:
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_net::{Net, NetConfig, NetworkConfig, parse_port_spec};
//! let net = Net::open(NetConfig::new("/var/lib/berth"))?;
//! net.create(NetworkConfig::new("app"))?;
//! let hosts = net.hosts_file("c0ffee")?; // bind-mount as /etc/hosts
//! let resolv = net.resolv_conf("c0ffee")?; // bind-mount as /etc/resolv.conf
//! // ... the runtime creates the container in a new network namespace ...
//! let ep = net.connect("app", "c0ffee", "web", &[], "/proc/4242/ns/net".as_ref())?;
//! net.publish(&ep, &parse_port_spec("8080:80")?)?;
//! // ... and when the container is gone:
//! net.cleanup_container("c0ffee")?;
//! # Ok(()) }
//! ```
//! See docs/net.md for the addresses, the nftables layout and the reasons behind them.

pub mod addr;
pub mod dataplane;
pub mod hosts;
mod inspect;
pub mod ipam;
mod manager;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod state;
pub mod sysctl;
pub mod tap;

pub use addr::{AddrError, Ipv4Net, MacAddr};
pub use manager::{Endpoint, Net, NetConfig, NetError, NetworkConfig, TapHandle};
pub use ports::{parse_port_spec, ExposedPort, PortMapping, PortSpecError, Proto};
pub use state::{Driver, EndpointState, NetworkState};
