//! A throttle shared by threads (and processes, through the same cache): at most 10 calls per
//! 100 ms however many callers there are. Three threads make 30 calls between them: the first
//! 10 go at once (the bucket starts full), the other 20 at the throttle's rate.
//!
//! `cargo run -p dcache --example throttle`

use std::time::{Duration, Instant};

use dcache::{Cache, EvictionPolicy, Throttle};

fn main() -> dcache::Result<()> {
    let cache = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open_temp()?;
    let throttle = Throttle::new(cache.clone(), "api", 10, Duration::from_millis(100))?;
    let started = Instant::now();
    std::thread::scope(|s| -> dcache::Result<()> {
        let callers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| -> dcache::Result<()> {
                    for _ in 0..10 {
                        throttle.wait()?; // sleeps until a call is allowed
                        cache.incr("calls", 1)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for caller in callers {
            caller.join().expect("caller thread")?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    let calls = cache.get::<i64>("calls")?.unwrap_or(0);
    println!("{calls} calls through a throttle of 10 per 100 ms took {elapsed:?}");
    // 20 calls beyond the first 10 need at least 200 ms at 10 per 100 ms.
    assert_eq!(calls, 30);
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    Ok(())
}
