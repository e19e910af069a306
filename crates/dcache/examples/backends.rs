//! One service, two backends: the same code runs on a SQLite `Cache` (one host) and on a
//! Redis server (several hosts). Only the line that opens the store changes.
//!
//! ```text
//! cargo run --example backends                                   # SQLite, one host
//! cargo run --example backends -- redis://127.0.0.1:6379/        # Redis, any number of hosts
//! ```
//!
//! (The `dcache` facade re-exports the Redis store as `dcache::RedisStore` with its `redis`
//! feature; this example, built with the crate's dev-dependencies, names the
//! `dcache-redis` crate directly.)

use std::time::Duration;

use dcache::{BoundedSemaphore, EvictionPolicy, Lock, MemoizeStampede, Storage, Throttle};

/// The service: generic over the store, as every dcache lock and recipe is.
fn run_service<S: Storage>(store: &S) -> Result<(), Box<dyn std::error::Error>> {
    // One invoice run at a time across every worker; the lease frees itself if one crashes.
    let lock = Lock::new(store.clone(), "invoice-run").expire(Duration::from_secs(30));
    {
        let guard = lock.acquire()?;
        // Send the fencing token with every write made under the lock: the database refuses
        // a token smaller than the largest it has seen, so a worker whose lease expired
        // during a pause cannot overwrite a newer worker's result.
        println!("invoice run, fencing token {}", guard.fencing_token());
    }

    // At most 4 concurrent connections to the payment provider, across all workers.
    let connections = BoundedSemaphore::new(store.clone(), "payment-connections", 4)
        .expire(Duration::from_secs(60));
    let permit = connections.acquire()?;
    println!("{} payment connections left", connections.available()?);
    drop(permit);

    // At most 10 calls a second to the provider, in total.
    let throttle = Throttle::new(store.clone(), "payment-api", 10, Duration::from_secs(1))?;
    for i in 0..3 {
        throttle.call(|| -> Result<(), dcache::recipes::Error> {
            println!("payment API call {i}");
            Ok(())
        })?;
    }

    // An expensive report, computed by one worker and shared by all.
    let report = MemoizeStampede::new(store.clone(), "monthly-report", Duration::from_secs(300));
    let total: i64 = report.call((2026, 12), |&(year, month): &(i32, i32)| {
        Ok::<_, dcache::recipes::Error>(i64::from(year) * 100 + i64::from(month))
    })?;
    println!("report {total}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(url) = std::env::args().nth(1) {
        // Several hosts: every worker opens the same Redis server.
        let store = dcache_redis::RedisStore::builder(&url)
            .prefix("billing:")
            .open()?;
        println!("backend: Redis at {url}");
        run_service(&store)?;
        store.clear()?;
    } else {
        // One host: every process opens the same directory (never on a network file system).
        let dir = tempfile::tempdir()?;
        let store = dcache::Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir.path())?;
        println!("backend: SQLite in {}", dir.path().display());
        run_service(&store)?;
    }
    Ok(())
}
