//! Helpers shared by the facade's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod python;
pub mod server;
pub mod stores;
pub mod tagged;

use std::path::Path;
use std::process::{Child, Command};

/// A directory as the `str` python is given.
pub fn path_str(dir: &Path) -> &str {
    dir.to_str()
        .expect("temporary directories have UTF-8 paths")
}

/// Runs the current test binary's test `name` alone in a child process with `env` set (tests
/// that need several processes re-run their own binary instead of forking).
pub fn spawn_child(name: &str, env: &[(&str, &str)]) -> std::io::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

/// Runs `work(i)` on threads `i` in `0..n` at once and waits for all; the first error, or a
/// panic, is the result.
pub fn in_threads<E>(
    n: usize,
    work: impl Fn(usize) -> Result<(), E> + Sync,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    std::thread::scope(|s| {
        let work = &work;
        let workers: Vec<_> = (0..n).map(|i| s.spawn(move || work(i))).collect();
        for w in workers {
            w.join()
                .map_err(|_| "worker panicked")?
                .map_err(Into::into)?;
        }
        Ok(())
    })
}
