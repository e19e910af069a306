//! The `dcache` binary on directories written by python-diskcache 5.6.3 (Cache and
//! FanoutCache), and python reading what the binary writes.

mod common;

use common::{arg, run, run_with_stdin};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Python code that prints, for every key of cache `c` in iteration order, the JSON line the
/// binary's `dump --json` should print for its key and value (the structured encoding its help
/// states: dicts with string keys as objects, lists as arrays, the rest tagged).
const EXPECTED: &str = r"
import base64, json, math
def j(v):
    t = type(v)
    if v is None or t in (bool, str):
        return v
    if t is int:
        return v if -2**63 <= v < 2**63 else {'$int': str(v)}
    if t is float:
        return v if math.isfinite(v) else {'$float': repr(v)}
    if t is bytes:
        return {'$bytes': base64.b64encode(v).decode()}
    if t is list:
        return [j(x) for x in v]
    if t is tuple:
        return {'$tuple': [j(x) for x in v]}
    if t is set:
        return {'$set': [j(x) for x in v]}
    if t is frozenset:
        return {'$frozenset': [j(x) for x in v]}
    if t is dict:
        if all(type(k) is str for k in v) and not (len(v) == 1 and next(iter(v)).startswith('$')):
            return {k: j(x) for k, x in v.items()}
        return {'$dict': [[j(k), j(x)] for k, x in v.items()]}
    raise TypeError(t)
def enc(v):
    return j(v), type(v).__name__
MISS = object()
def expected(c):
    for k in c:
        v, expire, tag = c.get(k, default=MISS, expire_time=True, tag=True)
        key, key_type = enc(k)
        line = {'key': key, 'key_type': key_type}
        if v is not MISS:  # expired entries are listed too, but python cannot read them
            line['value'], line['value_type'] = enc(v)
            line['tag'], line['tag_type'] = enc(tag) if tag is not None else (None, None)
        print(json.dumps(line))
";

/// Compares the binary's JSON lines with python's expectations, field by field.
fn assert_matches(dump: &[serde_json::Value], expected: &str) {
    let expected: Vec<serde_json::Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).expect("python printed JSON"))
        .collect();
    assert_eq!(dump.len(), expected.len(), "entries: {dump:#?}");
    for (got, want) in dump.iter().zip(&expected) {
        for (field, value) in want.as_object().expect("an object") {
            assert_eq!(&got[field], value, "{field} of {got}");
        }
    }
}

