//! The comparison harness: runs the standard workloads (W1–W5) for dcache and both SQLite
//! floors, interleaved over several rounds, and prints the median of each figure as one line
//! in the format of `docs/benchmarks.md`'s tables. `cargo xtask bench` runs it (in release mode) together with
//! python-diskcache's script; run it alone with
//! `cargo run --release -p benches --bin compare -- [--quick]`.
//!
//! ```text
//! compare [--quick] [--rounds N] [--work DIR] [--only IMPL[,IMPL…]] [--workloads W1,W3,…]
//! ```
//!
//! Progress goes to stderr, figure lines to stdout. W5's measurements run in child processes
//! (this binary, `scale` subcommand) so each reports the heap of one cache size only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use benches::figure::Metric;
use benches::target::{self, Registration};
use benches::workload::{self, Sizes};
use benches::{Figure, Result};

const USAGE: &str = "usage: compare [--quick] [--rounds N] [--work DIR] [--only IMPL[,IMPL...]] [--workloads W1,...]
       compare scale --impl IMPL --kind KIND --dir DIR --keys N --gets N";

struct Args {
    quick: bool,
    rounds: Option<usize>,
    work: Option<PathBuf>,
    only: Option<Vec<String>>,
    workloads: Option<Vec<String>>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("scale") {
        scale_child(&args[1..])
    } else {
        parse(&args).and_then(|a| run(&a))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        quick: false,
        rounds: None,
        work: None,
        only: None,
        workloads: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--rounds" => parsed.rounds = Some(value()?.parse()?),
            "--work" => parsed.work = Some(PathBuf::from(value()?)),
            "--only" => parsed.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--workloads" => {
                parsed.workloads = Some(value()?.split(',').map(str::to_owned).collect());
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    Ok(parsed)
}

/// A fresh, empty directory.
fn fresh(dir: &Path) -> Result<PathBuf> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {}: {e}", dir.display()).into()),
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

fn run(args: &Args) -> Result<()> {
    let sizes = if args.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let temp;
    let work = if let Some(w) = &args.work {
        fresh(w)?
    } else {
        temp = tempfile::tempdir()?;
        temp.path().to_path_buf()
    };
    let regs: Vec<Registration> = target::targets()
        .into_iter()
        .filter(|r| {
            args.only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == r.implementation))
        })
        .collect();
    let wanted = |name: &str| {
        args.workloads.as_ref().is_none_or(|w| {
            w.iter()
                .any(|w| name.split('/').any(|part| part.eq_ignore_ascii_case(w)))
        })
    };
    let started = Instant::now();
    // For the report: the SQLite every Rust implementation runs on.
    println!("# sqlite {}", rusqlite::version());
    let mut figures = Vec::new();
    for round in 1..=rounds {
        for reg in &regs {
            let label = format!("{}/{}", reg.implementation, reg.kind);
            let dir = work.join(format!("{}-{}", reg.implementation, reg.kind));
            let steps: [(&str, workload::Run); 3] = [
                ("W1/W2", workload::single_thread),
                ("W3", workload::large),
                ("W4", workload::concurrent),
            ];
            for (name, step) in steps {
                if !wanted(name) || (reg.concurrent_only && name != "W4") {
                    continue;
                }
                eprintln!(
                    "[{:>5.1}s] round {round}/{rounds} {name} {label}",
                    started.elapsed().as_secs_f64()
                );
                figures.extend(step(reg, &fresh(&dir)?, &sizes)?);
            }
            fresh(&dir)?;
        }
    }
    let exe = std::env::current_exe()?;
    let regs: Vec<Registration> = if wanted("W5") {
        regs.into_iter().filter(|r| !r.concurrent_only).collect()
    } else {
        Vec::new()
    };
    for reg in &regs {
        for keys in sizes.scale_keys {
            let dir = work.join(format!("w5-{}-{}-{keys}", reg.implementation, reg.kind));
            eprintln!(
                "[{:>5.1}s] W5 populating {keys} keys for {}/{}",
                started.elapsed().as_secs_f64(),
                reg.implementation,
                reg.kind
            );
            workload::populate_scale(reg, &fresh(&dir)?, keys)?;
        }
    }
    for round in 1..=rounds {
        for reg in &regs {
            for keys in sizes.scale_keys {
                eprintln!(
                    "[{:>5.1}s] round {round}/{rounds} W5 {} keys {}/{}",
                    started.elapsed().as_secs_f64(),
                    keys,
                    reg.implementation,
                    reg.kind
                );
                let dir = work.join(format!("w5-{}-{}-{keys}", reg.implementation, reg.kind));
                figures.extend(spawn_scale(&exe, reg, &dir, keys, sizes.scale_gets)?);
            }
        }
    }
    for reg in &regs {
        for keys in sizes.scale_keys {
            let dir = work.join(format!("w5-{}-{}-{keys}", reg.implementation, reg.kind));
            std::fs::remove_dir_all(dir)?;
        }
    }
    eprintln!(
        "[{:>5.1}s] done ({rounds} round(s); medians below)",
        started.elapsed().as_secs_f64()
    );
    for figure in medians(figures) {
        println!("{figure}");
    }
    Ok(())
}

