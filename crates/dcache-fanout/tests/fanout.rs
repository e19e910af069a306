//! FanoutCache: python's shard choice, timeout contract, bulk operations and sub-collections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Update};
use dcache_fanout::{Error, FanoutCache};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn fanout_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<FanoutCache>();
}

#[test]
fn shards_are_pythons() -> TestResult {
    let cache = FanoutCache::temp()?;
    assert_eq!(cache.shard_count(), 8);
    // Vectors from python's Disk.hash % 8.
    assert_eq!(cache.shard_of("key")?, 42_402_122 % 8);
    assert_eq!(cache.shard_of(&b"key"[..])?, 42_402_122 % 8);
    assert_eq!(cache.shard_of("h\u{e9}llo")?, 192_152_348 % 8);
    assert_eq!(cache.shard_of(-1)?, 4_294_967_294 % 8);
    assert_eq!(cache.shard_of(i64::MAX)?, 2_147_483_647 % 8);
    assert_eq!(cache.shard_of(i64::MIN)?, 2_147_483_647 % 8);
    assert_eq!(cache.shard_of(1.0)?, 143_655_216 % 8);
    assert_eq!(cache.shard_of(1.5)?, 147_325_240 % 8);
    // The entry really lives in that shard.
    cache.set("key", 1)?;
    assert_eq!(cache.shards()[2].get::<i64>("key")?, Some(1));
    assert!(cache.directory().join("002").join("cache.db").exists());
    Ok(())
}

#[test]
fn size_limit_is_split_and_the_shard_count_is_found() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let cache = FanoutCache::open(dir.path())?;
        assert_eq!(
            cache.settings().size_limit,
            1 << 27,
            "2^30 / 8, python's default"
        );
    }
    {
        let cache = FanoutCache::builder()
            .size_limit(1 << 20)
            .open(dir.path())?;
        assert_eq!(cache.settings().size_limit, (1 << 20) / 8);
    }
    // Reopened without a size: the stored limit stays.
    assert_eq!(
        FanoutCache::open(dir.path())?.settings().size_limit,
        (1 << 20) / 8
    );
    // The count is the caller's: an 8-shard directory opened with 4 is refused, not re-sharded.
    let err = FanoutCache::builder()
        .shards(4)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShardCountMismatch {
                found: 8,
                highest: 7,
                requested: 4,
                ..
            }
        ),
        "{err}"
    );
    let other = tempfile::tempdir()?;
    let three = FanoutCache::builder().shards(3).open(other.path())?;
    assert_eq!(three.shard_count(), 3);
    for i in 0..30 {
        three.set(i, i)?;
    }
    assert_eq!(dcache_fanout::detect_shards(other.path())?, 3);
    // Opened with python's default count, the 3-shard directory holding entries does not
    // grow 5 shards (empty shards would be completed: python creates them one by one).
    assert!(matches!(
        FanoutCache::open(other.path()),
        Err(Error::ShardMissing { .. })
    ));
    assert!(!other.path().join("003").exists(), "re-sharded");
    assert!(matches!(
        FanoutCache::builder()
            .shards(0)
            .open(tempfile::tempdir()?.path()),
        Err(Error::NoShards)
    ));
    Ok(())
}

/// A FanoutCache of 4 shards with entries in every shard, and its keys.
fn filled(dir: &std::path::Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let cache = FanoutCache::builder().shards(4).open(dir)?;
    let keys: Vec<String> = (0..64).map(|i| format!("key-{i}")).collect();
    for k in &keys {
        cache.set(k.as_str(), k.as_str())?;
    }
    for shard in cache.shards() {
        assert!(!shard.is_empty()?, "every shard holds entries");
    }
    Ok(keys)
}

