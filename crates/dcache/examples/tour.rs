//! A runnable tour of dcache: every capability, with what each step does.
//!
//! Run it with `cargo run --release --example tour --all-features`.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use dcache::CheckMode;
use dcache::{
    Averager, Barrier, BoundedSemaphore, Cache, Deque, EvictionPolicy, Index, JsonDisk, Lock,
    MemoizeStampede, MsgpackDisk, PushOptions, RLock, SetOptions, Side, Storage, Throttle, Update,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct User {
    name: String,
    langs: Vec<String>,
    admin: bool,
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join(format!("dcache-tour-{}", std::process::id()));
    let started = Instant::now();

    step("Open a cache directory (created on first use, shared by every process that opens it)");
    let cache = Cache::open(root.join("cache"))?;
    println!(
        "opened {} with settings {:?}",
        cache.directory().display(),
        cache.settings().eviction_policy
    );

    step(
        "Set and get: strings, bytes, integers and floats are stored natively, as python stores them",
    );
    cache.set("greeting", "hello, world")?;
    cache.set(&b"raw-key"[..], &b"\x00\x01\x02"[..])?;
    cache.set(42, 3.5)?;
    println!("greeting = {:?}", cache.get::<String>("greeting")?);
    println!("raw-key  = {:?}", cache.get::<Vec<u8>>(&b"raw-key"[..])?);
    println!("42       = {:?}", cache.get::<f64>(42)?);

    step("Structured values are pickled: python reads this struct as a dict");
    let ada = User {
        name: "Ada".into(),
        langs: vec!["analytical engine".into()],
        admin: true,
    };
    cache.set(("user", 1), &ada)?;
    println!("('user', 1) = {:?}", cache.get::<User>(("user", 1))?);

    step("Reading a value as the wrong type is a typed error, not a panic");
    match cache.get::<i64>("greeting") {
        Err(e) => println!("get::<i64>(\"greeting\") -> {e}"),
        Ok(v) => println!("unexpected {v:?}"),
    }

    step("Expiry and tags");
    cache.set_with(
        "session",
        "token",
        SetOptions::new()
            .expire(Duration::from_millis(200))
            .tag("web"),
    )?;
    let entry = cache.get_entry::<String>("session")?.expect("just set");
    // Times are `SystemTime`s: shown here as the time left and as Unix seconds (python's
    // `expire_time`), never as the debug form.
    let expires = entry.expire_time.map_or_else(
        || "never".to_owned(),
        |t| {
            let left = t
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            format!(
                "in {} ms (expire_time {:.3})",
                left.as_millis(),
                dcache::cache::unix_seconds(t)
            )
        },
    );
    let tag = entry
        .tag
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    println!("session expires {expires}, tag {tag}");
    std::thread::sleep(Duration::from_millis(250));
    println!(
        "after 250 ms: {:?} (expired entries are misses)",
        cache.get::<String>("session")?
    );

    step("add only writes when the key is absent; incr and decr are atomic");
    println!(
        "add(\"once\") -> {}, again -> {}",
        cache.add("once", 1)?,
        cache.add("once", 2)?
    );
    cache.incr("hits", 10)?;
    println!("hits = {}", cache.decr("hits", 3)?);

    step("Transactions: all or nothing, readers never blocked");
    let result: Result<(), dcache::cache::Error> = cache.transact(|c| {
        c.set("a", 1)?;
        c.set("b", 2)?;
        Err(dcache::cache::Error::KeyNotFound) // abort
    });
    println!(
        "aborted transaction: {:?}; a = {:?}",
        result.err().map(|e| e.to_string()),
        cache.get::<i64>("a")?
    );
    cache.transact(|c| {
        c.set("a", 1)?;
        c.set("b", 2)
    })?;
    println!(
        "committed: a = {:?}, b = {:?}",
        cache.get::<i64>("a")?,
        cache.get::<i64>("b")?
    );

    step("Large values go to files and can be streamed in and out in bounded memory");
    let big = vec![7u8; 5 << 20];
    cache.set_reader("big", &mut &big[..], SetOptions::new())?;
    let mut reader = cache.read("big")?.expect("just set");
    let mut buf = [0u8; 4];
    reader.read_exact(&mut buf)?;
    println!(
        "streamed the first bytes of a 5 MiB value: {buf:?}; whole value via get_bytes: {} bytes",
        cache.get_bytes("big")?.map_or(0, |b| b.len())
    );

    step("Queues: push and pull with python's key scheme");
    for job in ["build", "test", "deploy"] {
        let key = cache.push_with(job, PushOptions::new().prefix("jobs"))?;
        println!("pushed {job:>6} as {key}");
    }
    while let Some((key, job)) = cache.pull::<String>(Some("jobs"), Side::Front)? {
        println!("pulled {key} = {}", job.value);
    }

    step("Deque: a persistent double-ended queue, python's Deque on the same files");
    let jobs: Deque<String> = Deque::open(root.join("deque"))?;
    jobs.extend(["build", "test", "deploy"].map(String::from))?;
    jobs.push_front("fetch")?;
    println!("jobs: {:?}", jobs.iter().collect::<Result<Vec<_>, _>>()?);
    jobs.rotate(1)?; // the last element moves to the front, in one transaction
    println!(
        "after rotate(1): first {:?}, last {:?} (negative indexes count from the back)",
        jobs.get(0)?,
        jobs.get(-1)?
    );
    println!(
        "popleft -> {:?}; pop -> {:?}; {} left",
        jobs.pop_front()?,
        jobs.pop_back()?,
        jobs.len()?
    );
    let recent = jobs.clone().with_maxlen(Some(2))?; // maxlen belongs to the handle
    recent.push_back("release")?;
    println!(
        "a handle with maxlen 2 keeps the newest: {:?}",
        jobs.iter().collect::<Result<Vec<_>, _>>()?
    );
    // Past the end is `None`, as `VecDeque::get` (python raises IndexError).
    println!("get(10) -> {:?}", jobs.get(10)?);

    step("Index: a persistent mapping in insertion order, python's Index on the same files");
    let users: Index<String, User> = Index::open(root.join("index"))?;
    users.insert("ada", ada.clone())?; // values go in by value, keys by reference
    let grace = User {
        name: "Grace".into(),
        langs: vec!["COBOL".into()],
        admin: false,
    };
    users.insert("grace", grace.clone())?;
    users.insert("ada", ada.clone())?; // overwriting keeps the place
    let names: Vec<String> = users.keys().collect::<Result<_, _>>()?;
    println!("keys in insertion order: {names:?}");
    println!(
        "get(\"grace\") = {:?}",
        users.get("grace")?.map(|u| u.langs)
    );
    println!(
        "pop_item(Side::Back) -> {:?}; setdefault keeps an existing value: {:?}",
        users.pop_item(Side::Back)?.map(|(k, _)| k),
        users.setdefault("ada", grace)?.name
    );

    step("Iteration in insertion order, in pages (no connection held between pages)");
    let keys: Vec<dcache::Value> = cache.keys()?.collect::<Result<_, _>>()?;
    println!(
        "{} keys, first five: {}",
        keys.len(),
        keys.iter()
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    step("Memoize: results cached by argument, errors not cached");
    let slow_square = cache.memoize("slow_square");
    for _ in 0..2 {
        let t = Instant::now();
        let v: u64 = slow_square.call(&(12u64,), || -> dcache::cache::Result<u64> {
            std::thread::sleep(Duration::from_millis(50));
            Ok(144)
        })?;
        println!("slow_square(12) = {v} in {:?}", t.elapsed());
    }

    step("The Storage trait: an atomic read-modify-write, the basis of locks and recipes");
    let avg = Storage::update(
        &cache,
        "avg",
        SetOptions::new(),
        |cur: Option<(f64, u64)>| {
            let (total, n) = cur.unwrap_or((0.0, 0));
            (
                (Update::Set((total + 4.0, n + 1))),
                (total + 4.0) / (n + 1) as f64,
            )
        },
    )?;
    println!("running average = {avg}");

    step(
        "Locks, semaphores and averages shared by threads and processes (python's recipes, same keys)",
    );
    // A cache that never evicts, so no lock key can be culled while held.
    let sync = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(root.join("sync"))?;
    let lock = Lock::new(sync.clone(), "report").expire(Duration::from_secs(60));
    std::thread::scope(|s| -> Result<(), dcache::sync::Error> {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> Result<(), dcache::sync::Error> {
                    for _ in 0..25 {
                        let _guard = lock.acquire()?; // released when the guard drops
                        let n = sync.get::<i64>("pages")?.unwrap_or(0);
                        sync.set("pages", n + 1)?; // a plain read-modify-write, made safe
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker thread")?;
        }
        Ok(())
    })?;
    println!(
        "4 threads x 25 locked increments: pages = {:?}",
        sync.get::<i64>("pages")?
    );
    let held = lock.acquire()?;
    match lock.acquire_timeout(Duration::from_millis(20)) {
        Err(e) => println!("a second acquire with a timeout: {e}"),
        Ok(_) => println!("unexpected: acquired twice"),
    }
    held.unlock()?;
    let rlock = RLock::new(sync.clone(), "user-123");
    let outer = rlock.acquire()?;
    let inner = rlock.acquire()?; // re-entrant for this thread
    println!("rlock owner and depth: {:?}", rlock.owner()?);
    drop((inner, outer));
    let semaphore = BoundedSemaphore::new(sync.clone(), "connections", 2);
    let permit = semaphore.acquire()?;
    println!(
        "semaphore of 2 with one permit out: {} free",
        semaphore.available()?
    );
    drop(permit);
    let latency = Averager::new(sync.clone(), "latency");
    for ms in [80.0, 120.0, 160.0] {
        latency.add(ms)?;
    }
    println!(
        "average latency {:?} ms, popped {:?}, then {:?}",
        latency.get()?,
        latency.pop()?,
        latency.get()?
    );

    step(
        "Recipes: a throttle, a barrier and stampede-proof memoization (python's recipes, same keys)",
    );
    // A token bucket shared by every thread and process: a burst of 20, then 100 calls a second.
    let throttle = Throttle::new(sync.clone(), "api", 20, Duration::from_millis(200))?;
    let throttled = Instant::now();
    for _ in 0..40 {
        throttle.wait()?;
    }
    println!(
        "40 calls through a throttle of 20 per 200 ms took {:?} (20 at once, then one per 10 ms)",
        throttled.elapsed()
    );
    // One call at a time across threads and processes.
    let barrier = Barrier::new(sync.clone(), "migration").expire(Duration::from_secs(60));
    let migrate = barrier.wrap(|step: u32| -> Result<u32, dcache::recipes::Error> {
        let n = sync.get::<i64>("migrated")?.unwrap_or(0);
        sync.set("migrated", n + 1)?; // serialized by the barrier
        Ok(step)
    });
    std::thread::scope(|s| -> Result<(), dcache::recipes::Error> {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let migrate = &migrate;
                s.spawn(move || (0..10).try_for_each(|i| migrate(t * 10 + i).map(drop)))
            })
            .collect();
        for w in workers {
            w.join().expect("worker thread")?;
        }
        Ok(())
    })?;
    drop(migrate);
    println!(
        "4 threads x 10 calls through a barrier: migrated = {:?}",
        sync.get::<i64>("migrated")?
    );
    // Results cached for a minute and recomputed in the background shortly before they expire,
    // so callers never all miss at once.
    let memo = MemoizeStampede::new(sync.clone(), "slow_square", Duration::from_secs(60));
    let slow_square = |&(n,): &(u64,)| -> Result<u64, dcache::recipes::Error> {
        std::thread::sleep(Duration::from_millis(50));
        Ok(n * n)
    };
    let computed = Instant::now();
    let first = memo.call((12,), slow_square)?;
    let computed = computed.elapsed();
    let cached = Instant::now();
    let second = memo.call((12,), slow_square)?;
    println!(
        "slow_square(12) = {first} computed in {computed:?}; again = {second} from the cache in {:?}",
        cached.elapsed()
    );
    // They compose: a throttled, memoized function (every call counts against the throttle).
    let lookup = Throttle::new(sync.clone(), "lookups", 100, Duration::from_secs(1))?.wrap(
        MemoizeStampede::new(sync.clone(), "lookup", Duration::from_secs(300)).wrap(
            |(user,): &(String,)| Ok::<_, dcache::recipes::Error>(format!("profile of {user}")),
        ),
    );
    println!(
        "throttled, memoized lookup: {}",
        lookup(("ada".to_owned(),))?
    );

    step("Eviction: a size limit and a policy; culling happens inside writes");
    let small = Cache::builder()
        .size_limit(1 << 20)
        .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
        .open(root.join("small"))?;
    for i in 0..64 {
        small.set(i, vec![0u8; 64 << 10])?;
    }
    println!(
        "wrote 64 x 64 KiB into a 1 MiB cache: {} entries, volume {} KiB",
        small.len()?,
        small.volume()? >> 10
    );
    println!(
        "cull() removed {} more; tag eviction and clear work the same way",
        small.cull()?
    );

    step("Statistics and consistency checks");
    cache.set_statistics(true)?;
    cache.get::<String>("greeting")?;
    cache.get::<String>("missing")?;
    println!("stats: {:?}", cache.stats()?); // reads; statistics stay on
    cache.reset_stats()?; // python's stats(reset=True)
    cache.set_statistics(false)?; // python's stats(enable=False)
    println!(
        "check(): {} findings",
        cache.check(CheckMode::Report)?.len()
    );

    step(
        "FanoutCache: keys spread over shards (python's choice), a busy shard is skipped, not waited for",
    );
    let fanout = dcache::FanoutCache::builder()
        .shards(4)
        .open(root.join("fanout"))?;
    for n in 0..1000 {
        fanout.set(n, n * 2)?;
    }
    println!(
        "{} entries in {} shards; key 7 lives in shard {:03}; get(7) = {:?}",
        fanout.len()?,
        fanout.shard_count(),
        fanout.shard_of(7)?,
        fanout.get::<i64>(7)?
    );
    let sessions = fanout.cache("sessions")?;
    sessions.set("ada", "logged in")?;
    println!(
        "sub-cache {} holds {} entry",
        sessions.directory().display(),
        sessions.len()?
    );

    step("Other disks: MessagePack for Rust-only caches, python's JSONDisk for JSON");
    let mp = Cache::builder()
        .disk(MsgpackDisk::new())
        .open(root.join("msgpack"))?;
    mp.set("ada", &ada)?;
    println!(
        "MsgpackDisk round trip: {:?}",
        mp.get::<User>("ada")?.map(|u| u.name)
    );
    let js = Cache::builder()
        .disk(JsonDisk::new())
        .open(root.join("json"))?;
    js.set(("k", 1), &ada)?;
    println!(
        "JsonDisk round trip: {:?}",
        js.get::<User>(("k", 1))?.map(|u| u.langs)
    );

    step("Done");
    println!(
        "tour finished in {:?}; removing {}",
        started.elapsed(),
        root.display()
    );
    drop((
        cache, small, mp, js, fanout, sessions, sync, jobs, recent, users,
    ));
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
