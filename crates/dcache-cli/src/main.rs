//! `dcache`: create, configure, inspect, watch, export and maintain a dcache or
//! python-diskcache cache directory.
//!
//! ```text
//! $ dcache stats ~/.cache/myapp
//! $ dcache keys ~/.cache/myapp --limit 20
//! $ dcache dump ~/.cache/myapp --json
//! $ dcache get ~/.cache/myapp thumbnail:42 > thumb.png
//! $ dcache check ~/.cache/myapp --fix
//! $ dcache init ~/.cache/new --size-limit 2GiB --statistics
//! $ dcache stats ~/.cache/new --watch
//! ```
//!
//! Every command takes the cache directory first and works on a `Cache` (a directory with a
//! `cache.db`) or a `FanoutCache` (shard directories `000`, `001`, … and no `cache.db` of its
//! own), written by dcache or by python-diskcache 5.6. Commands that only read open the cache
//! read-only; only `init` and `settings` change settings. `dcache --help` and
//! `dcache <command> --help` list the options, with examples; `dcache man` and
//! `dcache completions SHELL` come from the same definitions.
//!
//! Exit codes: 0 done; 1 a miss (`get`, `delete`, `touch`, `pull`, `peek`, `unlock`), a live
//! key (`add`), findings (`check`), entries that could not be decoded or loaded (`keys`,
//! `dump`, `load`) or a declined confirmation (`clear`, `unlock`); 2 a usage error or an error,
//! with a message that names the file and what to do.
//!
//! The command is built on the `dcache` facade only and has no SQL of its own.

mod admin;
mod cli;
mod commands;
mod error;
mod jsonvalue;
mod load;
mod locks;
mod logger;
mod progress;
mod queue;
mod render;
mod shell;
mod target;
mod units;
mod watch;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, DiskKind};
use crate::commands::Outcome;
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logger::install(cli.verbose);
    let result = match &cli.command {
        crate::cli::Command::Completions { shell } => shell::completions(*shell),
        crate::cli::Command::Man { command, out_dir } => {
            shell::man(command.as_deref(), out_dir.as_deref())
        }
        _ => run(&cli),
    };
    exit(result)
}

fn run(cli: &Cli) -> Result<Outcome, CliError> {
    match cli.disk {
        DiskKind::Python => commands::run(cli, &dcache::Disk::default()),
        DiskKind::Json => commands::run(cli, &dcache::JsonDisk::default()),
    }
}

fn exit(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NotDone) => ExitCode::from(1),
        // The reader of our output went away (`dcache keys DIR | head`): stop quietly.
        Err(CliError::Io { source, .. }) if source.kind() == ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcache: error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("dcache: hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}
