//! Helpers shared by the `reliability_*` suites: a seeded random generator, child processes
//! (the test binary re-run), and the figures each suite prints for `docs/reliability.md`.
#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// splitmix64: small, fast and good enough to drive random workloads reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from `env` if set (to replay a failure), else from the clock; printed either way.
    pub fn seed_from_env(env: &str) -> u64 {
        let seed = std::env::var(env)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    ^ u64::from(std::process::id())
            });
        eprintln!("seed: {env}={seed}");
        seed
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// `len` bytes determined by `seed`: values are regenerated, not stored, by the checker.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A command re-running this test binary's test `name` alone, with `env` set; `shell` (if
/// any) is a `sh` prefix such as `ulimit -f 64; umask 077;` run before `exec`.
pub fn child_command(name: &str, env: &[(&str, &str)], shell: Option<&str>) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let args = ["--exact", name, "--nocapture", "--test-threads=1"];
    let mut cmd = match shell {
        None => {
            let mut cmd = Command::new(exe);
            cmd.args(args);
            cmd
        }
        Some(prefix) => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!(r#"{prefix} exec "$0" "$@""#))
                .arg(exe)
                .args(args);
            cmd
        }
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Spawns [`child_command`] with its stdout piped to the caller.
pub fn spawn_piped(name: &str, env: &[(&str, &str)]) -> std::io::Result<KillOnDrop> {
    child_command(name, env, None)
        .stdout(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
}

/// Kills and reaps the child if the test fails before it does.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            if let Err(e) = self.0.kill() {
                eprintln!("could not kill child {}: {e}", self.0.id());
            }
            if let Err(e) = self.0.wait() {
                eprintln!("could not reap child {}: {e}", self.0.id());
            }
        }
    }
}

/// Prints one figure of a suite: `figure <suite> <name>=<value>` (collected by `cargo xtask
/// soak` and quoted in `docs/reliability.md`).
pub fn figure(suite: &str, name: &str, value: impl std::fmt::Display) {
    eprintln!("figure {suite} {name}={value}");
}

/// A count from the environment (`default` when unset or unparsable).
pub fn env_count(env: &str, default: u64) -> u64 {
    std::env::var(env)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
