//! `cargo xtask msrv`: the workspace against its minimum supported Rust version (the
//! workspace's `rust-version`).
//!
//! With the MSRV toolchain installed, or installable by rustup within a short timeout, this is
//! `cargo +<msrv> check --workspace --all-features --all-targets`: the real check. Without it
//! (no network to the Rust distribution servers, say), it says so loudly and runs the checks
//! that are possible with the current toolchain:
//!
//! - clippy's `incompatible_msrv` lint, which reads the `rust-version` of each crate and
//!   refuses standard-library APIs stabilized after it;
//! - every dependency's own `rust-version` (from `cargo metadata`) at most the MSRV, naming
//!   the crate that needs more.
//!
//! Language features newer than the MSRV are caught only by the real check.
//!
//! `cargo xtask msrv --no-install` runs only those checks (the toolchain is neither used nor
//! installed): for a machine without network to the Rust distribution servers, and to try
//! the fallback itself.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How long `rustup toolchain install` may take before the fallback runs.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs the check; prints what it did. `args` may hold `--no-install`.
pub(crate) fn run(root: &Path, args: &[String]) -> ExitCode {
    let no_install = args.iter().any(|a| a == "--no-install");
    if let Some(other) = args.iter().find(|a| *a != "--no-install") {
        eprintln!("msrv: unknown argument {other:?} (only --no-install)");
        return ExitCode::from(2);
    }
    match check(root, no_install) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msrv: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(root: &Path, no_install: bool) -> Result<(), String> {
    let meta = full_metadata(root)?;
    let msrv = workspace_msrv(&meta)?;
    let toolchain = format!("{}.{}", msrv.0, msrv.1);
    println!("msrv: the workspace's rust-version is {toolchain}");
    let available = if no_install {
        Err("--no-install was given".to_owned())
    } else {
        toolchain_available(&toolchain)
    };
    match available {
        Ok(()) => {
            println!("msrv: cargo +{toolchain} check --workspace --all-features --all-targets");
            let status = Command::new("cargo")
                .args([
                    &format!("+{toolchain}"),
                    "check",
                    "--workspace",
                    "--all-features",
                    "--all-targets",
                ])
                .current_dir(root)
                .status()
                .map_err(|e| format!("cannot run cargo +{toolchain}: {e}"))?;
            if status.success() {
                println!("msrv: ok, the workspace builds with Rust {toolchain}");
                Ok(())
            } else {
                Err(format!(
                    "the workspace does not build with Rust {toolchain} (its rust-version): \
                     raise rust-version in Cargo.toml or avoid the newer feature"
                ))
            }
        }
        Err(why) => {
            let banner = "!".repeat(78);
            eprintln!("{banner}");
            eprintln!("msrv: Rust {toolchain} IS NOT AVAILABLE: {why}.");
            eprintln!("msrv: `cargo +{toolchain} check` DID NOT RUN. Running the checks that are");
            eprintln!("msrv: possible instead: clippy's incompatible_msrv (std APIs newer than");
            eprintln!("msrv: {toolchain}) and every dependency's rust-version. Language features");
            eprintln!("msrv: newer than {toolchain} are NOT checked.");
            eprintln!("{banner}");
            let mut problems = dependency_problems(&meta, msrv);
            for p in &problems {
                eprintln!("msrv: {p}");
            }
            if problems.is_empty() {
                println!("msrv: every dependency's rust-version is at most {toolchain}");
            }
            if let Err(e) = incompatible_msrv_lint(root) {
                problems.push(e);
            }
            if problems.is_empty() {
                println!("msrv: ok (the partial checks; see the warning above)");
                Ok(())
            } else {
                Err(format!(
                    "{} problem(s) with Rust {toolchain}",
                    problems.len()
                ))
            }
        }
    }
}

/// `cargo metadata` with dependencies, every feature on (the dependencies any build may use).
fn full_metadata(root: &Path) -> Result<serde_json::Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--all-features"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// A `rust-version` as (major, minor, patch); a missing part is 0.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().split('.').map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

/// The workspace members' `rust-version` (they inherit one, so they must agree).
fn workspace_msrv(meta: &serde_json::Value) -> Result<(u64, u64, u64), String> {
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let mut found = None;
    for package in meta["packages"].as_array().into_iter().flatten() {
        if !members.contains(&package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or("?");
        let Some(text) = package["rust_version"].as_str() else {
            return Err(format!(
                "workspace crate `{name}` has no rust-version: add `rust-version.workspace = true`"
            ));
        };
        let version = parse_version(text)
            .ok_or_else(|| format!("`{name}` has an unreadable rust-version {text:?}"))?;
        match found {
            Some(v) if v != version => {
                return Err(format!(
                    "workspace crates disagree on rust-version (`{name}` says {text}): \
                     use `rust-version.workspace = true` everywhere"
                ));
            }
            _ => found = Some(version),
        }
    }
    found.ok_or_else(|| "cargo metadata lists no workspace crates".to_owned())
}

/// Every package in the dependency graph whose own `rust-version` is above `msrv`.
fn dependency_problems(meta: &serde_json::Value, msrv: (u64, u64, u64)) -> Vec<String> {
    let mut problems = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let Some(text) = package["rust_version"].as_str() else {
            continue;
        };
        let name = package["name"].as_str().unwrap_or("?");
        let version = package["version"].as_str().unwrap_or("?");
        match parse_version(text) {
            Some(needed) if needed > msrv => problems.push(format!(
                "{name} {version} needs Rust {text}, above the workspace's rust-version \
                 {}.{}: pin an older {name} (`cargo update -p {name} --precise <version>`) \
                 or raise rust-version",
                msrv.0, msrv.1
            )),
            Some(_) => {}
            None => problems.push(format!(
                "{name} {version} has an unreadable rust-version {text:?}"
            )),
        }
    }
    problems
}

/// Installs the toolchain if rustup can within [`INSTALL_TIMEOUT`]; says why not otherwise.
fn toolchain_available(toolchain: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("rustup is not available ({e})"))?;
    if installed.success() {
        return Ok(());
    }
    println!(
        "msrv: installing Rust {toolchain} (rustup, at most {} s)",
        INSTALL_TIMEOUT.as_secs()
    );
    let mut child = Command::new("rustup")
        .args(["toolchain", "install", toolchain, "--profile", "minimal"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("rustup toolchain install failed ({status})")),
            Ok(None) if started.elapsed() > INSTALL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "rustup toolchain install took more than {} s (no network to \
                     static.rust-lang.org?)",
                    INSTALL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for rustup: {e}")),
        }
    }
}

