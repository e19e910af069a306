//! `cargo xtask soak`: the reliability suites at full size, in release mode.
//!
//! Runs the `reliability_*` integration tests of `crates/dcache` with the long settings (1,000
//! SIGKILLs per store, 60 s of 4 processes × 2 threads per store, 50,000 decoder inputs each),
//! the model tests of `dcache-core` and `dcache-collections` with 5,000 cases each and the
//! decoders' never-panic properties with 50,000 cases each, then prints the figures the suites
//! report (`figure <suite> <name>=<value>` lines): the numbers `docs/reliability.md` quotes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The soak's sizes; each can be changed on the command line.
struct Sizes {
    kills: u64,
    secs: u64,
    cases: u64,
    model_cases: u64,
}

pub(crate) const USAGE: &str = "soak [--kills N] [--secs N] [--cases N] [--model-cases N]
          crash/concurrency/decoder/model suites at full size (defaults 1000, 60, 50000, 5000)";

fn parse(args: &[String]) -> Result<Sizes, String> {
    let mut sizes = Sizes {
        kills: 1000,
        secs: 60,
        cases: 50_000,
        model_cases: 5000,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--kills" => sizes.kills = value,
            "--secs" => sizes.secs = value,
            "--cases" => sizes.cases = value,
            "--model-cases" => sizes.model_cases = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(sizes)
}

/// One `cargo` command and its environment.
struct Suite {
    args: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
}

/// Runs one `cargo test` command, echoing its output; returns the figure lines it printed.
fn run(root: &Path, args: &[&str], env: &[(&str, String)]) -> Result<Vec<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("soak: cargo {}", args.join(" "));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(args).stderr(Stdio::piped());
    for (k, v) in env {
        eprintln!("soak:   {k}={v}");
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut figures = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
            eprintln!("{line}");
            if let Some(figure) = line.strip_prefix("figure ") {
                figures.push(figure.to_owned());
            } else if line.starts_with("seed: ") {
                figures.push(line.clone());
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if status.success() {
        Ok(figures)
    } else {
        Err(format!("cargo {} failed: {status}", args.join(" ")))
    }
}

pub(crate) fn soak(root: &Path, args: &[String]) -> ExitCode {
    let sizes = match parse(args) {
        Ok(sizes) => sizes,
        Err(e) => {
            eprintln!("soak: {e}\nusage: cargo xtask {USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let suites = [
        Suite {
            args: vec![
                "test",
                "--release",
                // Some suites run the optional disks (`required-features`).
                "--all-features",
                "-p",
                "dcache",
                "--test",
                "reliability_crash",
                "--test",
                "reliability_concurrency",
                "--test",
                "reliability_alloc",
                "--test",
                "reliability_bad_input",
                "--test",
                "reliability_security",
                "--",
                "--nocapture",
            ],
            env: vec![
                ("DCACHE_CRASH_KILLS", sizes.kills.to_string()),
                ("DCACHE_CONCURRENCY_SECS", sizes.secs.to_string()),
                ("DCACHE_ALLOC_CASES", sizes.cases.to_string()),
            ],
        },
        Suite {
            args: vec![
                "test",
                "--release",
                "-p",
                "dcache-core",
                "-p",
                "dcache-collections",
                "--test",
                "model",
            ],
            env: vec![("PROPTEST_CASES", sizes.model_cases.to_string())],
        },
        Suite {
            args: vec![
                "test",
                "--release",
                "--all-features",
                "-p",
                "dcache-disk",
                "--test",
                "roundtrip",
                "--lib",
                "never_panic",
            ],
            env: vec![("PROPTEST_CASES", sizes.cases.to_string())],
        },
    ];
    let mut figures = Vec::new();
    for suite in &suites {
        match run(root, &suite.args, &suite.env) {
            Ok(f) => figures.extend(f),
            Err(e) => {
                eprintln!("soak: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "soak: all suites passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "soak: model tests: {} random operation sequences each; decoder fuzzing: {} cases per \
         property",
        sizes.model_cases, sizes.cases
    );
    for figure in figures {
        println!("soak: {figure}");
    }
    ExitCode::SUCCESS
}
