//! The operator's commands against python-diskcache 5.6.3: init and settings as python reads
//! them, dump --json | load round trips, unlocking a crashed python process's lock; and the
//! shell integration (completions, man page, -v).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{arg, run, run_with_stdin};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Python's view of a cache's settings, as JSON.
const SETTINGS: &str = r"
import sys, json, diskcache
c = diskcache.Cache(sys.argv[1])
print(json.dumps({
    'statistics': c.statistics, 'tag_index': c.tag_index,
    'eviction_policy': c.eviction_policy, 'size_limit': c.size_limit,
    'cull_limit': c.cull_limit, 'sqlite_synchronous': c.sqlite_synchronous,
    'sqlite_mmap_size': c.sqlite_mmap_size, 'min_file_size': c.disk.min_file_size,
    'pickle_protocol': c.disk.pickle_protocol,
}))
c.close()
";

#[test]
fn init_makes_a_cache_python_opens_with_the_chosen_settings() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("new");
    let d = arg(&cache);
    let r = run(&[
        "init",
        d,
        "--size-limit",
        "2GiB",
        "--statistics",
        "--tag-index",
        "--eviction-policy",
        "least-recently-used",
        "--cull-limit",
        "3",
        "--sqlite-synchronous",
        "2",
        "--sqlite-mmap-size",
        "16MiB",
        "--disk-min-file-size",
        "1KiB",
        "--disk-pickle-protocol",
        "4",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().starts_with("created a Cache in "), "{}", r.out());
    let seen: serde_json::Value = serde_json::from_str(&py.run(SETTINGS, &[d], ""))?;
    assert_eq!(
        seen,
        serde_json::json!({
            "statistics": 1, "tag_index": 1, "eviction_policy": "least-recently-used",
            "size_limit": 2_147_483_648u64, "cull_limit": 3, "sqlite_synchronous": 2,
            "sqlite_mmap_size": 16 << 20, "min_file_size": 1024, "pickle_protocol": 4,
        })
    );

    // A second init refuses and points at `settings`.
    let again = run(&["init", d]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("dcache settings"), "{}", again.stderr);
    // Values python would refuse are refused before anything is created.
    let bad = dir.path().join("bad");
    assert_eq!(
        run(&["init", arg(&bad), "--sqlite-synchronous", "7"]).code,
        2
    );
    assert_eq!(run(&["init", arg(&bad), "--size-limit", "lots"]).code, 2);
    assert!(!bad.exists());
    Ok(())
}

#[test]
fn init_makes_a_fanout_cache_for_python_json_disk() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    let r = run(&[
        "init",
        d,
        "--shards",
        "4",
        "--disk",
        "json",
        "--statistics",
        "--eviction-policy",
        "none",
        "--setting",
        "disk_compress_level=6",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        run(&[
            "set",
            d,
            "user",
            "--disk",
            "json",
            "--value-json",
            r#"{"name": "ada", "langs": ["en", "fr"], "n": 3}"#
        ])
        .code,
        0
    );
    let out = py.run(
        r"
import sys, json, diskcache
c = diskcache.FanoutCache(sys.argv[1], shards=4, disk=diskcache.JSONDisk)
shard = c._shards[0]
print(json.dumps([c.get('user'), shard.statistics, shard.eviction_policy,
                  shard.disk.compress_level, len(c._shards)]))
c.set('from-python', [1, 2])
c.close()
",
        &[d],
        "",
    );
    let seen: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(
        seen,
        serde_json::json!([{"name": "ada", "langs": ["en", "fr"], "n": 3}, 1, "none", 6, 4])
    );
    let stats: serde_json::Value =
        serde_json::from_str(&run(&["stats", d, "--json", "--disk", "json"]).out())?;
    assert_eq!(stats["shards"], 4);
    assert_eq!(stats["entries"], 2);
    let got = run(&["get", d, "from-python", "--disk", "json", "--json"]);
    let got: serde_json::Value = serde_json::from_str(&got.out())?;
    assert_eq!(got["value"], serde_json::json!([1, 2]));
    Ok(())
}

