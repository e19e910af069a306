//! Shell integration: completion scripts and the man page, generated from the clap
//! definitions in [`crate::cli`].

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::{Outcome, write_error};
use crate::error::CliError;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<Outcome, CliError> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "dcache", &mut out);
    write_all(&out)
}

/// Prints the man page (roff) on stdout: name, synopsis, description, options, the commands
/// and the exit codes, as `--help` states them.
pub(crate) fn man() -> Result<Outcome, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(write_error)?;
    write_all(&out)
}

fn write_all(bytes: &[u8]) -> Result<Outcome, CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(write_error)?;
    Ok(Outcome::Done)
}
