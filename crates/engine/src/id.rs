//! Container ids (64 hex characters, shown as 12) and generated names (`adjective_noun`,
//! as Docker makes them when `--name` is absent).

use std::fmt::Write as _;

/// A fresh random id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nifty", "proud", "quiet", "rapid", "serene", "sharp", "sleepy", "stoic", "swift",
    "tender", "upbeat", "vivid", "witty", "zealous", "bold", "busy", "cool", "dreamy", "focused",
    "amber", "ancient", "azure", "bright", "brisk", "candid", "cheerful", "crisp", "daring",
    "deft", "distant", "elated", "epic", "fearless", "fervent", "gallant", "gleaming", "golden",
    "graceful", "hardy", "hearty", "humble", "jovial", "kind", "lively", "loyal", "mellow",
    "mighty", "misty", "modest", "noble", "patient", "placid", "plucky", "polished", "quick",
    "radiant", "robust", "rugged", "silent", "silver", "sincere", "sleek", "smooth", "snug",
    "spirited", "steady", "sturdy", "sunny", "tidy", "tranquil", "trusty", "valiant", "vigilant",
    "warm", "wise", "wistful", "young", "zesty", "nimble",
];

const NOUNS: &[&str] = &[
    "anchor",
    "beacon",
    "buoy",
    "cabin",
    "cargo",
    "compass",
    "current",
    "delta",
    "dock",
    "ferry",
    "galley",
    "harbor",
    "hull",
    "island",
    "jetty",
    "keel",
    "lagoon",
    "mast",
    "mooring",
    "pier",
    "quay",
    "reef",
    "rudder",
    "sail",
    "schooner",
    "shore",
    "skiff",
    "tide",
    "voyage",
    "wharf",
    "atoll",
    "ballast",
    "barge",
    "bay",
    "berth",
    "bow",
    "breakwater",
    "canal",
    "cape",
    "channel",
    "coast",
    "cove",
    "crew",
    "cutter",
    "deck",
    "dinghy",
    "estuary",
    "fathom",
    "fjord",
    "fleet",
    "frigate",
    "gull",
    "gust",
    "helm",
    "horizon",
    "inlet",
    "kayak",
    "knot",
    "lantern",
    "ledger",
    "lighthouse",
    "marina",
    "mariner",
    "navigator",
    "oar",
    "outrigger",
    "paddle",
    "pilot",
    "port",
    "porthole",
    "raft",
    "regatta",
    "rigging",
    "sextant",
    "shoal",
    "sloop",
    "sound",
    "spray",
    "starboard",
    "steamer",
    "strait",
    "swell",
    "tender",
    "trawler",
    "tugboat",
    "wake",
    "wave",
    "yacht",
    "yardarm",
    "capstan",
];

/// A random `adjective_noun` name.
pub fn new_name() -> String {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    let a = u16::from_le_bytes([b[0], b[1]]) as usize;
    let n = u16::from_le_bytes([b[2], b[3]]) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        NOUNS[n % NOUNS.len()]
    )
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(valid_name(&new_name()));
        assert!(valid_name("web-1.example_x"));
        for bad in ["", "a", "-x", "a b", "x/y", "_a"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