/// clippy's `incompatible_msrv` (a std API stabilized after a crate's `rust-version`), denied,
/// on every crate, target and feature.
fn incompatible_msrv_lint(root: &Path) -> Result<(), String> {
    println!(
        "msrv: cargo clippy --workspace --all-features --all-targets -- -D clippy::incompatible_msrv"
    );
    let status = Command::new("cargo")
        .args([
            "clippy",
            "--workspace",
            "--all-features",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "clippy::incompatible_msrv",
        ])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo clippy: {e}"))?;
    if status.success() {
        println!("msrv: no std API newer than the rust-version is used");
        Ok(())
    } else {
        Err(
            "clippy's incompatible_msrv: a std API newer than the rust-version is used (above)"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_missing_parts_as_zero() {
        assert_eq!(parse_version("1.89"), Some((1, 89, 0)));
        assert_eq!(parse_version("1.85.1"), Some((1, 85, 1)));
        assert_eq!(parse_version("1"), Some((1, 0, 0)));
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
    }

    #[test]
    fn a_dependency_above_the_msrv_is_named() {
        let meta = serde_json::json!({ "packages": [
            { "name": "old", "version": "1.0.0", "rust_version": "1.70" },
            { "name": "same", "version": "1.0.0", "rust_version": "1.89.0" },
            { "name": "none", "version": "1.0.0", "rust_version": null },
            { "name": "new", "version": "2.1.0", "rust_version": "1.90" },
        ]});
        let problems = dependency_problems(&meta, (1, 89, 0));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("new 2.1.0 needs Rust 1.90"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_workspace_msrv_is_read_and_must_agree() {
        let meta = serde_json::json!({
            "workspace_members": ["a", "b"],
            "packages": [
                { "id": "a", "name": "a", "rust_version": "1.89" },
                { "id": "b", "name": "b", "rust_version": "1.89" },
                { "id": "c", "name": "dep", "rust_version": "1.95" },
            ]
        });
        assert_eq!(workspace_msrv(&meta), Ok((1, 89, 0)));
        let mut split = meta.clone();
        split["packages"][1]["rust_version"] = "1.90".into();
        assert!(workspace_msrv(&split).unwrap_err().contains("disagree"));
    }
}
