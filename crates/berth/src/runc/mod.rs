//! `berth-runc`: the runc-compatible command line over the `runtime` crate.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    eprintln!("berth-runc: the OCI runtime is not built yet");
    ExitCode::from(1)
}
