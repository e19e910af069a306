//! python's FanoutCache and dcache's share one directory: same shards, keys, tags, expiry,
//! and concurrent writers from both sides lose nothing.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcache::CheckMode;
use dcache::{FanoutCache, SetOptions, Tag};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn python_fanout_entries_read_back_in_rust() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    let out = py.run(
        r"
import sys, time, diskcache
c = diskcache.FanoutCache(sys.argv[1])
for n in range(200):
    c.set(n, 'v%d' % n, tag='t%d' % (n % 3))
c.set('str-key', b'bytes', expire=3600)
c.set(b'bytes-key', 1.5, tag=7)
c.set('gone', 1, expire=0.0001)
time.sleep(0.01)
shards = [c._shards[c._hash(k) % 8]._directory[-3:] for k in ['str-key', b'bytes-key', 0, 7]]
sys.stdout.write(' '.join(shards))
",
        &[path],
        "",
    );
    let rust = FanoutCache::open(dir.path())?;
    assert_eq!(rust.shard_count(), 8);
    let shards: Vec<String> = ["str-key", "bytes-key", "0", "7"]
        .iter()
        .map(|k| -> dcache::fanout::Result<String> {
            let n = match *k {
                "bytes-key" => rust.shard_of(&b"bytes-key"[..])?,
                "0" => rust.shard_of(0)?,
                "7" => rust.shard_of(7)?,
                other => rust.shard_of(other)?,
            };
            Ok(format!("{n:03}"))
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(out, shards.join(" "), "both sides pick the same shards");
    for n in 0..200i64 {
        let e = rust.get_entry::<String>(n)?.expect("python wrote it");
        assert_eq!(e.value, format!("v{n}"));
        assert_eq!(e.tag, Some(Tag::from(format!("t{}", n % 3))));
    }
    let e = rust.get_entry::<Vec<u8>>("str-key")?.unwrap();
    assert_eq!(e.value, b"bytes");
    let left = e.expire_time.unwrap().duration_since(SystemTime::now())?;
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
    assert_eq!(
        rust.get_entry::<f64>(&b"bytes-key"[..])?.unwrap().tag,
        Some(Tag::Integer(7))
    );
    assert_eq!(rust.get::<i64>("gone")?, None, "expired on both sides");
    assert_eq!(rust.len()?, 203);
    assert_eq!(rust.evict("t0")?, 67);
    assert!(rust.check(CheckMode::Report)?.is_empty());
    Ok(())
}

#[test]
fn rust_fanout_entries_read_back_in_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let rust = FanoutCache::open(dir.path())?;
    for n in 0..100i64 {
        rust.set_with(n, format!("v{n}"), SetOptions::new().tag("rust"))?;
    }
    rust.set_with("exp", 1, SetOptions::new().expire(Duration::from_secs(100)))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let out = py.run(
        r"
import sys, diskcache
c = diskcache.FanoutCache(sys.argv[1])
ok = all(c.get(n, tag=True) == ('v%d' % n, 'rust') for n in range(100))
value, expire_time = c.get('exp', expire_time=True)
sys.stdout.write('%s %d %d %.0f' % (ok, len(c), value, expire_time))
warnings = c.check()
assert not warnings, warnings
",
        &[dir.path().to_str().unwrap()],
        "",
    );
    let parts: Vec<&str> = out.split(' ').collect();
    assert_eq!(&parts[..3], ["True", "101", "1"]);
    let expire: f64 = parts[3].parse()?;
    assert!((expire - (now + 100.0)).abs() < 5.0);
    Ok(())
}

#[test]
fn python_and_rust_writing_concurrently_lose_nothing() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    drop(FanoutCache::open(dir.path())?);
    let child = py.spawn_script("fanout_writer.py", &[path, "2000"]);
    let rust = FanoutCache::open(dir.path()).map(|c| c.retrying());
    // Write while python writes; wait for python before looking at any error.
    let written = rust.as_ref().map_err(ToString::to_string).and_then(|rust| {
        (0..2000i64).try_for_each(|n| {
            rust.set(("rust", n), n).map_err(|e| e.to_string())?;
            rust.incr("shared-counter", 1)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    });
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "python writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    written?;
    let rust = rust?;
    for n in 0..2000i64 {
        assert_eq!(
            rust.get::<i64>(("python", n))?,
            Some(n),
            "python's write {n} visible in rust"
        );
        assert_eq!(rust.get::<i64>(("rust", n))?, Some(n));
    }
    assert_eq!(
        rust.get::<i64>("shared-counter")?,
        Some(4000),
        "no increment lost on either side"
    );
    assert!(rust.check(CheckMode::Report)?.is_empty());
    let check = py.run(
        r"
import sys, diskcache
c = diskcache.FanoutCache(sys.argv[1])
assert all(c[('rust', n)] == n for n in range(2000))
assert c['shared-counter'] == 4000, c['shared-counter']
assert not c.check()
sys.stdout.write('ok')
",
        &[path],
        "",
    );
    assert_eq!(check, "ok");
    Ok(())
}

#[test]
fn fanout_sub_collections_are_shared_with_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    let rust = FanoutCache::open(dir.path())?;
    let jobs = rust.deque::<String>("jobs")?;
    jobs.push_back("rust-1")?;
    let users = rust.index::<String, i64>("users")?;
    users.insert("ada", 1)?;
    rust.cache("misc")?.set("k", "v")?;
    let out = py.run(
        r"
import sys, diskcache
c = diskcache.FanoutCache(sys.argv[1])
d = c.deque('jobs')
d.append('python-1')
ix = c.index('users')
ix['grace'] = 2
sys.stdout.write('%s|%s|%s' % (list(d), list(ix.items()), c.cache('misc')['k']))
",
        &[path],
        "",
    );
    assert_eq!(out, "['rust-1', 'python-1']|[('ada', 1), ('grace', 2)]|v");
    let items: Vec<String> = jobs.iter().collect::<Result<_, _>>()?;
    assert_eq!(items, ["rust-1", "python-1"]);
    assert_eq!(users.get("grace")?, Some(2));
    Ok(())
}
