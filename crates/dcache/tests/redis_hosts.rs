//! Several machines sharing one Redis server: each "host" is a process in a network namespace
//! of its own (`ip netns`), joined to the test's `redis-server` by a veth pair, so hosts reach
//! the server only over their own link and one host can be partitioned by taking its link
//! down.
//!
//! Where network namespaces cannot be made (not root, no `CAP_NET_ADMIN`), the hosts run as
//! plain processes on loopback and the partition test, which needs a link to cut, says loudly
//! that it was skipped (it fails in CI).

mod common;

use common::server::{BoxError, Server, free_port, redis_server_available};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use dcache::{BoundedSemaphore, Lock, MemoizeStampede, SetOptions, Storage, Throttle, Update};
use dcache_redis::RedisStore;

type TestResult = Result<(), BoxError>;

const ROLE: &str = "DCACHE_HOSTS_ROLE";
const URL: &str = "DCACHE_HOSTS_URL";
const PREFIX: &str = "DCACHE_HOSTS_PREFIX";
const SIGNALS: &str = "DCACHE_HOSTS_DIR";

// ----- the hosts -----

/// Runs `ip` with `args`; its error output on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One host: a namespace with a veth link to the root namespace, or (fallback) loopback.
struct Host {
    /// The namespace, when namespaces work.
    ns: Option<String>,
    /// The link's name inside the namespace.
    inner_link: String,
    /// The link's name in the root namespace.
    outer_link: String,
    /// The server's address as this host reaches it.
    server_ip: String,
}

/// The hosts of one test and their server; removes the namespaces and links when dropped,
/// the test failing or not.
struct Hosts {
    members: Vec<Host>,
    server: Server,
    prefix: String,
    signals: tempfile::TempDir,
    _server_dir: tempfile::TempDir,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for h in &self.members {
            if let Some(ns) = &h.ns {
                if let Err(e) = ip(&["netns", "del", ns]) {
                    eprintln!("cleanup: {e}");
                }
                // Gone with the namespace's end of the pair, normally.
                let _ = ip(&["link", "del", &h.outer_link]);
            }
        }
    }
}

/// A different number for each `Hosts` of this process (names and subnets).
static NEXT: AtomicU32 = AtomicU32::new(0);