#[test]
fn a_removed_or_replaced_shard_is_refused_never_re_sharded() -> TestResult {
    // The last shard removed: opening with the right count refuses (its keys are gone), and
    // nothing is created.
    let dir = tempfile::tempdir()?;
    filled(dir.path())?;
    std::fs::remove_dir_all(dir.path().join("003"))?;
    let err = FanoutCache::builder()
        .shards(4)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&err, Error::ShardMissing { missing, .. } if missing == "003"),
        "{err:?}"
    );
    assert!(err.to_string().contains("restore"), "{err}");
    assert!(!dir.path().join("003").exists());
    assert!(matches!(
        dcache_fanout::detect_shards(dir.path()),
        Err(Error::ShardLayout { .. }) | Ok(3)
    ));
    // A file in place of a shard.
    let dir = tempfile::tempdir()?;
    filled(dir.path())?;
    std::fs::remove_dir_all(dir.path().join("001"))?;
    std::fs::write(dir.path().join("001"), b"not a shard")?;
    let err = FanoutCache::builder()
        .shards(4)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&err, Error::ShardNotADirectory { kind: "a file", .. }),
        "{err:?}"
    );
    assert!(matches!(
        dcache_fanout::detect_shards(dir.path()),
        Err(Error::ShardNotADirectory { .. })
    ));
    // A stray numbered directory beyond the count.
    let dir = tempfile::tempdir()?;
    let keys = filled(dir.path())?;
    std::fs::create_dir(dir.path().join("004"))?;
    let err = FanoutCache::builder()
        .shards(4)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::ShardCountMismatch {
                found: 5,
                requested: 4,
                ..
            }
        ),
        "{err:?}"
    );
    // Moved away again, every key is where it was.
    std::fs::remove_dir(dir.path().join("004"))?;
    let cache = FanoutCache::builder().shards(4).open(dir.path())?;
    for k in &keys {
        assert_eq!(
            cache.get::<String>(k.as_str())?.as_deref(),
            Some(k.as_str())
        );
    }
    Ok(())
}

#[test]
fn a_directory_still_being_created_is_completed() -> TestResult {
    // python creates its shards one by one: an opener that arrives after 000-002 exist (empty)
    // creates the rest, and both agree on 8 shards.
    let dir = tempfile::tempdir()?;
    for n in 0..3 {
        dcache_core::Cache::open(dir.path().join(format!("{n:03}")))?;
    }
    std::fs::create_dir(dir.path().join("003"))?; // made, its database not yet
    let cache = FanoutCache::open(dir.path())?;
    assert_eq!(cache.shard_count(), 8);
    cache.set("k", 1)?;
    assert_eq!(dcache_fanout::detect_shards(dir.path())?, 8);
    Ok(())
}

#[test]
fn a_shard_removed_under_a_live_fanout_cache_refuses_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = FanoutCache::builder().shards(2).open(dir.path())?;
    for i in 0..20 {
        cache.set(i, i)?;
    }
    std::fs::remove_dir_all(dir.path().join("001"))?;
    let on_removed = (0..100i64)
        .find(|i| cache.shard_of(*i).ok() == Some(1))
        .expect("a key of shard 1");
    let err = cache.set(on_removed, 1).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Cache(dcache_core::Error::FileReplaced {
                what: "deleted",
                ..
            })
        ),
        "{err:?}"
    );
    // The other shard goes on.
    let on_kept = (0..100i64)
        .find(|i| cache.shard_of(*i).ok() == Some(0))
        .expect("a key of shard 0");
    assert!(cache.set(on_kept, 7)?);
    Ok(())
}

#[test]
fn a_size_limit_setting_is_the_total_and_a_bad_one_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let real = FanoutCache::builder()
        .shards(4)
        .setting("size_limit", 4096.0)
        .open(dir.path().join("real"))?;
    assert_eq!(real.settings().size_limit, 1024);
    let negative = FanoutCache::builder()
        .shards(4)
        .setting("size_limit", -1i64)
        .open(dir.path().join("negative"));
    assert!(
        negative.is_err(),
        "a negative size limit must not fall back to the default"
    );
    Ok(())
}