#[test]
fn settings_changed_by_the_command_are_the_ones_python_reads() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    py.run(
        "import sys, diskcache; diskcache.Cache(sys.argv[1]).close()",
        &[d],
        "",
    );
    for (name, value, shown) in [
        ("statistics", "on", "statistics: 0 -> 1"),
        ("tag_index", "true", "tag_index: 0 -> 1"),
        (
            "size_limit",
            "10MB",
            "size_limit: 1073741824 (1.0 GiB) -> 10000000 (9.5 MiB)",
        ),
        (
            "eviction_policy",
            "least-frequently-used",
            "eviction_policy: least-recently-stored -> least-frequently-used",
        ),
        ("cull_limit", "0", "cull_limit: 10 -> 0"),
        ("sqlite_synchronous", "0", "sqlite_synchronous: 1 -> 0"),
        (
            "disk_min_file_size",
            "4KiB",
            "disk_min_file_size: 32768 (32.0 KiB) -> 4096 (4.0 KiB)",
        ),
    ] {
        let r = run(&["settings", d, name, value]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(r.out(), format!("{shown}\n"));
    }
    let seen: serde_json::Value = serde_json::from_str(&py.run(SETTINGS, &[d], ""))?;
    assert_eq!(seen["statistics"], 1);
    assert_eq!(seen["tag_index"], 1);
    assert_eq!(seen["size_limit"], 10_000_000);
    assert_eq!(seen["eviction_policy"], "least-frequently-used");
    assert_eq!(seen["cull_limit"], 0);
    assert_eq!(seen["sqlite_synchronous"], 0);
    assert_eq!(seen["min_file_size"], 4096);

    // Reading one and all.
    assert_eq!(run(&["settings", d, "cull_limit"]).out(), "0\n");
    let all: serde_json::Value = serde_json::from_str(&run(&["settings", d, "--json"]).out())?;
    assert_eq!(all["eviction_policy"], "least-frequently-used");
    assert_eq!(all["size_limit"], 10_000_000);

    // python's validation: each refused with exit 2 and nothing changed.
    for (name, value, why) in [
        ("sqlite_synchronous", "9", "from 0 to 3"),
        (
            "eviction_policy",
            "most-recently-used",
            "most-recently-used",
        ),
        ("statistics", "maybe", "not a boolean"),
        ("hits", "0", "counter"),
        ("cull_limit", "-1", "cull_limit"),
    ] {
        let r = run(&["settings", d, name, value]);
        assert_eq!(r.code, 2, "{name}={value}: {}", r.out());
        assert!(r.stderr.contains(why), "{name}={value}: {}", r.stderr);
    }
    let unknown = run(&["settings", d, "colour"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("eviction_policy"),
        "{}",
        unknown.stderr
    );
    assert_eq!(
        seen,
        serde_json::from_str::<serde_json::Value>(&py.run(SETTINGS, &[d], ""))?
    );
    Ok(())
}

#[test]
fn writing_commands_on_a_missing_directory_say_how_to_create_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    for args in [
        vec!["set", arg(&missing), "k", "v"],
        vec!["settings", arg(&missing), "statistics", "1"],
        vec!["push", arg(&missing), "job"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(
            r.stderr
                .contains(&format!("run `dcache init {}`", missing.display())),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert!(!missing.exists());
}

/// A python cache holding every type python-diskcache stores, as keys, values and tags.
const EVERY_TYPE: &str = r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1])
values = {
    'str': 'héllo\n\twörld', 'bytes': b'\x00\xff', 'int': -42, 'bigint': 2**100,
    'negbig': -(2**70) - 1, 'float': 2.0, 'inf': float('-inf'), 'none': None,
    'true': True, 'list': [1, [2, [3]], 'x'], 'tuple': (1, 'a', (2.5, b'z')),
    'dict': {'name': 'ada', 'langs': ['en'], 'nested': {'k': (1,)}},
    'intdict': {1: 'one', (2, 3): 'pair'}, 'dollar': {'$bytes': 'not a tag'},
    'set': {1, 2, 3}, 'frozenset': frozenset({'a'}), 'emptydict': {},
    'bigbytes': b'\x01' * 100000, 'bigtext': 'ü' * 30000, 'emptystr': '',
}
for k, v in values.items():
    c.set(k, v)
c.set(7, 'int key', tag=3)
c.set(b'\x00key', 'bytes key', tag=b'\x01')
c.set(('tuple', 1), 'tuple key', tag=1.5, expire=3600)
c.set(2**80, 'big key', tag='t')
c.set(-0.5, 'float key')
c.set('gone', 'expired', expire=0.001)
c.close()
";

/// Python code comparing every live entry of cache argv[1] with cache argv[2] (types and
/// all), printing the number compared.
const SAME: &str = r"
import sys, math, diskcache
def open_(path):
    import os
    if os.path.exists(os.path.join(path, 'cache.db')):
        return diskcache.Cache(path)
    return diskcache.FanoutCache(path, shards=len(os.listdir(path)))
def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b
src, dst = open_(sys.argv[1]), open_(sys.argv[2])
n = 0
for k in src:
    got = src.get(k, default=KeyError, expire_time=True, tag=True)
    if got[0] is KeyError:
        assert k not in dst, ('expired entry copied', k)
        continue
    copy = dst.get(k, default=KeyError, expire_time=True, tag=True)
    assert copy[0] is not KeyError, ('missing', k)
    assert same(got[0], copy[0]), (k, got[0], copy[0])
    assert same(got[2], copy[2]), ('tag', k, got[2], copy[2])
    assert (got[1] is None) == (copy[1] is None), ('expiry', k)
    if got[1] is not None:
        assert abs(got[1] - copy[1]) < 5, ('expire_time', k, got[1], copy[1])
    n += 1
print(n)
";

#[test]
fn dump_json_then_load_round_trips_every_type_into_a_new_cache() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("python");
    py.run(EVERY_TYPE, &[arg(&src)], "");
    std::thread::sleep(std::time::Duration::from_millis(10));

    let dump = run(&["dump", arg(&src), "--json"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let lines = dump.json_lines();
    assert_eq!(lines.len(), 26);
    // Structured, as jq sees it.
    let dict = lines
        .iter()
        .find(|l| l["key"] == "dict")
        .ok_or("the dict entry")?;
    assert_eq!(dict["value"]["name"], "ada");
    assert_eq!(
        dict["value"]["nested"]["k"],
        serde_json::json!({"$tuple": [1]})
    );

    // Into a new Cache made by `dcache init`.
    let ours = dir.path().join("ours");
    assert_eq!(run(&["init", arg(&ours)]).code, 0);
    let load = run_with_stdin(&["load", arg(&ours)], &dump.stdout);
    assert_eq!(load.code, 0, "{}", load.stderr);
    assert_eq!(
        load.out(),
        "stored 25 entries; skipped 1 expired, 0 that could not be loaded\n"
    );
    assert_eq!(py.run(SAME, &[arg(&src), arg(&ours)], "").trim(), "25");

    // Into a FanoutCache python made, from a file.
    let fanout = dir.path().join("fanout");
    py.run(
        "import sys, diskcache; diskcache.FanoutCache(sys.argv[1], shards=4).close()",
        &[arg(&fanout)],
        "",
    );
    let file = dir.path().join("dump.jsonl");
    std::fs::write(&file, &dump.stdout)?;
    let load = run(&["load", arg(&fanout), arg(&file), "--json"]);
    assert_eq!(load.code, 0, "{}", load.stderr);
    let summary: serde_json::Value = serde_json::from_str(&load.out())?;
    assert_eq!(
        summary,
        serde_json::json!({"stored": 25, "expired": 1, "failed": 0})
    );
    assert_eq!(py.run(SAME, &[arg(&src), arg(&fanout)], "").trim(), "25");

    // And the copy dumps the same values again.
    let again = run(&["dump", arg(&ours), "--json"]).json_lines();
    let values = |lines: &[serde_json::Value]| -> Vec<(serde_json::Value, serde_json::Value)> {
        let mut v: Vec<_> = lines
            .iter()
            .filter(|l| l["expired"] == false)
            .map(|l| (l["key"].clone(), l["value"].clone()))
            .collect();
        v.sort_by_key(|(k, _)| k.to_string());
        v
    };
    assert_eq!(values(&again), values(&lines));

    // Lines that cannot be loaded are named and counted (exit 1); the rest is stored.
    let summarized = run(&["dump", arg(&src), "--json", "--max-size", "1KiB"]);
    let partial = dir.path().join("partial");
    assert_eq!(run(&["init", arg(&partial)]).code, 0);
    let load = run_with_stdin(&["load", arg(&partial)], &summarized.stdout);
    assert_eq!(load.code, 1);
    assert!(load.stderr.contains("--max-size"), "{}", load.stderr);
    assert!(
        load.out().contains("2 that could not be loaded"),
        "{}",
        load.out()
    );
    Ok(())
}

#[test]
fn unlock_frees_a_lock_a_killed_python_process_held() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    let mut holder = Command::new(py.exe())
        .arg("-c")
        .arg(
            r"
import sys, time, diskcache
c = diskcache.Cache(sys.argv[1], eviction_policy='none')
diskcache.Lock(c, 'report-lock').acquire()
diskcache.RLock(c, 'user-lock').acquire()
diskcache.BoundedSemaphore(c, 'pool', value=3).acquire()
print('held', flush=True)
time.sleep(600)
",
        )
        .arg(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = holder.id();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().ok_or("stdout")?).read_line(&mut line)?;
    assert_eq!(line, "held\n");
    let listed = run(&["locks", d]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let text = listed.out();
    assert!(
        text.contains("report-lock\tlock\theld by a python process"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "user-lock\trlock\theld by pid {pid} (alive), owner {pid}-"
        )),
        "{text}"
    );
    assert!(
        !text.contains("pool"),
        "semaphores only with --semaphores:\n{text}"
    );

    holder.kill()?;
    holder.wait()?;
    let listed = run(&["locks", d, "--semaphores", "--json"]).json_lines();
    let by_key = |k: &str| {
        listed
            .iter()
            .find(|l| l["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} in {listed:?}"))
    };
    assert_eq!(by_key("report-lock")["type"], "lock");
    assert_eq!(by_key("report-lock")["python_lock"], true);
    assert_eq!(by_key("user-lock")["type"], "rlock");
    assert_eq!(by_key("user-lock")["pid"], pid);
    assert_eq!(by_key("user-lock")["alive"], false);
    assert_eq!(by_key("user-lock")["depth"], 1);
    assert_eq!(by_key("pool")["free"], 2);

    // Not on a terminal: refused without --yes; nothing released.
    let refused = run(&["unlock", d, "report-lock"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    // A key that is no lock is refused too.
    assert_eq!(run(&["set", d, "plain", "text"]).code, 0);
    assert_eq!(run(&["unlock", d, "plain", "--yes"]).code, 2);

    for key in ["report-lock", "user-lock", "pool"] {
        let r = run(&["unlock", d, key, "--yes"]);
        assert_eq!(r.code, 0, "{key}: {}", r.stderr);
        assert!(r.out().starts_with("released "), "{}", r.out());
    }
    assert_eq!(
        run(&["unlock", d, "report-lock", "--yes"]).code,
        1,
        "gone now"
    );
    let free = py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1], eviction_policy='none')
print(diskcache.Lock(c, 'report-lock').locked(), c.add('report-lock', None))
r = diskcache.RLock(c, 'user-lock'); r.acquire(); r.release()
s = diskcache.BoundedSemaphore(c, 'pool', value=3)
for _ in range(3): s.acquire()
print('ok')
",
        &[d],
        "",
    );
    assert_eq!(free, "False True\nok\n");
    Ok(())
}

