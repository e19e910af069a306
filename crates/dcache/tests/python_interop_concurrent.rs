//! A python-diskcache 5.6.3 process and this test process write one cache directory at the
//! same time; afterwards every committed write is visible to both and both `check()`s are
//! clean.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};

use common::path_str;
use common::tagged::{t, tag};
use dcache::CheckMode;
use dcache::{Cache, PushOptions, Side, Value};
use serde_json::{Value as Json, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Operations per side.
const OPS: usize = 2_500;

/// What one side committed, as `worker` in concurrent.py records it.
#[derive(Debug, Default)]
struct Record {
    /// Own key → its last value (tagged), or `None` once deleted.
    own: BTreeMap<String, Option<Json>>,
    /// Shared key → the last value this side wrote.
    shared: BTreeMap<String, String>,
    incrs: i64,
    pushed: Vec<String>,
    pulled: Vec<String>,
}

impl Record {
    fn from_json(j: &Json) -> Record {
        let strings = |v: &Json| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        Record {
            own: j["own"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| v.clone())))
                .collect(),
            shared: j["shared"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            incrs: j["incrs"].as_i64().unwrap(),
            pushed: strings(&j["pushed"]),
            pulled: strings(&j["pulled"]),
        }
    }
}

/// The mix of `worker` in concurrent.py, for side `side`.
fn ops(cache: &Cache, side: &str) -> Result<Record, Box<dyn std::error::Error>> {
    let mut r = Record::default();
    let queue = PushOptions::new().prefix("q");
    for i in 0..OPS {
        match i % 10 {
            0..=2 => {
                let (key, value) = (format!("{side}-{}", i % 200), format!("{side}:{i}"));
                cache.set(&key, &value)?;
                r.own.insert(key, Some(t(value)));
            }
            3 => {
                let key = format!("{side}-{}", i % 200);
                let mut value = format!("{side}:{i}:").into_bytes();
                value.extend(std::iter::repeat_n((i % 256) as u8, 2_000));
                cache.set(&key, &value[..])?;
                r.own.insert(key, Some(t(value)));
            }
            4 => {
                let key = format!("{side}-{}", (i * 7) % 200);
                cache.delete(&key)?;
                r.own.insert(key, None);
            }
            5 => {
                let (key, value) = (format!("shared-{}", i % 20), format!("{side}:{i}"));
                cache.set(&key, &value)?;
                r.shared.insert(key, value);
            }
            6 => {
                cache.incr("counter", 1)?;
                r.incrs += 1;
            }
            7 => {
                let value = format!("{side}:{i}");
                cache.push_with(&value, queue.clone())?;
                r.pushed.push(value);
            }
            8 => {
                if let Some((_, entry)) = cache.pull::<String>(Some("q"), Side::Front)? {
                    r.pulled.push(entry.value);
                }
            }
            _ => {
                let key = format!("add-{side}-{i}");
                assert!(cache.add(&key, i)?);
                r.own.insert(key, Some(t(i as i64)));
                if let Some(v) = cache.get::<String>(format!("shared-{}", i % 20))? {
                    assert!(v.starts_with("py:") || v.starts_with("rs:"), "{v}");
                }
            }
        }
    }
    Ok(r)
}

/// Every live entry, tagged key → tagged value.
fn items_of(items: &Json) -> BTreeMap<String, Json> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].to_string(), pair[1].clone()))
        .collect()
}

/// The sequence number `i` of a queue value `side:i`.
fn seq(value: &str) -> usize {
    value.rsplit(':').next().unwrap().parse().unwrap()
}

/// Starts the python worker once it is ready, runs the same mix meanwhile, and returns what
/// each side recorded (python's as the JSON line it printed).
fn race(
    child: &mut std::process::Child,
    cache: &Cache,
) -> Result<(Record, String), Box<dyn std::error::Error>> {
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    if line.trim() != "ready" {
        return Err(format!("python did not start: {line:?}").into());
    }
    writeln!(child.stdin.take().ok_or("no stdin")?, "go")?;
    let rs = ops(cache, "rs")?;
    let mut record = String::new();
    stdout.read_line(&mut record)?;
    Ok((rs, record))
}

#[test]
fn python_and_dcache_writing_at_once_lose_nothing() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    // Values of 2 000 bytes and up go to files, so both sides write value files too.
    let cache = Cache::builder()
        .disk_min_file_size(1_000)
        .open(dir.path())?;

    let mut child = py.spawn_script(
        "concurrent.py",
        &["worker", path_str(dir.path()), &OPS.to_string()],
    );
    let run = race(&mut child, &cache);
    let output = child.wait_with_output()?;
    assert!(
        output.status.success(),
        "python worker failed: {}\n(dcache's side: {:?})",
        String::from_utf8_lossy(&output.stderr),
        run.as_ref().err()
    );
    let (rs, record) = run?;
    let py_record = Record::from_json(&serde_json::from_str(&record)?);

    // Both sides see the same entries, and both find the directory clean.
    let dump = py.call(
        "concurrent.py",
        "dump",
        &json!({ "dir": path_str(dir.path()) }),
    );
    assert_eq!(dump["check"], json!([]));
    assert_eq!(cache.check(CheckMode::Report)?, []);
    let mut rust_items = Vec::new();
    for key in cache.keys::<Value>()? {
        let key = key?;
        if let Some(value) = cache.get::<Value>(&key)? {
            rust_items.push(json!([tag(&key), tag(&value)]));
        }
    }
    let items = items_of(&dump["items"]);
    assert_eq!(items, items_of(&Json::Array(rust_items)));
    assert_eq!(dump["len"], cache.len()?);

    // Every committed write of each side is there.
    for r in [&py_record, &rs] {
        for (key, value) in &r.own {
            assert_eq!(
                items.get(&t(key.as_str()).to_string()),
                value.as_ref(),
                "{key}"
            );
        }
    }
    for key in py_record.shared.keys().chain(rs.shared.keys()) {
        let found = &items[&t(key.as_str()).to_string()];
        let written: Vec<Json> = [&py_record, &rs]
            .iter()
            .filter_map(|r| r.shared.get(key).map(|v| t(v.as_str())))
            .collect();
        assert!(
            written.contains(found),
            "{key}: {found} is not a last write"
        );
    }
    assert_eq!(
        items[&t("counter").to_string()],
        t(py_record.incrs + rs.incrs)
    );

    // Each queue item was pulled exactly once or is still queued, and every reader saw each
    // writer's items in the order they were pushed.
    let queued: Vec<String> = dump["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut seen: Vec<&String> = queued
        .iter()
        .chain(&py_record.pulled)
        .chain(&rs.pulled)
        .collect();
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "an item was pulled twice");
    let pushed: BTreeSet<&String> = py_record.pushed.iter().chain(&rs.pushed).collect();
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), pushed);
    for reader in [&queued, &py_record.pulled, &rs.pulled] {
        for side in ["py:", "rs:"] {
            let order: Vec<usize> = reader
                .iter()
                .filter(|v| v.starts_with(side))
                .map(|v| seq(v))
                .collect();
            assert!(order.is_sorted(), "{side} items out of order: {order:?}");
        }
    }
    assert!(
        !py_record.pulled.is_empty() && !rs.pulled.is_empty(),
        "both sides pulled"
    );
    Ok(())
}