impl Hosts {
    /// `n` hosts and a server they all reach; `None` (after a loud message) when namespaces
    /// are required but cannot be made outside CI, or redis-server is missing.
    fn new(n: usize, need_namespaces: bool) -> Result<Option<Hosts>, BoxError> {
        if !redis_server_available() {
            return Ok(None);
        }
        let t = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // 10.(64 + pid % 128).(t * 8 + i).0/24: distinct per test of this run, unlikely to
        // meet another run's.
        let second = 64 + pid % 128;
        let mut hosts = Vec::new();
        let mut namespaces_ok = true;
        let mut why = String::new();
        for i in 0..n {
            let third = t * 8 + i as u32 + 1;
            let ns = format!("dct{pid}-{t}-{i}");
            let outer = format!("dco{}{t}{i}", pid % 100_000);
            let inner = format!("dci{}{t}{i}", pid % 100_000);
            let host_ip = format!("10.{second}.{third}.2");
            let server_ip = format!("10.{second}.{third}.1");
            let made = (|| -> Result<(), String> {
                ip(&["netns", "add", &ns])?;
                hosts.push(Host {
                    ns: Some(ns.clone()),
                    inner_link: inner.clone(),
                    outer_link: outer.clone(),
                    server_ip: server_ip.clone(),
                });
                ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])?;
                ip(&["link", "set", &inner, "netns", &ns])?;
                ip(&["addr", "add", &format!("{server_ip}/24"), "dev", &outer])?;
                ip(&["link", "set", &outer, "up"])?;
                ip(&[
                    "netns",
                    "exec",
                    &ns,
                    "ip",
                    "addr",
                    "add",
                    &format!("{host_ip}/24"),
                    "dev",
                    &inner,
                ])?;
                ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])?;
                ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
                Ok(())
            })();
            if let Err(e) = made {
                namespaces_ok = false;
                why = e;
                break;
            }
        }
        if !namespaces_ok {
            // Clean up what was made, then fall back to loopback.
            for h in hosts.drain(..) {
                if let Some(ns) = &h.ns {
                    let _ = ip(&["netns", "del", ns]);
                    let _ = ip(&["link", "del", &h.outer_link]);
                }
            }
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            eprintln!(
                "\n!!!!!!!! network namespaces are unavailable here ({why});\n!!!!!!!! {}\n",
                if need_namespaces {
                    "SKIPPING this test, which needs a link to cut"
                } else {
                    "the hosts run as plain processes on loopback"
                }
            );
            if need_namespaces {
                assert!(!in_ci, "network namespaces are required in CI: {why}");
                return Ok(None);
            }
            for _ in 0..n {
                hosts.push(Host {
                    ns: None,
                    inner_link: String::new(),
                    outer_link: String::new(),
                    server_ip: "127.0.0.1".to_owned(),
                });
            }
        }
        let mut bind: Vec<&str> = vec!["127.0.0.1"];
        for h in &hosts {
            if h.ns.is_some() {
                bind.push(&h.server_ip);
            }
        }
        let server_dir = tempfile::tempdir()?;
        let server = Server::start(&bind, free_port("127.0.0.1")?, server_dir.path(), false)?;
        Ok(Some(Hosts {
            members: hosts,
            server,
            prefix: format!("dcache-hosts:{pid}:{t}:"),
            signals: tempfile::tempdir()?,
            _server_dir: server_dir,
        }))
    }

    /// The store as the test process (in the root namespace) sees it.
    fn store(&self) -> Result<RedisStore, BoxError> {
        Ok(RedisStore::builder(&self.server.url())
            .prefix(&self.prefix)
            .open()?)
    }

    /// Starts this test binary's test `test` on host `i` in role `role`.
    fn spawn(&self, i: usize, test: &str, role: &str) -> Result<Child, BoxError> {
        let h = &self.members[i];
        let exe = std::env::current_exe()?;
        let mut cmd = match &h.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(URL, self.server.url_at(&h.server_ip))
            .env(PREFIX, &self.prefix)
            .env(SIGNALS, self.signals.path());
        Ok(cmd.spawn()?)
    }

    /// Runs role `role` on every host at once; all must succeed.
    fn run_all(&self, test: &str, role: &str) -> TestResult {
        let mut children = Children(Vec::new());
        for i in 0..self.members.len() {
            children.0.push(self.spawn(i, test, role)?);
        }
        children.wait_all(Duration::from_secs(120))
    }

    /// Takes host `i`'s link down (`up` false) or up again.
    fn link(&self, i: usize, up: bool) -> TestResult {
        let h = &self.members[i];
        let ns = h.ns.as_deref().ok_or("no namespace")?;
        let state = if up { "up" } else { "down" };
        ip(&[
            "netns",
            "exec",
            ns,
            "ip",
            "link",
            "set",
            &h.inner_link,
            state,
        ])?;
        Ok(())
    }
}

/// Child processes, killed if the test fails before they finish.
struct Children(Vec<Child>);