#[test]
fn locks_lists_a_dcache_lock_and_not_its_fencing_counter() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = dcache::Cache::open(dir.path())?;
    let token = dcache::Lock::new(cache, "rust-lock").acquire()?.forget();
    let listed = run(&["locks", arg(dir.path()), "--semaphores", "--json"]).json_lines();
    assert_eq!(
        listed.len(),
        1,
        "the fencing counter is no semaphore: {listed:?}"
    );
    assert_eq!(listed[0]["key"], "rust-lock");
    assert_eq!(listed[0]["type"], "lock");
    assert_eq!(listed[0]["pid"], std::process::id());
    assert!(token.starts_with(&format!("{}-", std::process::id())));
    Ok(())
}

#[test]
fn queues_push_pull_and_peek_like_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    assert_eq!(run(&["init", d]).code, 0);
    assert_eq!(run(&["push", d, "first"]).out(), "500000000000000\n");
    assert_eq!(run(&["push", d, "second"]).out(), "500000000000001\n");
    assert_eq!(
        run(&["push", d, "zero", "--front"]).out(),
        "499999999999999\n"
    );
    let job = run(&[
        "push",
        d,
        "--prefix",
        "jobs",
        "--value-json",
        r#"{"id": 7, "args": {"$tuple": [1, 2]}}"#,
        "--json",
    ]);
    assert_eq!(job.out(), "{\"key\":\"jobs-500000000000000\"}\n");
    assert_eq!(run(&["peek", d]).out(), "zero\n");
    assert_eq!(run(&["peek", d, "--back"]).out(), "second\n");
    assert_eq!(run(&["pull", d]).out(), "zero\n");
    let pulled = run(&["pull", d, "--prefix", "jobs", "--json"]);
    let pulled: serde_json::Value = serde_json::from_str(&pulled.out())?;
    assert_eq!(
        pulled["value"]["args"],
        serde_json::json!({"$tuple": [1, 2]})
    );
    let empty = run(&["pull", d, "--prefix", "jobs"]);
    assert_eq!(empty.code, 1);
    assert!(empty.stderr.contains("is empty"), "{}", empty.stderr);
    let seen = py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1])
