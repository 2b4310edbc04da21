//! Container and VM networking: bridges, veth pairs, IP address management, NAT and published ports, taps for VMs.