#[test]
fn python_reads_real_size_limits() -> TestResult {
    // python's FanoutCache stores size_limit as REAL (134217728.0): dcache accepts it.
    let dir = tempfile::tempdir()?;
    drop(FanoutCache::open(dir.path())?);
    for n in 0..8 {
        let conn = rusqlite::Connection::open(dir.path().join(format!("{n:03}/cache.db")))?;
        conn.execute(
            "UPDATE Settings SET value = 134217728.0 WHERE key = 'size_limit'",
            [],
        )?;
    }
    assert_eq!(
        FanoutCache::open(dir.path())?.settings().size_limit,
        134_217_728
    );
    // With 3 shards python stores a fraction (2**30 / 3): read as the bytes below it.
    let dir = tempfile::tempdir()?;
    drop(FanoutCache::builder().shards(3).open(dir.path())?);
    for n in 0..3 {
        let conn = rusqlite::Connection::open(dir.path().join(format!("{n:03}/cache.db")))?;
        conn.execute(
            "UPDATE Settings SET value = 357913941.3333333 WHERE key = 'size_limit'",
            [],
        )?;
    }
    let cache = FanoutCache::builder().shards(3).open(dir.path())?;
    assert_eq!(cache.shards()[0].settings().size_limit, 357_913_941);
    assert!(cache.set("k", 1)?);
    Ok(())
}

/// The shard hash of a key as python's `Disk.hash` computes it for a pickled key.
fn python_shard(pickle: Vec<u8>, shards: u32) -> u32 {
    let key = dcache_core::disk::DbKey {
        value: dcache_core::disk::SqlValue::Blob(pickle),
        raw: false,
    };
    dcache_core::disk::python_hash(&key) % shards
}

#[test]
fn structured_keys_are_hashed_with_the_directorys_stored_pickle_protocol() -> TestResult {
    // python 3.7's diskcache stores `disk_pickle_protocol = 4`; python picks a shard with the
    // first shard's disk, which pickles with the stored protocol, not the default 5.
    let dir = tempfile::tempdir()?;
    FanoutCache::builder()
        .setting("disk_pickle_protocol", 4i64)
        .open(dir.path())?;
    let reopened = FanoutCache::open(dir.path())?;
    let mut discriminating = 0;
    for n in 0..20i64 {
        let key = ("user", n);
        let with_4 = python_shard(dcache_core::disk::pickle::to_vec(&key, 4)?, 8);
        let with_5 = python_shard(dcache_core::disk::pickle::to_vec(&key, 5)?, 8);
        discriminating += usize::from(with_4 != with_5);
        assert_eq!(reopened.shard_of(key)? as u32, with_4, "key {key:?}");
        reopened.set(key, n)?;
        assert_eq!(reopened.shards()[with_4 as usize].get::<i64>(key)?, Some(n));
    }
    assert!(discriminating > 0, "no key tells the protocols apart");
    Ok(())
}

