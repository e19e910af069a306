//! A lock between processes: four worker processes each add 1 to a counter 50 times with a
//! plain read-then-write, which loses updates without the lock. Every acquisition also gets a
//! fencing token, larger than any before it, for a resource that must refuse late writers.
//!
//! `cargo run -p dcache --example lock_processes`

use std::process::Command;
use std::time::Duration;

use dcache::{Cache, EvictionPolicy, Lock};

const WORKERS: usize = 4;
const ROUNDS: i64 = 50;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--worker") {
        let dir = args.next().ok_or("--worker DIR")?;
        return Ok(worker(&dir)?);
    }
    // A cache that never evicts: a lock's key must not be culled while it is held.
    let cache = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open_temp()?;
    let dir = cache.directory().to_str().ok_or("a UTF-8 temporary path")?;
    let me = std::env::current_exe()?;
    let children = (0..WORKERS)
        .map(|_| Command::new(&me).args(["--worker", dir]).spawn())
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a worker failed");
    }
    let counter = cache.get::<i64>("counter")?.unwrap_or(0);
    let last_token = cache.get::<i64>("last-token")?.unwrap_or(0);
    println!("{WORKERS} processes x {ROUNDS} locked increments: counter = {counter}");
    println!("the last writer's fencing token: {last_token}");
    assert_eq!(counter, WORKERS as i64 * ROUNDS, "no update lost");
    Ok(())
}

/// One worker process: read, add 1, write, under the lock.
fn worker(dir: &str) -> dcache::Result<()> {
    let cache = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir)?;
    // The lease ends on its own if this process dies holding it.
    let lock = Lock::new(cache.clone(), "counter-lock").expire(Duration::from_secs(30));
    for _ in 0..ROUNDS {
        let guard = lock.acquire()?;
        let token = guard.fencing_token() as i64;
        let n = cache.get::<i64>("counter")?.unwrap_or(0);
        cache.set("counter", n + 1)?;
        // A resource guarded by tokens keeps the largest it has seen and refuses smaller ones.
        let seen = cache.get::<i64>("last-token")?.unwrap_or(0);
        assert!(token > seen, "tokens only grow: {token} after {seen}");
        cache.set("last-token", token)?;
        guard.unlock()?;
    }
    Ok(())
}
