//! The `berth` command line. Thin: it parses arguments, calls into the library crates and
//! prints their results the way `docker` and `virsh` users expect.

mod cli;
mod commands;
mod format;
mod progress;
mod runc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Multi-call: invoked as `berth-runc`, this binary is a runc-compatible OCI runtime.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("berth-runc")) {
        return runc::main();
    }
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The whole cause chain once, on one line: `berth: pull x: manifest ...: 404 ...`.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("berth: {}", dedup_chain(&chain));
            ExitCode::from(1)
        }
    }
}

/// Joins a cause chain, dropping a cause whose text its parent already ends with (some
/// library errors repeat their source).
fn dedup_chain(chain: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in chain {
        if out.last().is_some_and(|p| p.ends_with(c.as_str())) {
            continue;
        }
        out.push(c);
    }
    out.join(": ")
}