#[test]
fn every_cache_operation_routes_to_the_key_shard() -> TestResult {
    let cache = FanoutCache::temp()?;
    for n in 0..100i64 {
        assert!(cache.set_with(
            n,
            n,
            SetOptions::new().tag(if n % 2 == 0 { "even" } else { "odd" })
        )?);
    }
    assert_eq!(cache.len()?, 100);
    assert_eq!(cache.get::<i64>(42)?, Some(42));
    assert!(cache.contains(42)?);
    assert!(!cache.add(42, 0)?);
    assert!(cache.add(1000, 0)?);
    assert_eq!(cache.incr(1000, 5)?, Some(5));
    assert_eq!(cache.decr(1000, 2)?, Some(3));
    assert!(cache.touch(1000, Some(Duration::from_secs(60)))?);
    assert!(cache.get_entry::<i64>(1000)?.unwrap().expire_time.is_some());
    assert_eq!(cache.pop::<i64>(1000)?, Some(3));
    assert!(cache.delete(99)?);
    assert!(!cache.delete(99)?);
    let mut keys: Vec<i64> = cache.keys().collect::<Result<_, _>>()?;
    assert_eq!(keys.len(), 99);
    let mut rev: Vec<i64> = cache.keys_rev().collect::<Result<_, _>>()?;
    rev.reverse();
    assert_eq!(keys, rev);
    keys.sort_unstable();
    assert_eq!(keys, (0..99).collect::<Vec<_>>());
    assert_eq!(cache.evict("even")?, 50);
    assert_eq!(cache.len()?, 49);
    assert_eq!(cache.clear()?, 49);
    assert!(cache.is_empty()?);
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn iteration_goes_shard_by_shard() -> TestResult {
    let cache = FanoutCache::temp()?;
    for n in 0..40i64 {
        cache.set(n, 0)?;
    }
    let keys: Vec<i64> = cache.keys().collect::<Result<_, _>>()?;
    let shards: Vec<usize> = keys
        .iter()
        .map(|k| cache.shard_of(k))
        .collect::<Result<_, _>>()?;
    assert!(
        shards.windows(2).all(|w| w[0] <= w[1]),
        "shard 0 first: {shards:?}"
    );
    Ok(())
}

#[test]
fn stats_volume_expire_cull_and_reset_cover_all_shards() -> TestResult {
    let clock = Arc::new(dcache_core::ManualClock::default());
    let cache = FanoutCache::builder().clock(clock.clone()).open_temp()?;
    cache.stats(true, true)?;
    for n in 0..20i64 {
        cache.set_with(n, n, SetOptions::new().expire(Duration::from_secs(1)))?;
    }
    for n in 0..20i64 {
        cache.get::<i64>(n)?;
    }
    cache.get::<i64>(1000)?;
    let stats = cache.stats(false, false)?;
    assert_eq!((stats.hits, stats.misses), (20, 1));
    assert!(cache.volume()? > 0);
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.expire()?, 20);
    cache.reset("cull_limit", 0)?;
    assert!(cache.shards().iter().all(|s| s.settings().cull_limit == 0));
    cache.create_tag_index()?;
    assert!(cache.settings().tag_index);
    cache.drop_tag_index()?;
    assert_eq!(cache.cull()?, 0);
    Ok(())
}

/// Holds shard `n`'s write lock from another connection, as another process would.
fn hold_shard(cache: &FanoutCache, n: usize) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open(cache.directory().join(format!("{n:03}/cache.db"))).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

#[test]
fn a_busy_shard_turns_writes_into_false_and_reads_into_misses() -> TestResult {
    let cache = FanoutCache::builder()
        .statistics(true)
        .timeout(Duration::from_millis(5))
        .open_temp()?;
    cache.set("key", 1)?;
    cache.set_with("tagged", "x", SetOptions::new().tag("t"))?;
    let shard = cache.shard_of("key")?;
    let other = (0..100)
        .find(|n| cache.shard_of(n).unwrap() != shard)
        .unwrap();
    let same = (0..100)
        .find(|n| cache.shard_of(n).unwrap() == shard)
        .unwrap();
    let blocker = hold_shard(&cache, shard);
    assert!(!cache.set("key", 2)?, "set returns false on a busy shard");
    assert!(!cache.add(same, 2)?);
    assert!(!cache.delete("key")?);
    assert!(!cache.touch("key", None)?);
    assert_eq!(
        cache.get::<i64>("key")?,
        None,
        "statistics make get write: busy means a miss"
    );
    assert_eq!(cache.pop::<i64>("key")?, None);
    assert_eq!(cache.incr("key", 1)?, None);
    // Other shards are unaffected.
    assert!(cache.set(other, 1)?);
    // A retrying handle waits until the shard frees up.
    let retrying = cache.retrying();
    let waiter = std::thread::spawn(move || retrying.set("key", 3));
    std::thread::sleep(Duration::from_millis(50));
    blocker.execute_batch("COMMIT")?;
    assert!(waiter.join().unwrap()?);
    assert_eq!(cache.get::<i64>("key")?, Some(3));
    // Bulk operations wait for busy shards and return the total.
    let blocker = hold_shard(&cache, shard);
    let bulk = cache.clone();
    let clearing = std::thread::spawn(move || bulk.clear());
    std::thread::sleep(Duration::from_millis(50));
    blocker.execute_batch("COMMIT")?;
    assert_eq!(clearing.join().unwrap()?, 3);
    Ok(())
}