impl Children {
    /// Waits up to `limit` for every child; all must succeed.
    fn wait_all(mut self, limit: Duration) -> TestResult {
        let started = Instant::now();
        for child in &mut self.0 {
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        return Err(format!("a host failed: {status}").into());
                    }
                    break;
                }
                if started.elapsed() > limit {
                    return Err(format!("a host ran for more than {limit:?}").into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// In a host process: its role and the store it reaches through its own link.
fn child() -> Result<Option<(String, RedisStore, PathBuf)>, BoxError> {
    let Ok(role) = std::env::var(ROLE) else {
        return Ok(None);
    };
    let url = std::env::var(URL)?;
    let prefix = std::env::var(PREFIX)?;
    // A fresh link on a loaded machine may take a moment to carry the first connection.
    let started = Instant::now();
    let store = loop {
        let opened = RedisStore::builder(&url)
            .prefix(&prefix)
            .connect_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_millis(500))
            .open();
        match opened {
            Ok(store) => break store,
            Err(e) if started.elapsed() > Duration::from_secs(20) => return Err(e.into()),
            Err(e) => {
                eprintln!("host: connecting to {url} failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    Ok(Some((role, store, PathBuf::from(std::env::var(SIGNALS)?))))
}

/// Waits (bounded) until the signal file `name` exists.
fn wait_signal(dir: &Path, name: &str) -> TestResult {
    let started = Instant::now();
    while !dir.join(name).exists() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("signal {name} never came").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn signal(dir: &Path, name: &str, content: &str) -> TestResult {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, dir.join(name))?;
    Ok(())
}

fn counter<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<i64> {
    Ok(store.get_entry::<i64>(key)?.map_or(0, |e| e.value))
}

fn in_threads(n: usize, work: impl Fn() -> TestResult + Sync) -> TestResult {
    common::in_threads(n, |_| work())
}

// ----- mutual exclusion -----

const HOSTS: usize = 3;

#[test]
fn lock_excludes_across_hosts() -> TestResult {
    if let Some((_, store, _)) = child()? {
        let lock = Lock::new(store.clone(), "counter-lock").expire(Duration::from_secs(30));
        return in_threads(2, || {
            for _ in 0..100 {
                let _guard = lock.acquire()?;
                // Not atomic: exact only if nobody else is inside.
                let n = counter(&store, "counter")?;
                store.set("counter", &(n + 1), SetOptions::new())?;
            }
            Ok(())
        });
    }
    let Some(hosts) = Hosts::new(HOSTS, false)? else {
        return Ok(());
    };
    hosts.run_all("lock_excludes_across_hosts", "worker")?;
    assert_eq!(counter(&hosts.store()?, "counter")?, 600);
    Ok(())
}

// ----- semaphore -----

#[test]
fn semaphore_high_water_mark_across_hosts() -> TestResult {
    if let Some((_, store, _)) = child()? {
        let sem = BoundedSemaphore::new(store.clone(), "pool", 2).expire(Duration::from_secs(30));
        return in_threads(3, || {
            for _ in 0..15 {
                let _permit = sem.acquire()?;
                let inside = store.incr("inside", 1, Some(0), SetOptions::new())?;
                store.update::<i64, _, _>("high", SetOptions::new(), |cur| {
                    (Update::Set(cur.unwrap_or(0).max(inside)), ())
                })?;
                std::thread::sleep(Duration::from_millis(3));
                store.incr("inside", -1, Some(0), SetOptions::new())?;
                store.incr("entries", 1, Some(0), SetOptions::new())?;
            }
            Ok(())
        });
    }
    let Some(hosts) = Hosts::new(HOSTS, false)? else {
        return Ok(());
    };
    hosts.run_all("semaphore_high_water_mark_across_hosts", "worker")?;
    let store = hosts.store()?;
    assert_eq!(counter(&store, "entries")?, 3 * 3 * 15);
    let high = counter(&store, "high")?;
    assert!((1..=2).contains(&high), "high-water mark {high}");
    assert_eq!(counter(&store, "inside")?, 0);
    Ok(())
}

// ----- throttle -----

const THROTTLE_COUNT: u32 = 5;
const THROTTLE_PER: Duration = Duration::from_millis(500);
const THROTTLE_CALLS: usize = 10;

#[test]
fn throttle_rate_bound_across_hosts() -> TestResult {
    if let Some((_, store, _)) = child()? {
        let throttle = Throttle::new(store.clone(), "api", THROTTLE_COUNT, THROTTLE_PER)?;
        for _ in 0..THROTTLE_CALLS {
            throttle.call(|| -> Result<(), dcache::recipes::Error> {
                // The call's time on the server clock, which every host shares.
                let at = store.now().duration_since(UNIX_EPOCH).unwrap_or_default();
                store.update::<Vec<f64>, _, _>("calls", SetOptions::new(), |cur| {
                    let mut calls = cur.unwrap_or_default();
                    calls.push(at.as_secs_f64());
                    (Update::Set(calls), ())
                })?;
                Ok(())
            })?;
        }
        return Ok(());
    }
    let Some(hosts) = Hosts::new(HOSTS, false)? else {
        return Ok(());
    };
    let store = hosts.store()?;
    // Created once before the hosts start, so the bucket starts full at a known time.
    let _created = Throttle::new(store.clone(), "api", THROTTLE_COUNT, THROTTLE_PER)?;
    hosts.run_all("throttle_rate_bound_across_hosts", "worker")?;
    let mut calls = store
        .get_entry::<Vec<f64>>("calls")?
        .ok_or("no calls recorded")?
        .value;
    assert_eq!(calls.len(), HOSTS * THROTTLE_CALLS);
    calls.sort_by(f64::total_cmp);
    // A token bucket of 5 refilled at 10 a second: any window of w seconds holds at most
    // 5 + 10 w calls (plus one for the clock's resolution between hosts).
    let rate = f64::from(THROTTLE_COUNT) / THROTTLE_PER.as_secs_f64();
    for (i, &start) in calls.iter().enumerate() {
        for (j, &end) in calls.iter().enumerate().skip(i) {
            let in_window = (j - i + 1) as f64;
            let bound = f64::from(THROTTLE_COUNT) + rate * (end - start) + 1.0;
            assert!(
                in_window <= bound,
                "{in_window} calls in {:.3} s (bound {bound:.1})",
                end - start
            );
        }
    }
    let span = calls[calls.len() - 1] - calls[0];
    let theoretical = (calls.len() as f64 - f64::from(THROTTLE_COUNT)) / rate;
    assert!(
        span >= theoretical - 0.1,
        "{span:.3} s < {theoretical:.3} s"
    );
    Ok(())
}

// ----- stampede -----

#[test]
fn stampede_recomputes_once_across_hosts() -> TestResult {
    if let Some((_, store, _)) = child()? {
        // -5 s * ln(0.25) = 6.9 s >= the time left: every caller wants an early recompute.
        let memo =
            MemoizeStampede::new(store.clone(), "report", Duration::from_secs(60)).random(|| 0.25);
        store.incr("ready", 1, Some(0), SetOptions::new())?;
        let started = Instant::now();
        while counter(&store, "ready")? < HOSTS as i64 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "peers never came"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        in_threads(4, || {
            let s = store.clone();
            let got: String = memo.call((7,), move |_: &(i32,)| -> Result<String, BoxError> {
                s.incr("computed", 1, Some(0), SetOptions::new())?;
                Ok("new".into())
            })?;
            assert!(got == "old" || got == "new", "{got}");
            Ok(())
        })?;
        memo.join_background();
        return Ok(());
    }
    let Some(hosts) = Hosts::new(HOSTS, false)? else {
        return Ok(());
    };
    let store = hosts.store()?;
    let memo = MemoizeStampede::new(store.clone(), "report", Duration::from_secs(60));
    store.set(
        &memo.key(&(7,)),
        &("old", 5.0),
        SetOptions::new().expire(Duration::from_secs(5)),
    )?;
    hosts.run_all("stampede_recomputes_once_across_hosts", "worker")?;
    assert_eq!(counter(&store, "computed")?, 1, "recomputed more than once");
    let (value, _) = store
        .get_entry::<(String, f64)>(&memo.key(&(7,)))?
        .ok_or("no result")?
        .value;
    assert_eq!(value, "new");
    Ok(())
}

// ----- partition -----

const LEASE: Duration = Duration::from_millis(1500);

/// A write to the fenced register: accepted only with a token at least the largest seen.
fn fenced_write<S: Storage>(store: &S, token: u64, writer: &str) -> dcache::cache::Result<bool> {
    store.update::<(u64, String), _, _>("register", SetOptions::new(), |cur| match cur {
        Some((max, _)) if token < max => (Update::Keep, false),
        _ => (Update::Set((token, writer.to_owned())), true),
    })
}

#[test]
fn a_partitioned_holder_is_fenced_off() -> TestResult {
    if let Some((role, store, signals)) = child()? {
        let lock = Lock::new(store.clone(), "lease").expire(LEASE);
        if role == "holder" {
            let guard = lock.acquire()?;
            let token = guard.fencing_token();
            assert!(fenced_write(&store, token, "holder")?);
            signal(&signals, "holder-acquired", &token.to_string())?;
            // Partitioned now: the server is out of reach, with a typed error in bounded time.
            wait_signal(&signals, "partitioned")?;
            let started = Instant::now();
            let err = guard.is_held().expect_err("partitioned");
            assert!(
                matches!(&err, dcache::sync::Error::Store(e) if e.backend_kind().is_some()),
                "{err}"
            );
            // At most twice the connect and response timeouts (one retry on a new
            // connection), plus scheduling slack on a loaded machine.
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{:?}",
                started.elapsed()
            );
            signal(&signals, "holder-saw-partition", &err.to_string())?;
            // Back on the network long after its lease: its late write is refused.
            wait_signal(&signals, "healed")?;
            let accepted = fenced_write(&store, token, "holder-late")?;
            assert!(
                !accepted,
                "the late write of an expired holder was accepted"
            );
            assert!(matches!(
                guard.unlock(),
                Err(dcache::sync::Error::LockLost { .. })
            ));
            signal(&signals, "holder-refused", "")?;
        } else {
            let guard = lock.acquire_timeout(Duration::from_secs(30))?;
            assert!(fenced_write(&store, guard.fencing_token(), "successor")?);
            signal(
                &signals,
                "successor-wrote",
                &guard.fencing_token().to_string(),
            )?;
            guard.unlock()?;
        }
        return Ok(());
    }
    let Some(hosts) = Hosts::new(2, true)? else {
        return Ok(());
    };
    let store = hosts.store()?;
    let dir = hosts.signals.path().to_path_buf();
    let test = "a_partitioned_holder_is_fenced_off";
    let mut children = Children(vec![hosts.spawn(0, test, "holder")?]);
    wait_signal(&dir, "holder-acquired")?;
    let holder_token: u64 = std::fs::read_to_string(dir.join("holder-acquired"))?.parse()?;
    hosts.link(0, false)?;
    let cut = Instant::now();
    signal(&dir, "partitioned", "")?;
    wait_signal(&dir, "holder-saw-partition")?;

    // The successor on the other host gets the lock once the lease expires.
    children.0.push(hosts.spawn(1, test, "successor")?);
    wait_signal(&dir, "successor-wrote")?;
    let successor_token: u64 = std::fs::read_to_string(dir.join("successor-wrote"))?.parse()?;
    assert!(successor_token > holder_token);
    let waited = cut.elapsed();
    eprintln!("the successor wrote {waited:?} after the partition (lease {LEASE:?})");

    hosts.link(0, true)?;
    signal(&dir, "healed", "")?;
    wait_signal(&dir, "holder-refused")?;
    children.wait_all(Duration::from_secs(60))?;
    let (token, writer) = store
        .get_entry::<(u64, String)>("register")?
        .ok_or("no register")?
        .value;
    assert_eq!((token, writer.as_str()), (successor_token, "successor"));
    Ok(())
}
