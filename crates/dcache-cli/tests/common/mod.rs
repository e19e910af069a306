//! Helpers shared by the command's integration tests: running the real binary, and the
//! facade's python-diskcache harness.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The facade's python-diskcache harness (DCACHE_PYTHON, loud skip, fails in CI).
#[path = "../../../dcache/tests/common/python.rs"]
pub mod python;

/// What a run of `dcache` printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("dcache printed UTF-8")
    }

    /// Standard output's lines.
    pub fn lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_owned).collect()
    }

    /// Each line of standard output parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.out()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

/// The `dcache` binary with a clean environment for output decisions.
pub fn dcache() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dcache"))
}

/// Runs `dcache` with `args`, stdin empty (not a terminal), stdout and stderr captured.
pub fn run(args: &[&str]) -> Run {
    run_with_stdin(args, b"")
}

/// Runs `dcache` with `args` and `stdin`.
pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = dcache()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dcache");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for dcache");
    let run = Run {
        code: status.code().expect("dcache exited normally"),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "dcache panicked on {args:?}:\n{}",
        run.stderr
    );
    run
}

/// The directory as an argument.
pub fn arg(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8 temporary path")
}