#[test]
fn only_timeouts_turn_into_misses() -> TestResult {
    let cache = FanoutCache::temp()?;
    cache.set("text", "not a number")?;
    assert!(matches!(
        cache.get::<i64>("text"),
        Err(Error::Cache(dcache_core::Error::Disk(_)))
    ));
    assert!(matches!(
        cache.incr("text", 1),
        Err(Error::Cache(dcache_core::Error::NotAnInteger { .. }))
    ));
    assert!(matches!(cache.set(f64::NAN, 1), Err(Error::Cache(_))));
    Ok(())
}

#[test]
fn sixteen_threads_adding_a_thousand_keys_win_exactly_once_each() -> TestResult {
    let cache = FanoutCache::temp()?.retrying();
    let barrier = Arc::new(Barrier::new(16));
    let wins = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (cache, barrier, wins) = (cache.clone(), barrier.clone(), wins.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                barrier.wait();
                for key in 0..1000i64 {
                    if cache.add(key, "value")? {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    assert_eq!(wins.load(Ordering::SeqCst), 1000);
    Ok(())
}

#[test]
fn sixteen_threads_incrementing_with_a_tiny_timeout_and_retry_are_exact() -> TestResult {
    let cache = FanoutCache::builder()
        .timeout(Duration::from_millis(1))
        .open_temp()?
        .retrying();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || -> Result<(), Error> {
                for _ in 0..50 {
                    assert!(
                        cache.incr("counter", 1)?.is_some(),
                        "a retrying incr never gives up"
                    );
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    assert_eq!(cache.get::<i64>("counter")?, Some(800));
    Ok(())
}

const CHILD_ENV: &str = "DCACHE_TEST_FANOUT_CHILD";

#[test]
fn two_processes_hammering_different_keys() -> TestResult {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (dir, id) = spec.split_once('|').unwrap();
        let cache = FanoutCache::open(dir)?.retrying();
        for n in 0..500i64 {
            cache.set((id, n), n)?;
            cache.incr(("sum", id), n)?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|id| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "two_processes_hammering_different_keys",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{path}|{id}"))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait()?.success());
    }
    let cache = FanoutCache::open(dir.path())?;
    assert_eq!(cache.len()?, 1002);
    for id in ["a", "b"] {
        assert_eq!(cache.get::<i64>(("sum", id))?, Some((0..500).sum()));
        assert_eq!(cache.get::<i64>((id, 499))?, Some(499));
    }
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn transact_spans_every_shard() -> TestResult {
    let cache = FanoutCache::temp()?;
    let result: Result<(), Error> = cache.transact(|c| {
        for n in 0..50i64 {
            c.set(n, n)?;
        }
        Err(Error::NoShards)
    });
    assert!(result.is_err());
    assert!(cache.is_empty()?, "rolled back in every shard");
    cache.transact(|c| -> Result<(), Error> {
        for n in 0..50i64 {
            assert!(c.set(n, n)?);
        }
        Ok(())
    })?;
    assert_eq!(cache.len()?, 50);
    Ok(())
}

#[test]
fn storage_and_memoize_work_on_a_fanout_cache() -> TestResult {
    let cache = FanoutCache::temp()?;
    let total = Storage::update(
        &cache,
        "avg",
        SetOptions::new(),
        |cur: Option<(f64, u64)>| {
            let (t, n) = cur.unwrap_or((0.0, 0));
            (Update::Set((t + 2.0, n + 1)), t + 2.0)
        },
    )?;
    assert!((total - 2.0).abs() < f64::EPSILON);
    assert!(Storage::add(&cache, "lock", &(), SetOptions::new())?);
    assert!(!Storage::add(&cache, "lock", &(), SetOptions::new())?);
    let m = cache.memoize("square");
    let mut calls = 0;
    for _ in 0..3 {
        let v: i64 = m.call(&(9,), || -> dcache_core::Result<i64> {
            calls += 1;
            Ok(81)
        })?;
        assert_eq!(v, 81);
    }
    assert_eq!(calls, 1);
    Ok(())
}

#[test]
fn sub_caches_are_shared_per_name_and_names_are_checked() -> TestResult {
    let cache = FanoutCache::temp()?;
    let a = cache.cache("users/active")?;
    a.set("ada", 1)?;
    assert!(
        cache
            .directory()
            .join("cache/users/active/cache.db")
            .exists()
    );
    assert_eq!(cache.cache("users/active")?.get::<i64>("ada")?, Some(1));
    assert_eq!(a.timeout(), dcache_core::DEFAULT_TIMEOUT);
    for bad in ["", "../x", "/etc", "a//b", "a/./b", "a\\b"] {
        assert!(
            matches!(cache.cache(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    // Sub-collections are not shards.
    assert_eq!(FanoutCache::open(cache.directory())?.shard_count(), 8);
    Ok(())
}

#[test]
fn deques_and_indexes_live_in_their_subdirectories_and_are_shared() -> TestResult {
    let cache = FanoutCache::temp()?;
    let jobs = cache.deque::<String>("jobs")?;
    jobs.append("build")?;
    jobs.append("test")?;
    assert!(cache.directory().join("deque/jobs/cache.db").exists());
    let other = cache.deque::<String>("jobs")?;
    assert_eq!(other.len()?, 2, "same deque per name");
    assert_eq!(other.popleft()?, "build");
    let bounded = cache.deque_with_maxlen::<String>("jobs", Some(1))?;
    bounded.append("deploy")?;
    assert_eq!(jobs.len()?, 1, "maxlen trims, per handle");
    assert_eq!(jobs.peek()?, "deploy");
    assert_eq!(
        cache.cache("x")?.settings().eviction_policy,
        dcache_core::EvictionPolicy::LeastRecentlyStored
    );
    assert_eq!(
        jobs.cache().settings().eviction_policy,
        dcache_core::EvictionPolicy::None,
        "collections never evict"
    );
    let users = cache.index::<String, u32>("users/active")?;
    users.insert("ada", &36)?;
    users.insert("grace", &45)?;
    assert_eq!(
        cache.index::<String, u32>("users/active")?.get("grace")?,
        Some(45)
    );
    assert!(
        cache
            .directory()
            .join("index/users/active/cache.db")
            .exists()
    );
    assert!(matches!(
        cache.index::<String, u32>("../escape"),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        cache.deque::<String>(""),
        Err(Error::InvalidName { .. })
    ));
    Ok(())
}

#[test]
fn check_with_zero_grace_removes_orphans_in_every_shard() -> TestResult {
    let cache = FanoutCache::temp()?;
    cache.set("k", 1)?;
    for n in [0, 5] {
        std::fs::write(cache.directory().join(format!("{n:03}/orphan.val")), b"x")?;
    }
    assert_eq!(
        cache.check(true)?.len(),
        2,
        "young orphans are reported, not removed"
    );
    assert_eq!(cache.check_with(true, Duration::ZERO)?.len(), 2);
    assert!(cache.check(false)?.is_empty());
    assert_eq!(cache.get::<i64>("k")?, Some(1));
    Ok(())
}
