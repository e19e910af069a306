//! Shell integration: completion scripts and the man page, generated from the clap
//! definitions in [`crate::cli`].

use std::path::Path;

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

/// Prints the man page of `command` (default the main page) on stdout, or writes every page
/// into `out_dir`.
pub(crate) fn man(command: Option<&str>, out_dir: Option<&Path>) -> Result<Outcome, CliError> {
    let mut cli = Cli::command();
    // Global options are shown on every command's page.
    cli.build();
    let pages = pages(&cli);
    if let Some(dir) = out_dir {
        let io = |e: std::io::Error| CliError::Io {
            what: "writing man pages",
            source: std::io::Error::new(e.kind(), format!("{} ({e})", dir.display())),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        for (name, page) in &pages {
            std::fs::write(dir.join(format!("{name}.1")), page).map_err(io)?;
        }
        println!("wrote {} man pages into {}", pages.len(), dir.display());
        return Ok(Outcome::Done);
    }
    let wanted = command.map_or_else(|| "dcache".to_owned(), |c| format!("dcache-{c}"));
    match pages.iter().find(|(name, _)| *name == wanted) {
        Some((_, page)) => write_all(page),
        None => Err(CliError::Usage(format!(
            "no command {:?}; `dcache --help` lists them",
            command.unwrap_or_default()
        ))),
    }
}

/// Every page: `dcache` and `dcache-COMMAND`, rendered as roff.
fn pages(cli: &clap::Command) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut render = |name: String, command: clap::Command| {
        let mut page = Vec::new();
        // Rendering into memory cannot fail.
        if clap_mangen::Man::new(command).render(&mut page).is_ok() {
            out.push((name, page));
        }
    };
    render("dcache".to_owned(), cli.clone());
    for sub in cli.get_subcommands() {
        let name = format!("dcache-{}", sub.get_name());
        render(
            name.clone(),
            sub.clone()
                .name(name)
                .bin_name(format!("dcache {}", sub.get_name())),
        );
    }
    out
}

fn write_all(bytes: &[u8]) -> Result<Outcome, CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(write_error)?;
    Ok(Outcome::Done)
}