#[test]
fn a_python_cache_is_inspected_like_python_sees_it() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    let expected = py.run(
        &format!(
            r"
import sys, time, diskcache
{EXPECTED}
c = diskcache.Cache(sys.argv[1], statistics=1)
c.set('text', 'héllo wörld')
c.set(b'bkey', b'\x00\xffbytes')
c.set(7, 2.5, tag='num')
c.set(('tuple', 1), {{'a': [1, 2.0], 'b': None, 'c': (True, frozenset())}}, expire=3600, tag=b'btag')
c.set('set', {{1, 2, 3}})
c.set('big', b'z' * 100000)
c.set('bigint', 2**100)
c.set(-1.5, float('inf'), tag=3)
c.set('long text', 'ü' * 20000)
c.get('text'); c.get('missing')
c.set('gone', 1, expire=0.001)
time.sleep(0.01)
expected(c)
c.close()
"
        ),
        &[d],
        "",
    );
    let stats = run(&["stats", d]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let text = stats.out();
    assert!(text.contains("entries          10 (1 expired)\n"), "{text}");
    // Two gets, then python's `expected` read every key (9 live, 1 expired).
    assert!(
        text.contains("statistics       on: 10 hits, 2 misses\n"),
        "{text}"
    );
    assert!(text.contains("  disk_pickle_protocol  5\n"), "{text}");

    let dump = run(&["dump", d, "--json", "--max-size", "1000000"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let lines = dump.json_lines();
    assert_matches(&lines, &expected);
    assert_eq!(lines[9]["expired"], true);
    assert_eq!(lines[5]["stored"], "bytes");
    assert!(
        lines[5]["filename"].is_string(),
        "python wrote a value file"
    );
    assert_eq!(lines[8]["stored"], "text", "python's text file (MODE_TEXT)");

    let keys = run(&["keys", d, "--json"]).json_lines();
    let key_fields: Vec<(serde_json::Value, serde_json::Value)> = lines
        .iter()
        .map(|l| (l["key"].clone(), l["key_type"].clone()))
        .collect();
    let keys: Vec<(serde_json::Value, serde_json::Value)> = keys
        .iter()
        .map(|l| (l["key"].clone(), l["key_type"].clone()))
        .collect();
    assert_eq!(keys, key_fields);

    let bytes = run(&["get", d, "626b6579", "--bytes-hex"]);
    assert_eq!(bytes.stdout, b"\x00\xffbytes");
    let big = run(&["get", d, "big"]);
    assert_eq!(big.stdout, vec![b'z'; 100_000]);
    assert_eq!(
        run(&["get", d, "long text", "-n"]).out(),
        "ü".repeat(20_000)
    );
    assert_eq!(run(&["get", d, "-1.5", "--float"]).out(), "inf\n");
    assert_eq!(run(&["get", d, "gone"]).code, 1);

    let check = run(&["check", d]);
    assert_eq!(
        (check.code, check.out().as_str()),
        (0, "no problems found\n")
    );
    Ok(())
}

#[test]
fn a_python_fanout_cache_is_inspected_and_written_without_changing_its_settings() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    let expected = py.run(
        &format!(
            r"
import sys, json, diskcache
{EXPECTED}
c = diskcache.FanoutCache(sys.argv[1], shards=4)
for n in range(60):
    c.set(n, 'v%d' % n, tag='even' if n % 2 == 0 else 'odd')
c.set('blob', bytes(range(256)) * 200)
expected(c)
sys.stderr.write(json.dumps([len(s) for s in c._shards]))
c.close()
"
        ),
        &[d],
        "",
    );
    let stats = run(&["stats", d, "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let stats: serde_json::Value = serde_json::from_str(&stats.out())?;
    assert_eq!(stats["kind"], "FanoutCache");
    assert_eq!(stats["shards"], 4);
    assert_eq!(stats["entries"], 61);
    assert_eq!(stats["size_limit"], 1 << 30);
    assert_eq!(stats["settings"]["size_limit"], 268_435_456.0);

    let dump = run(&["dump", d, "--json", "--max-size", "4096"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let lines = dump.json_lines();
    assert_eq!(lines.len(), 61);
    // python chains shards 0..3 like the binary; compare without the large value.
    let small: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l["key"] != "blob")
        .cloned()
        .collect();
    let expected_small: String = expected
        .lines()
        .filter(|l| !l.contains("\"blob\""))
        .collect::<Vec<_>>()
        .join("\n");
    assert_matches(&small, &expected_small);
    let blob = lines.iter().find(|l| l["key"] == "blob").ok_or("blob")?;
    assert_eq!(blob["summary"], "<file 50.0 KiB bytes>");
    let blob_bytes = run(&["get", d, "blob"]);
    let want: Vec<u8> = (0..=255u8).cycle().take(256 * 200).collect();
    assert_eq!(blob_bytes.stdout, want);
    assert_eq!(run(&["keys", d, "--tag", "odd"]).lines().len(), 30);
    assert_eq!(run(&["check", d]).code, 0);

    // Writes through the binary, read back by python; settings untouched (python's shards
    // store size_limit as REAL).
    assert_eq!(
        run(&["set", d, "from-cli", "hello", "--tag", "cli"]).code,
        0
    );
    assert_eq!(run(&["set", d, "5", "5", "--int", "--value-int"]).code, 0);
    assert_eq!(run(&["incr", d, "5", "--int", "-d", "2"]).out(), "7\n");
    assert_eq!(
        run_with_stdin(&["set", d, "upload", "--stdin"], b"\x00raw\xff").code,
        0
    );
    assert_eq!(run(&["delete", d, "0", "--int"]).code, 0);
    assert_eq!(
        run(&["evict", d, "even"]).out(),
        "removed 29 entries tagged even\n"
    );
    let seen = py.run(
        r"
import sys, sqlite3, diskcache
c = diskcache.FanoutCache(sys.argv[1], shards=4)
print(c.get('from-cli', tag=True), c.get(5), c.get('upload'), 0 in c, len(c))
kinds = set()
for n in range(4):
    db = sqlite3.connect('%s/%03d/cache.db' % (sys.argv[1], n))
    kinds.add(db.execute(
        'SELECT typeof(value) FROM Settings WHERE key = ?', ('size_limit',)).fetchone()[0])
print(sorted(kinds), c.check())
",
        &[d],
        "",
    );
    assert_eq!(
        seen,
        "('hello', 'cli') 7 b'\\x00raw\\xff' False 33\n['real'] []\n"
    );
    Ok(())
}

#[test]
fn python_objects_the_binary_cannot_decode_are_reported_and_skipped() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    py.run(
        r"
import sys, diskcache
class Point:
    def __init__(self, x):
        self.x = x
c = diskcache.Cache(sys.argv[1])
c.set('before', 1)
c.set(Point(1), 'value of an object key')
c.set('object', Point(2))
c.set('after', 2)
c.close()
",
        &[d],
        "",
    );
    let keys = run(&["keys", d]);
    assert_eq!(keys.code, 1, "undecodable keys are findings");
    let lines = keys.lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        (lines[0].as_str(), lines[2].as_str(), lines[3].as_str()),
        ("before", "object", "after")
    );
    assert!(
        lines[1].starts_with("<undecodable key hex:80"),
        "{}",
        lines[1]
    );
    assert!(
        keys.stderr.contains("row 2: cannot decode its key"),
        "{}",
        keys.stderr
    );
    assert!(
        keys.stderr.contains("1 entry could not be decoded"),
        "{}",
        keys.stderr
    );

    let dump = run(&["dump", d]);
    assert_eq!(dump.code, 1);
    let lines = dump.lines();
    assert_eq!(lines[0], "before\t1\t-\t-");
    assert!(
        lines[1].ends_with("\tvalue of an object key\t-\t-"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "object\t<undecodable value>\t-\t-");
    assert_eq!(lines[3], "after\t2\t-\t-");

    let json = run(&["dump", d, "--json"]).json_lines();
    assert!(json[1]["key"].is_null());
    assert!(
        json[1]["key_error"]
            .as_str()
            .is_some_and(|e| e.contains("Point")),
        "{}",
        json[1]
    );
    assert!(json[1]["key_column"].is_string());
    assert_eq!(json[1]["value"], "value of an object key");
    assert!(json[2]["value"].is_null());
    assert!(json[2]["value_error"].is_string());

    let get = run(&["get", d, "object"]);
    assert_eq!(get.code, 2);
    assert!(get.stderr.contains("dcache: error:"), "{}", get.stderr);
    assert_eq!(run(&["get", d, "after"]).out(), "2\n");
    Ok(())
}

#[test]
fn a_python_json_disk_cache_is_read_with_disk_json() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let d = arg(dir.path());
    py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1], disk=diskcache.JSONDisk)
c.set('config', {'retries': 3, 'hosts': ['a', 'b']})
c.set(('t', 1), 'tuple key')
c.close()
",
        &[d],
        "",
    );
    // Without --disk json the compressed JSON shows as bytes.
    let raw = run(&["keys", d]);
    assert!(
        raw.lines().iter().all(|k| k.starts_with("hex:78")),
        "{:?}",
        raw.lines()
    );
    let dump = run(&["--disk", "json", "dump", d]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    assert_eq!(
        dump.lines(),
        [
            "config\t{'retries': 3, 'hosts': ['a', 'b']}\t-\t-",
            "['t', 1]\ttuple key\t-\t-",
        ]
    );
    assert_eq!(
        run(&["--disk", "json", "get", d, "config"]).out(),
        "{'retries': 3, 'hosts': ['a', 'b']}\n"
    );
    assert_eq!(
        run(&["--disk", "json", "set", d, "n", "7", "--value-int"]).code,
        0
    );
    let seen = py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1], disk=diskcache.JSONDisk)
