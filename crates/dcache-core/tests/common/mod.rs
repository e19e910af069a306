//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use dcache_core::{Cache, CacheBuilder, Disk, ManualClock};

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ))
}

pub fn builder_with(clock: &Arc<ManualClock>) -> CacheBuilder<Disk> {
    Cache::builder().clock(clock.clone())
}

/// Every value file below `dir` (relative paths), sorted.
pub fn value_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "val") {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// Reads a Settings row directly.
pub fn setting(dir: &Path, key: &str) -> rusqlite::types::Value {
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    conn.query_row("SELECT value FROM Settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Runs the current test binary's test `name` in a child process with `env` set; returns
/// the child (the test checks `env` to know it is the child).
pub fn spawn_child(name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}