fn spawn_scale(
    exe: &Path,
    reg: &Registration,
    dir: &Path,
    keys: usize,
    gets: usize,
) -> Result<Vec<Figure>> {
    let out = Command::new(exe)
        .args(["scale", "--impl", reg.implementation, "--kind", reg.kind])
        .arg("--dir")
        .arg(dir)
        .args(["--keys", &keys.to_string(), "--gets", &gets.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "scale run of {} failed: {}",
            reg.implementation,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(Figure::parse)
        .collect())
}

/// The child of W5: `scale --impl I --kind K --dir D --keys N --gets G`.
fn scale_child(args: &[String]) -> Result<()> {
    let mut named = BTreeMap::new();
    for pair in args.chunks(2) {
        match pair {
            [k, v] => {
                named.insert(k.trim_start_matches("--").to_owned(), v.clone());
            }
            _ => return Err(USAGE.into()),
        }
    }
    let get = |k: &str| {
        named
            .get(k)
            .ok_or_else(|| format!("scale needs --{k}\n{USAGE}"))
    };
    let reg = target::find(get("impl")?, get("kind")?)
        .ok_or_else(|| format!("no target {}/{}", named["impl"], named["kind"]))?;
    let figures = workload::scale_gets(
        &reg,
        Path::new(get("dir")?),
        get("keys")?.parse()?,
        get("gets")?.parse()?,
    )?;
    for f in figures {
        println!("{f}");
    }
    Ok(())
}

/// The median of every figure measured in several rounds, in order of first appearance.
fn medians(figures: Vec<Figure>) -> Vec<Figure> {
    let mut order: Vec<(String, String, String, u64, bool)> = Vec::new();
    let mut values: BTreeMap<(String, String, String, u64, bool), Vec<f64>> = BTreeMap::new();
    for f in figures {
        let (is_time, v) = match f.metric {
            Metric::UsPerOp(v) => (true, v),
            Metric::HeapRssMib(v) => (false, v),
        };
        let id = (f.implementation, f.kind, f.op, f.n, is_time);
        if !values.contains_key(&id) {
            order.push(id.clone());
        }
        values.entry(id).or_default().push(v);
    }
    order
        .into_iter()
        .map(|id| {
            let mut v = values.remove(&id).unwrap_or_default();
            v.sort_by(f64::total_cmp);
            let median = match v.len() {
                0 => 0.0,
                n if n % 2 == 1 => v[n / 2],
                n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
            };
            let (implementation, kind, op, n, is_time) = id;
            Figure {
                implementation,
                kind,
                op,
                n,
                metric: if is_time {
                    Metric::UsPerOp(median)
                } else {
                    Metric::HeapRssMib(median)
                },
            }
        })
        .collect()
}
