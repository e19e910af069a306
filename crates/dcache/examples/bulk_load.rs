//! A bulk load: 5,000 entries written one transaction each, then 5,000 more in transactions
//! of 500 (`transact`), which is what `dcache load` does. Each commit costs a write of SQLite's
//! log; batching shares it.
//!
//! `cargo run --release -p dcache --example bulk_load`

use std::time::Instant;

use dcache::Cache;

const N: u64 = 5_000;
const BATCH: u64 = 500;

fn main() -> dcache::Result<()> {
    let cache = Cache::temp()?;

    let started = Instant::now();
    for i in 0..N {
        cache.set(("one-by-one", i), format!("value {i}"))?;
    }
    let one_by_one = started.elapsed();

    let started = Instant::now();
    for chunk in 0..N / BATCH {
        cache.transact(|c| -> dcache::Result<()> {
            for i in chunk * BATCH..(chunk + 1) * BATCH {
                c.set(("batched", i), format!("value {i}"))?;
            }
            Ok(())
        })?;
    }
    let batched = started.elapsed();

    assert_eq!(cache.len()?, 2 * N);
    assert_eq!(
        cache.get::<String>(("batched", N - 1))?.as_deref(),
        Some(format!("value {}", N - 1).as_str())
    );
    println!("{N} sets one by one: {one_by_one:?}");
    println!("{N} sets in transactions of {BATCH}: {batched:?}");
    println!(
        "batched is {:.1}x faster",
        one_by_one.as_secs_f64() / batched.as_secs_f64()
    );
    Ok(())
}