print(c.pull(), c.pull(), c.pull())
c.push(b'from python')
",
        &[d],
        "",
    );
    assert_eq!(
        seen,
        "(500000000000000, 'first') (500000000000001, 'second') (None, None)\n"
    );
    let r = run(&["pull", d, "--json"]);
    assert_eq!(
        r.out(),
        "{\"key\":500000000000000,\"value\":{\"$bytes\":\"ZnJvbSBweXRob24=\"},\"value_type\":\"bytes\"}\n"
    );

    // add: set only when absent.
    assert_eq!(run(&["add", d, "k", "v1"]).code, 0);
    let again = run(&["add", d, "k", "v2"]);
    assert_eq!(again.code, 1);
    assert_eq!(run(&["get", d, "k"]).out(), "v1\n");
    Ok(())
}

/// Whether `shell` can be run (`CI=true` requires it: CI installs zsh and fish).
fn shell_available(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{shell} is required in CI (apt-get install -y zsh fish)"
        );
        eprintln!("*** {shell} is not installed: its completion script is not parsed ***");
    }
    found
}

#[test]
fn completion_scripts_parse_in_their_shells() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (shell, check) in [
        ("bash", vec!["-n"]),
        ("zsh", vec!["-n"]),
        ("fish", vec!["--no-execute"]),
    ] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        let script = r.out();
        for command in ["init", "settings", "locks", "unlock", "load", "stats"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
        if !shell_available(shell) {
            continue;
        }
        let file = dir.path().join(format!("dcache.{shell}"));
        std::fs::write(&file, &script)?;
        let out = Command::new(shell).args(&check).arg(&file).output()?;
        assert!(
            out.status.success(),
            "{shell} {check:?} rejects the script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(run(&["completions", "tcsh"]).code, 2);
    Ok(())
}

#[test]
fn the_man_page_is_generated_from_the_help() {
    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = r.out();
    assert!(
        page.starts_with(".ie") || page.contains(".TH dcache"),
        "{page}"
    );
    for text in ["init", "settings", "unlock", "completions", "\\-\\-json"] {
        assert!(page.contains(text), "{text} in the man page");
    }
    let stats = run(&["man", "stats"]).out();
    assert!(stats.contains("dcache\\-stats"), "{stats}");
    assert!(stats.contains("\\-\\-watch"), "{stats}");
    assert_eq!(run(&["man", "frobnicate"]).code, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(run(&["man", "--out-dir", arg(dir.path())]).code, 0);
    for page in [
        "dcache.1",
        "dcache-init.1",
        "dcache-unlock.1",
        "dcache-stats.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
}

#[test]
fn verbose_shows_the_library_log_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    assert_eq!(run(&["init", d, "--disk-min-file-size", "0"]).code, 0);
    assert_eq!(
        run(&["set", d, "k", "--value-json", r#"{"$tuple": [1, 2]}"#]).code,
        0
    );
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "val") {
                files.push(path);
            }
        }
    }
    assert_eq!(files.len(), 1);
    std::fs::remove_file(&files[0])?;
    let quiet = run(&["get", d, "k"]);
    assert_eq!(quiet.code, 1);
    assert!(!quiet.stderr.contains("damaged"), "{}", quiet.stderr);
    let verbose = run(&["-v", "get", d, "k"]);
    assert_eq!(verbose.code, 1);
    assert!(
        verbose
            .stderr
            .contains("dcache: warning: reading a damaged entry as a miss"),
        "{}",
        verbose.stderr
    );
    // -q silences progress only: the log messages stay.
    let both = run(&["-vq", "get", d, "k", "--progress", "always"]);
    assert_eq!(both.code, 1);
    assert!(both.stderr.contains("damaged entry"), "{}", both.stderr);
    Ok(())
}

#[test]
fn every_command_speaks_json() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = run(&all);
        assert!(r.code <= 1, "{args:?}: {}", r.stderr);
        serde_json::from_str(r.out().lines().next().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("{args:?} printed {:?}: {e}", r.out()))
    };
    assert_eq!(json(&["init", d])["kind"], "Cache");
    assert_eq!(
        json(&["set", d, "k", "v", "--expire", "1h30m"])["stored"],
        true
    );
    let got = json(&["get", d, "k"]);
    assert_eq!(got["value"], "v");
    let left = got["expire_time"].as_f64().ok_or("a time")?
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
    assert!((5390.0..=5400.0).contains(&left), "{left}");
    assert_eq!(json(&["incr", d, "n"])["value"], 1);
    assert_eq!(
        json(&["touch", d, "k", "--expire", "500ms"])["touched"],
        true
    );
    assert_eq!(json(&["delete", d, "n"])["deleted"], true);
    assert_eq!(json(&["add", d, "k", "x"])["stored"], false);
    assert_eq!(json(&["check", d])["ok"], true);
    assert_eq!(json(&["check", d])["findings"], serde_json::json!([]));
    assert!(json(&["vacuum", d])["volume_after"].is_u64());
    assert_eq!(json(&["evict", d, "t"])["removed"], 0);
    assert_eq!(json(&["expire", d])["removed"], 0);
    assert_eq!(json(&["cull", d])["removed"], 0);
    assert_eq!(json(&["settings", d, "cull_limit"])["cull_limit"], 10);
    assert_eq!(json(&["clear", d, "--yes"])["removed"], 1);
    assert_eq!(json(&["stats", d])["entries"], 0);
    Ok(())
}
