//! Tap devices for NICs on a bridge: `--network bridge=DEV` (any Linux bridge) and
//! `--network network=NAME` (a berth network, which also reserves the guest an address).
//! They are made at start, named after the VM's uuid, and removed when the run ends.
//! The kernel work is berth_net's.

use std::path::Path;

use berth_net::dataplane::{Dataplane, LinuxDataplane};
use berth_net::{Net, NetConfig};

use super::VmError;
use crate::config::NicKind;
use crate::runtime::TapRecord;
use crate::state::VmState;

fn net_err(name: &str) -> impl FnOnce(berth_net::NetError) -> VmError + '_ {
    move |e| VmError::Net {
        name: name.to_string(),
        source: Box::new(e),
    }
}

fn open(state_root: &Path, name: &str) -> Result<Net, VmError> {
    Net::open(NetConfig::new(state_root)).map_err(net_err(name))
}

fn dataplane(state_root: &Path) -> LinuxDataplane {
    LinuxDataplane {
        nft_binary: NetConfig::new(state_root).nft_binary,
    }
}

/// The berth network `network` exists.
pub(super) fn check_network(state_root: &Path, vm: &str, network: &str) -> Result<(), VmError> {
    open(state_root, vm)?
        .get(network)
        .map(drop)
        .map_err(net_err(vm))
}

/// The tap name of NIC `index`: `bv<8 hex of the uuid>n<index>`, within IFNAMSIZ.
pub(super) fn tap_name(vm: &VmState, index: usize) -> String {
    let id: String = vm.uuid.chars().filter(|c| *c != '-').take(8).collect();
    format!("bv{id}n{index}")
}

/// Makes the taps the VM's NICs need; on failure removes those already made.
pub(super) fn create(state_root: &Path, vm: &VmState) -> Result<Vec<(usize, TapRecord)>, VmError> {
    let mut made: Vec<(usize, TapRecord)> = Vec::new();
    for (i, nic) in vm.nics.iter().enumerate() {
        let name = tap_name(vm, i);
        let result = match &nic.kind {
            NicKind::User => continue,
            NicKind::Bridge { bridge } => dataplane(state_root)
                .attach_tap(&name, bridge)
                .map(|()| TapRecord {
                    name: name.clone(),
                    network: None,
                    ip: None,
                })
                .map_err(|e| VmError::Net {
                    name: vm.name.clone(),
                    source: Box::new(e),
                }),
            NicKind::Network { network } => open(state_root, &vm.name).and_then(|net| {
                net.create_tap(network, &name)
                    .map(|h| TapRecord {
                        name: name.clone(),
                        network: Some(network.clone()),
                        ip: Some(format!("{}/{}", h.ip, h.prefix_len)),
                    })
                    .map_err(net_err(&vm.name))
            }),
        };
        match result {
            Ok(t) => made.push((i, t)),
            Err(e) => {
                let records: Vec<TapRecord> = made.into_iter().map(|(_, t)| t).collect();
                remove(state_root, &vm.name, &records);
                return Err(e);
            }
        }
    }
    Ok(made)
}

/// Removes taps of an ended run; best effort (a leftover is retried by the next cleanup
/// only if recorded, so failures are ignored rather than hiding the verb's result).
pub(crate) fn remove(state_root: &Path, vm: &str, taps: &[TapRecord]) {
    for t in taps {
        match &t.network {
            Some(_) => {
                if let Ok(net) = open(state_root, vm) {
                    let _ = net.delete_tap(&t.name);
                }
            }
            None => {
                let _ = dataplane(state_root).delete_link(&t.name);
            }
        }
    }
}
