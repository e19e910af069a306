//! `cargo xtask <command>`: project automation that is not part of any published crate.
//!
//! Commands:
//! - `tidy`: checks repository rules (crate dependency directions, lint inheritance); the same
//!   checks run as a test in `cargo test`.
//! - `soak`: the reliability suites at full size (`docs/reliability.md`).
//! - `bench [--quick]`: runs the benchmarks of docs/benchmarks.md (dcache, the SQLite floors,
//!   python-diskcache) and writes the report, the table and the chart (see `bench.rs`).
//! - `msrv`: the workspace against its `rust-version` (`cargo +<msrv> check`, or, without that
//!   toolchain, a loud notice and the checks possible without it; see `msrv.rs`).

mod bench;
mod msrv;
mod soak;
mod tidy;

use std::process::ExitCode;

fn usage() -> String {
    format!(
        "usage: cargo xtask <command>\n\ncommands:\n  tidy    check repository rules\n  bench   run the benchmarks (dcache, SQLite floors, python-diskcache) [--quick]\n  msrv    check the workspace against its rust-version [--no-install]\n  {}",
        soak::USAGE
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => match tidy::check_all(&tidy::workspace_root()) {
            Ok(()) => {
                println!("tidy: ok");
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("tidy: {p}");
                }
                ExitCode::FAILURE
            }
        },
        Some("soak") => soak::soak(&tidy::workspace_root(), &args[1..]),
        Some("msrv") => msrv::run(&tidy::workspace_root(), &args[1..]),
        Some("bench") => match bench::run(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e}");
                ExitCode::FAILURE
            }
        },
        Some("help" | "--help" | "-h") => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(2)
        }
    }
}
