//! `berth pull`, `push`, `login`, `logout`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_image::images::familiar;
use berth_image::platform::Platform;
use berth_image::pull::{pull as pull_image, PullOptions};
use berth_image::reference::{Reference, DOCKER_HUB};
use berth_image::registry::credentials::{self, Credentials};

use super::{block_on, Ctx};
use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::progress::reporter;

pub fn pull(ctx: &Ctx, args: PullArgs) -> Result<ExitCode> {
    let r: Reference = args.reference.parse()?;
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let store = ctx.store()?;
    let client = ctx.registry()?;
    let progress = reporter(args.quiet, args.no_progress);
    if !args.quiet {
        if r.digest.is_none() && !args.reference.contains(':') {
            println!("Using default tag: latest");
        }
        println!(
            "{}: Pulling from {}",
            r.tag.clone().unwrap_or_else(|| r.manifest_ref()),
            r.repository
        );
    }
    let options = PullOptions {
        platform,
        ..PullOptions::default()
    };
    let pulled = block_on(pull_image(&store, &client, &r, &options, progress))?
        .with_context(|| format!("pull {r}"))?;
    let short = familiar_ref(&r);
    if !args.quiet {
        println!("Digest: {}", pulled.digest);
        if pulled.changed {
            println!("Status: Downloaded newer image for {short}");
        } else {
            println!("Status: Image is up to date for {short}");
        }
    }
    println!("{r}");
    Ok(ExitCode::SUCCESS)
}

/// Pulls an image for `run`/`create`: progress lines on stderr (stdout is for the
/// container), nothing with `quiet`.
pub fn pull_quietly(ctx: &Ctx, reference: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let r: Reference = reference.parse()?;
    let platform = platform.map(str::parse::<Platform>).transpose()?;
    let store = ctx.store()?;
    let client = ctx.registry()?;
    let progress = reporter(true, true);
    let options = PullOptions {
        platform,
        ..PullOptions::default()
    };
    let pulled = block_on(pull_image(&store, &client, &r, &options, progress))?
        .with_context(|| format!("pull {r}"))?;
    if !quiet {
        eprintln!("Digest: {}", pulled.digest);
        eprintln!("Status: Downloaded newer image for {}", familiar_ref(&r));
    }
    Ok(())
}

fn familiar_ref(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{}@{d}", r.familiar_name()),
        (Some(_), None) => familiar(&r.to_string()),
        (None, None) => r.familiar_name(),
    }
}

pub fn push(ctx: &Ctx, args: PushArgs) -> Result<ExitCode> {
    let target: Reference = args.reference.parse()?;
    let store = ctx.store()?;
    let client = ctx.registry()?;
    let progress = reporter(args.quiet, false);
    if !args.quiet {
        println!("The push refers to repository [{}]", target.name());
    }
    let digest = block_on(berth_image::push::push(
        &store,
        &client,
        &args.reference,
        &target,
        progress,
    ))?
    .with_context(|| format!("push {target}"))?;
    if args.quiet {
        println!("{digest}");
    } else {
        println!("{}: digest: {digest}", target.manifest_ref());
    }
    Ok(ExitCode::SUCCESS)
}

fn registry_host(server: Option<&str>) -> String {
    match server {
        None => DOCKER_HUB.to_string(),
        Some(s) => {
            let s = s
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let s = s.strip_suffix("/v1").or(s.strip_suffix("/v2")).unwrap_or(s);
            match s {
                "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
                other => other.to_string(),
            }
        }
    }
}

pub fn login(ctx: &Ctx, args: LoginArgs) -> Result<ExitCode> {
    let host = registry_host(args.server.as_deref());
    let Some(username) = args.username else {
        bail!("login {host}: a username is required (-u)");
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => {
            bail!("login {host}: --password and --password-stdin are mutually exclusive")
        }
        (Some(p), false) => p,
        (None, _) => {
            if !args.password_stdin && std::io::stdin().is_terminal() {
                eprint!("Password: ");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("read password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("login {host}: the password is empty");
    }
    let creds = Credentials { username, password };
    let client = ctx.registry()?;
    block_on(client.check_login(&host, &creds))??;
    credentials::store(&credentials::default_config_path(), &host, &creds)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> Result<ExitCode> {
    let host = registry_host(args.server.as_deref());
    if credentials::remove(&credentials::default_config_path(), &host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(ExitCode::SUCCESS)
}
