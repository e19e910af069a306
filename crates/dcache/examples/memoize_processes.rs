//! Memoization shared by processes: a first worker process computes five expensive results;
//! three more, started after it, find every one of them in the cache and compute nothing.
//! (Processes asking for one missing result at the same moment may each compute it: use
//! `MemoizeStampede`, or a `Barrier` around the call, where that must not happen.)
//!
//! `cargo run -p dcache --example memoize_processes`

use std::process::Command;
use std::time::Duration;

use dcache::Cache;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--worker") {
        let dir = args.next().ok_or("--worker DIR")?;
        return Ok(worker(&dir)?);
    }
    let cache = Cache::temp()?;
    let dir = cache.directory().to_str().ok_or("a UTF-8 temporary path")?;
    let me = std::env::current_exe()?;
    let run = |n: usize| -> std::io::Result<()> {
        let children = (0..n)
            .map(|_| Command::new(&me).args(["--worker", dir]).spawn())
            .collect::<std::io::Result<Vec<_>>>()?;
        for mut child in children {
            assert!(child.wait()?.success(), "a worker failed");
        }
        Ok(())
    };
    run(1)?;
    let first = cache.get::<i64>("computations")?.unwrap_or(0);
    run(3)?;
    let total = cache.get::<i64>("computations")?.unwrap_or(0);
    println!(
        "the first process computed {first} results; three more processes computed {}",
        total - first
    );
    assert_eq!((first, total), (5, 5));
    Ok(())
}

/// One worker process: asks for the squares of 1 to 5, each slow to compute.
fn worker(dir: &str) -> dcache::Result<()> {
    let cache = Cache::open(dir)?;
    let square = cache.memoize("square");
    for n in 1..=5u64 {
        let value: u64 = square.call(&(n,), || -> dcache::Result<u64> {
            cache.incr("computations", 1)?;
            std::thread::sleep(Duration::from_millis(20)); // the expensive part
            Ok(n * n)
        })?;
        assert_eq!(value, n * n);
    }
    Ok(())
}
