//! Running the real python-diskcache 5.6.3 from tests.
//!
//! Python is found through `DCACHE_PYTHON` (default `python3`). When it or its `diskcache`
//! module is missing, tests that need it fail in CI (`CI=true`) and elsewhere print a loud
//! skip message naming the install command, then return early.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value as Json;

/// The python-diskcache version the interop tests are written against.
pub const DISKCACHE_VERSION: &str = "5.6.3";

/// An interpreter with python-diskcache importable.
#[derive(Debug, Clone)]
pub struct Python {
    exe: PathBuf,
}

/// The interpreter, or `None` (after a loud message) when python-diskcache is unavailable
/// outside CI. Panics in CI.
pub fn python() -> Option<Python> {
    static FOUND: OnceLock<Result<Python, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let exe = std::env::var_os("DCACHE_PYTHON")
            .map_or_else(|| PathBuf::from("python3"), PathBuf::from);
        let out = Command::new(&exe)
            .args([
                "-c",
                "import diskcache, sys; sys.stdout.write(diskcache.__version__)",
            ])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} cannot import diskcache: {}",
                exe.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let version = String::from_utf8_lossy(&out.stdout).to_string();
        if version != DISKCACHE_VERSION {
            return Err(format!(
                "{} has diskcache {version}, not {DISKCACHE_VERSION}",
                exe.display()
            ));
        }
        Ok(Python { exe })
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("python-diskcache is required in CI: {why}")
        }
        Err(why) => {
            // Written to the stderr handle directly: the test harness captures `eprintln!`.
            let message = format!(
                "\n!!!!!!!! SKIPPING a python interop test: {why}\n!!!!!!!! install it with: \
                 python3 -m venv .venv && .venv/bin/pip install diskcache=={DISKCACHE_VERSION} \
                 && export DCACHE_PYTHON=$PWD/.venv/bin/python\n"
            );
            std::io::stderr()
                .write_all(message.as_bytes())
                .expect("write to stderr");
            None
        }
    }
}

/// Returns early from the test when python-diskcache is unavailable outside CI.
#[macro_export]
macro_rules! require_python {
    () => {
        match $crate::common::python::python() {
            Some(p) => p,
            None => return Ok(()),
        }
    };
}

impl Python {
    /// A command running the interpreter; it writes no `__pycache__` beside the scripts.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    /// The interpreter's path.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Runs `code` with `args` (as `sys.argv[1:]`) and `stdin`; returns stdout. Panics with
    /// python's stderr when it fails.
    pub fn run(&self, code: &str, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .command()
            .arg("-c")
            .arg(code)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait for python");
        assert!(
            out.status.success(),
            "python failed ({}):\n{}\n--- code ---\n{code}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("python wrote UTF-8")
    }

    /// The path of a script in `crates/dcache/tests/interop/`.
    pub fn script_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(name)
    }

    /// Runs a script from `crates/dcache/tests/interop/` with `args`; returns stdout. The
    /// script runs from its file, so it can import its sibling `common.py`.
    pub fn script(&self, name: &str, args: &[&str]) -> String {
        self.script_with_input(name, args, "")
    }

    /// [`script`](Self::script) with `stdin`.
    pub fn script_with_input(&self, name: &str, args: &[&str], stdin: &str) -> String {
        let path = Self::script_path(name);
        let mut child = self
            .command()
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python script");
        let mut input = child.stdin.take().expect("stdin");
        // Written from a thread: a script may fill its stdout before reading all of stdin.
        let stdin = stdin.to_owned();
        let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
        let out = child.wait_with_output().expect("wait for python");
        writer
            .join()
            .expect("stdin writer thread")
            .expect("write stdin");
        assert!(
            out.status.success(),
            "python {} {args:?} failed ({}):\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("python wrote UTF-8")
    }

    /// Runs `command` of an interop script (`python <script> <command>`), sending `input` as
    /// JSON on stdin; returns the JSON the command printed. Panics with python's stderr when
    /// the script fails.
    pub fn call(&self, script: &str, command: &str, input: &Json) -> Json {
        let out = self.script_with_input(script, &[command], &input.to_string());
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{script} {command} printed invalid JSON ({e}): {out}"))
    }

    /// Starts a script in the background (for concurrent tests); stdin, stdout and stderr are
    /// piped.
    pub fn spawn_script(&self, name: &str, args: &[&str]) -> std::process::Child {
        self.command()
            .arg(Self::script_path(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python script")
    }
}

/// Waits until a python process has set `key` in `cache` (or died, or a minute passed).
///
/// # Errors
///
/// When python exits first, never sets the key, or the cache fails.
pub fn wait_for(
    cache: &dcache::Cache,
    key: &str,
    python: &mut std::process::Child,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let started = std::time::Instant::now();
    while !cache.contains(key)? {
        if let Some(status) = python.try_wait()? {
            return Err(format!("python exited ({status}) before setting {key:?}").into());
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            return Err(format!("python never set {key:?}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Waits for a python process to finish successfully; returns its stdout.
///
/// # Errors
///
/// When python fails (with its stderr) or writes non-UTF-8.
pub fn finish(
    python: std::process::Child,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let out = python.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "python failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}