print(c.get('n'), c.get('config'))
",
        &[d],
        "",
    );
    assert_eq!(seen, "7 {'retries': 3, 'hosts': ['a', 'b']}\n");
    Ok(())
}

#[test]
fn a_python_json_disk_cache_is_exported_into_a_pickle_cache_with_its_types() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("json");
    let dst = dir.path().join("pickle");
    let (s, d) = (arg(&src), arg(&dst));
    py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1], disk=diskcache.JSONDisk)
c.set('doc', {'name': 'ada', 'tags': ['a', 'b'], 'n': 3, 'x': 1.5, 'ok': True, 'none': None})
c.set(7, [1, 2.0, 'three'], tag='nums')
c.set('big', 2**80)
c.set('text', 'héllo')
c.close()
",
        &[s],
        "",
    );
    let dump = run(&["dump", s, "--disk", "json", "--json"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let lines = dump.json_lines();
    assert_eq!(lines[0]["value"]["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(run(&["init", d]).code, 0);
    let load = run_with_stdin(&["load", d], &dump.stdout);
    assert_eq!(load.code, 0, "{}", load.stderr);
    let seen = py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1])
doc = c['doc']
assert doc == {'name': 'ada', 'tags': ['a', 'b'], 'n': 3, 'x': 1.5, 'ok': True, 'none': None}, doc
assert list(doc) == ['name', 'tags', 'n', 'x', 'ok', 'none'], list(doc)
assert type(doc['n']) is int and type(doc['x']) is float and doc['ok'] is True
v, tag = c.get(7, tag=True)
assert v == [1, 2.0, 'three'] and type(v[1]) is float and tag == 'nums', (v, tag)
assert c['big'] == 2**80 and c['text'] == 'héllo'
print(len(c))
",
        &[d],
        "",
    );
    assert_eq!(seen, "4\n");
    Ok(())
}
