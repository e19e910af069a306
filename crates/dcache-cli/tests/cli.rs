//! The `dcache` binary on directories made by dcache: every command, its output, exit codes
//! and errors.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::{arg, dcache, run, run_with_stdin};
use dcache::cache::EntryQuery;
use dcache::{Cache, EvictionPolicy, FanoutCache, SetOptions, Tag, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const COMMANDS: [&str; 25] = [
    "stats",
    "keys",
    "dump",
    "get",
    "set",
    "delete",
    "touch",
    "incr",
    "expire",
    "evict",
    "cull",
    "clear",
    "check",
    "vacuum",
    "init",
    "settings",
    "add",
    "push",
    "pull",
    "peek",
    "locks",
    "unlock",
    "load",
    "completions",
    "man",
];

/// A cache with one entry of each kind (culling on writes off, so the expired entry stays).
fn sample() -> Result<(tempfile::TempDir, Cache), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().cull_limit(0).open(dir.path())?;
    cache.set("greeting", "hello")?;
    cache.set(42, 1.5)?;
    cache.set_with(
        &b"\x00bin"[..],
        &b"\x00\x01raw"[..],
        SetOptions::new().tag("blobs"),
    )?;
    cache.set_with(
        ("user", 7),
        vec![("name", "ada")],
        SetOptions::new()
            .expire(Duration::from_secs(3600))
            .tag(7i64),
    )?;
    cache.set("big", vec![b'x'; 100_000].as_slice())?;
    cache.set_with("gone", 0, SetOptions::new().expire(Duration::ZERO))?;
    cache.set("tab\tkey", "two\nlines")?;
    Ok((dir, cache))
}

#[test]
fn help_lists_every_command_with_examples_and_exit_codes() {
    let top = run(&["--help"]);
    assert_eq!(top.code, 0);
    let text = top.out();
    for command in COMMANDS {
        assert!(
            text.contains(&format!("  {command}")),
            "{command} in:\n{text}"
        );
        let help = run(&[command, "--help"]);
        assert_eq!(help.code, 0, "{command} --help");
        assert!(
            help.out().contains("Examples:\n  dcache "),
            "{command} --help has examples:\n{}",
            help.out()
        );
    }
    assert!(text.contains("Exit codes:"), "{text}");
    assert!(run(&["--version"]).out().starts_with("dcache "));
}

#[test]
fn usage_errors_exit_2() -> TestResult {
    let (dir, _cache) = sample()?;
    let d = arg(dir.path());
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["frobnicate", d]).code, 2);
    assert_eq!(run(&["stats"]).code, 2, "the directory is required");
    assert_eq!(
        run(&["get", d, "k", "--int", "--float"]).code,
        2,
        "one key type"
    );
    assert_eq!(run(&["set", d, "k"]).code, 2, "a value or --stdin");
    let bad_int = run(&["get", d, "4x", "--int"]);
    assert_eq!(bad_int.code, 2);
    assert!(
        bad_int.stderr.contains("\"4x\" is not an integer"),
        "{}",
        bad_int.stderr
    );
    let bad_hex = run(&["get", d, "abc", "--bytes-hex"]);
    assert_eq!(bad_hex.code, 2);
    assert!(
        bad_hex.stderr.contains("odd number of hex digits"),
        "{}",
        bad_hex.stderr
    );
    assert_eq!(run(&["set", d, "k", "v", "--expire", "-1"]).code, 2);
    let bad_secs = run(&["set", d, "k", "v", "--expire=-1"]);
    assert_eq!(bad_secs.code, 2);
    assert!(
        bad_secs.stderr.contains("non-negative"),
        "{}",
        bad_secs.stderr
    );
    Ok(())
}

#[test]
fn a_directory_that_is_not_a_cache_is_named_and_left_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing");
    let r = run(&["set", arg(&missing), "k", "v"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains(arg(&missing)), "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!missing.exists(), "no cache is created");

    let r = run(&["stats", arg(dir.path())]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no cache.db and no shard directories"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "nothing written");

    let file = dir.path().join("cache.db");
    std::fs::write(&file, b"this is not sqlite")?;
    let r = run(&["stats", arg(dir.path())]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is not an SQLite database"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(arg(&file)), "{}", r.stderr);

    let r = run(&["keys", arg(&file)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
    Ok(())
}

#[test]
fn stats_shows_counts_volume_policy_and_settings() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder()
        .statistics(true)
        .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
        .size_limit(1 << 20)
        .cull_limit(0)
        .open(dir.path())?;
    cache.set("a", vec![0u8; 50_000].as_slice())?;
    cache.set_with("b", 1, SetOptions::new().expire(Duration::ZERO))?;
    cache.set("c", 2)?;
    assert!(cache.get::<i64>("c")?.is_some());
    assert!(cache.get::<i64>("nope")?.is_none());
    let r = run(&["stats", arg(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = r.out();
    for expected in [
        "kind             Cache\n",
        "entries          3 (1 expired)\n",
        "value files 48.8 KiB)",
        "size limit       1.0 MiB\n",
        "eviction policy  least-recently-used\n",
        "statistics       on: 1 hits, 1 misses\n",
        "tag index        off\n",
        "  sqlite_journal_mode   \"wal\"\n",
        "  size_limit            1048576\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&run(&["stats", arg(dir.path()), "--json"]).out())?;
    let summary = cache.summary()?;
    assert_eq!(json["entries"], 3);
    assert_eq!(json["expired"], 1);
    assert_eq!(json["volume"], summary.volume);
    assert_eq!(json["files_size"], 50_000);
    assert_eq!(json["hits"], 1);
    assert_eq!(json["misses"], 1);
    assert_eq!(json["size_limit"], 1 << 20);
    assert_eq!(json["eviction_policy"], "least-recently-used");
    assert_eq!(json["settings"]["statistics"], 1);
    assert_eq!(json["kind"], "Cache");
    assert!(json["shards"].is_null());
    Ok(())
}

#[test]
fn keys_lists_in_insertion_order_with_limit_reverse_and_tag() -> TestResult {
    let (dir, _cache) = sample()?;
    let d = arg(dir.path());
    let r = run(&["keys", d]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.lines(),
        [
            "greeting",
            "42",
            "hex:0062696e",
            "('user', 7)",
            "big",
            "gone",
            "tab\\tkey"
        ]
    );
    assert_eq!(
        run(&["keys", d, "--limit", "2"]).lines(),
        ["greeting", "42"]
    );
    assert_eq!(
        run(&["keys", d, "-r", "-n", "2"]).lines(),
        ["tab\\tkey", "gone"]
    );
    assert_eq!(
        run(&["keys", d, "--tag", "blobs"]).lines(),
        ["hex:0062696e"]
    );
    assert!(run(&["keys", d, "--tag", "nothing"]).lines().is_empty());
    let json = run(&["keys", d, "--json", "-n", "3"]).json_lines();
    assert_eq!(json[0]["key"], "greeting");
    assert_eq!(json[0]["key_type"], "str");
    assert_eq!(json[1]["key"], 42);
    assert_eq!(json[1]["key_type"], "int");
    assert_eq!(json[2]["key"], serde_json::json!({"$bytes": "AGJpbg=="}));
    assert_eq!(json[2]["key_type"], "bytes");
    assert!(json[0].get("shard").is_none(), "no shard field for a Cache");
    Ok(())
}

#[test]
fn dump_prints_one_entry_per_line() -> TestResult {
    let (dir, cache) = sample()?;
    let r = run(&["dump", arg(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.lines();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0], "greeting\thello\t-\t-");
    assert_eq!(lines[1], "42\t1.5\t-\t-");
    assert_eq!(lines[2], "hex:0062696e\thex:0001726177\t-\tblobs");
    let user: Vec<&str> = lines[3].split('\t').collect();
    assert_eq!(&user[..2], ["('user', 7)", "[('name', 'ada')]"]);
    assert!(
        user[2].ends_with('Z') && !user[2].contains("expired"),
        "{}",
        user[2]
    );
    assert_eq!(user[3], "7");
    assert_eq!(lines[4], "big\t<file 97.7 KiB bytes>\t-\t-");
    assert!(
        lines[5].starts_with("gone\t0\t") && lines[5].ends_with(" (expired)\t-"),
        "{}",
        lines[5]
    );
    assert_eq!(lines[6], "tab\\tkey\ttwo\\nlines\t-\t-");

    let json = run(&["dump", arg(dir.path()), "--json", "--max-size", "4KiB"]).json_lines();
    assert_eq!(json.len(), 7);
    let expire = cache
        .entries(EntryQuery::new())?
        .nth(3)
        .ok_or("4 entries")??
        .expire_time
        .ok_or("an expiry")?;
    let user = &json[3];
    assert_eq!(user["key"], serde_json::json!({"$tuple": ["user", 7]}));
    assert_eq!(user["key_type"], "tuple");
    assert_eq!(user["raw"], false);
    assert_eq!(
        user["value"],
        serde_json::json!([{"$tuple": ["name", "ada"]}])
    );
    assert_eq!(user["value_type"], "list");
    assert_eq!(user["stored"], "pickle");
    assert_eq!(user["mode"], 4);
    assert_eq!(user["tag"], 7);
    assert_eq!(user["tag_type"], "int");
    assert_eq!(user["expired"], false);
    let unix = expire.duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    assert!((user["expire_time"].as_f64().ok_or("a number")? - unix).abs() < 1e-6);
    assert!(user["store_time"].as_f64().is_some());
    let big = &json[4];
    assert!(big["value"].is_null());
    assert_eq!(big["summary"], "<file 97.7 KiB bytes>");
    assert_eq!(big["value_size"], 100_000);
    assert_eq!(big["stored"], "bytes");
    assert!(
        big["filename"]
            .as_str()
            .is_some_and(|f| std::path::Path::new(f).extension() == Some("val".as_ref()))
    );
    assert_eq!(json[2]["value"], serde_json::json!({"$bytes": "AAFyYXc="}));
    assert_eq!(json[2]["value_type"], "bytes");
    assert_eq!(json[5]["expired"], true);
    assert_eq!(json[6]["key"], "tab\tkey");
    assert_eq!(json[6]["value"], "two\nlines");
    Ok(())
}

#[test]
fn dump_reads_values_up_to_max_size_and_filters() -> TestResult {
    let (dir, _cache) = sample()?;
    let d = arg(dir.path());
    let all = run(&["dump", d, "--max-size", "200000", "--tag", "7"]);
    assert_eq!(
        all.lines().len(),
        0,
        "--tag is a string tag; 7 is an integer tag"
    );
    let big = run(&["dump", d, "--max-size", "200000", "-r", "-n", "3"]);
    let lines = big.lines();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with(&format!("big\thex:{}", "78".repeat(100_000))));
    let none = run(&["dump", d, "--max-size", "0", "-n", "1"]);
    assert_eq!(none.lines(), ["greeting\t<inline 5 B text>\t-\t-"]);
    let blobs = run(&["dump", d, "--tag", "blobs", "--json"]).json_lines();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0]["tag"], "blobs");
    Ok(())
}

#[test]
fn get_prints_text_and_pipes_bytes_raw() -> TestResult {
    let (dir, cache) = sample()?;
    let d = arg(dir.path());
    let text = run(&["get", d, "greeting"]);
    assert_eq!((text.code, text.out().as_str()), (0, "hello\n"));
    assert_eq!(run(&["get", d, "greeting", "-n"]).out(), "hello");
    assert_eq!(run(&["get", d, "42", "--int"]).out(), "1.5\n");
    let bytes = run(&["get", d, "0062696e", "--bytes-hex"]);
    assert_eq!(bytes.stdout, b"\x00\x01raw");
    let big = run(&["get", d, "big"]);
    assert_eq!(big.stdout, vec![b'x'; 100_000], "a value file streamed raw");
    cache.set("pickled", (1, "a", None::<i32>))?;
    assert_eq!(run(&["get", d, "pickled"]).out(), "(1, 'a', None)\n");
    cache.set("text-file", "t".repeat(40_000))?;
    assert_eq!(
        run(&["get", d, "text-file"]).out(),
        format!("{}\n", "t".repeat(40_000))
    );

    let miss = run(&["get", d, "nope"]);
    assert_eq!(miss.code, 1);
    assert!(miss.stdout.is_empty());
    assert!(
        miss.stderr.contains("no live entry for key 'nope'"),
        "{}",
        miss.stderr
    );
    assert_eq!(
        run(&["get", d, "42"]).code,
        1,
        "the string '42' is another key"
    );
    assert_eq!(run(&["get", d, "gone"]).code, 1, "expired");
    Ok(())
}

#[test]
fn set_delete_touch_and_incr_write_through_the_library() -> TestResult {
    let (dir, cache) = sample()?;
    let d = arg(dir.path());
    assert_eq!(run(&["set", d, "name", "ada"]).code, 0);
    assert_eq!(cache.get::<String>("name")?.as_deref(), Some("ada"));
    let r = run(&[
        "set",
        d,
        "-5",
        "--int",
        "2.5",
        "--value-float",
        "--expire",
        "60",
        "--tag",
        "neg",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let entry = cache.get_entry::<f64>(-5)?.ok_or("set")?;
    assert_eq!(entry.value.to_bits(), 2.5f64.to_bits());
    assert_eq!(entry.tag, Some(Tag::from("neg")));
    assert!(entry.expire_time.is_some());
    assert_eq!(
        run(&["set", d, "ff00", "--bytes-hex", "0a0b", "--value-bytes-hex"]).code,
        0
    );
    assert_eq!(cache.get_bytes(&b"\xff\x00"[..])?, Some(vec![0x0a, 0x0b]));
    assert_eq!(run(&["set", d, "n", "-7", "--value-int"]).code, 0);
    assert_eq!(cache.get::<i64>("n")?, Some(-7));

    assert_eq!(run(&["touch", d, "-5", "--int"]).code, 0);
    assert_eq!(cache.get_entry::<f64>(-5)?.ok_or("kept")?.expire_time, None);
    assert_eq!(run(&["touch", d, "name", "--expire", "0"]).code, 0);
    assert_eq!(cache.get::<String>("name")?, None, "expired by touch");
    assert_eq!(run(&["touch", d, "name"]).code, 1, "no live entry any more");

    let incr = run(&["incr", d, "n", "--delta", "10"]);
    assert_eq!((incr.code, incr.out().as_str()), (0, "3\n"));
    assert_eq!(run(&["incr", d, "fresh"]).out(), "1\n");
    assert_eq!(run(&["incr", d, "fresh", "-d", "-3"]).out(), "-2\n");
    let not_int = run(&["incr", d, "greeting"]);
    assert_eq!(not_int.code, 2);
    assert!(
        not_int
            .stderr
            .contains("cannot increment a stored raw text"),
        "{}",
        not_int.stderr
    );

    assert_eq!(run(&["delete", d, "greeting"]).code, 0);
    assert_eq!(cache.get::<String>("greeting")?, None);
    assert_eq!(run(&["delete", d, "greeting"]).code, 1);
    Ok(())
}

#[test]
fn set_stdin_streams_bytes_into_a_value_file() -> TestResult {
    let (dir, cache) = sample()?;
    let payload: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    let r = run_with_stdin(&["set", arg(dir.path()), "upload", "--stdin"], &payload);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(cache.get_bytes("upload")?, Some(payload.clone()));
    let back = run(&["get", arg(dir.path()), "upload"]);
    assert_eq!(back.stdout, payload);
    assert_eq!(
        run_with_stdin(&["set", arg(dir.path()), "k", "v", "--stdin"], b"").code,
        2,
        "a value and --stdin conflict"
    );
    Ok(())
}

#[test]
fn expire_evict_and_cull_remove_what_the_library_would() -> TestResult {
    let (dir, cache) = sample()?;
    let d = arg(dir.path());
    let r = run(&["expire", d]);
    assert_eq!((r.code, r.out().as_str()), (0, "removed 1 expired entry\n"));
    assert_eq!(
        run(&["evict", d, "blobs"]).out(),
        "removed 1 entry tagged blobs\n"
    );
    assert_eq!(
        run(&["evict", d, "7", "--int"]).out(),
        "removed 1 entry tagged 7\n"
    );
    assert_eq!(cache.len()?, 4);
    let cull = run(&["cull", d]);
    assert_eq!(cull.code, 0);
    assert!(
        cull.out().starts_with("removed 0 entries; volume "),
        "{}",
        cull.out()
    );
    assert!(
        cull.out().contains("(size limit 1.0 GiB)"),
        "{}",
        cull.out()
    );
    Ok(())
}

#[test]
fn cull_brings_the_volume_under_the_limit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder()
        .size_limit(300_000)
        .cull_limit(0)
        .open(dir.path())?;
    for n in 0..10 {
        cache.set(n, vec![0u8; 100_000].as_slice())?;
    }
    let r = run(&["cull", arg(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(cache.volume()? <= 300_000);
    let removed: u64 = r
        .out()
        .split_whitespace()
        .nth(1)
        .ok_or("a count")?
        .parse()?;
    assert_eq!(10 - removed, cache.len()?);
    Ok(())
}

#[test]
fn clear_needs_yes_without_a_terminal() -> TestResult {
    let (dir, cache) = sample()?;
    let d = arg(dir.path());
    let refused = run(&["clear", d]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("without --yes"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(d), "{}", refused.stderr);
    assert_eq!(cache.len()?, 7, "nothing removed");
    let r = run(&["clear", d, "--yes"]);
    assert_eq!((r.code, r.out().as_str()), (0, "removed 7 entries\n"));
    assert!(cache.is_empty()?);
    Ok(())
}

#[test]
fn check_reports_findings_and_fix_repairs_them() -> TestResult {
    let (dir, cache) = sample()?;
    let d = arg(dir.path());
    assert_eq!(run(&["check", d]).lines(), ["no problems found"]);
    let info = cache.entry_info("big")?.ok_or("big")?;
    let file = dir.path().join(info.filename.as_deref().ok_or("a file")?);
    std::fs::remove_file(&file)?;
    let r = run(&["check", d]);
    assert_eq!(r.code, 1);
    let out = r.out();
    assert!(
        out.contains(&format!("file not found: {}", file.display())),
        "{out}"
    );
    assert!(out.contains("run with --fix to repair"), "{out}");
    assert_eq!(cache.len()?, 7, "check alone changes nothing");
    let fixed = run(&["check", d, "--fix"]);
    assert_eq!(fixed.code, 0, "{}", fixed.out());
    assert!(fixed.out().contains("found and fixed"), "{}", fixed.out());
    assert_eq!(cache.len()?, 6, "the row without its file is gone");
    assert_eq!(run(&["check", d]).code, 0);
    Ok(())
}

#[test]
fn vacuum_compacts_and_keeps_entries() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().sqlite_auto_vacuum(0).open(dir.path())?;
    for n in 0..3000 {
        cache.set(n, "v".repeat(300))?;
    }
    for n in 0..2990 {
        cache.delete(n)?;
    }
    let before = cache.volume()?;
    let r = run(&["vacuum", arg(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().starts_with("volume "), "{}", r.out());
    assert!(cache.volume()? * 4 < before);
    assert_eq!(cache.len()?, 10);
    Ok(())
}

#[test]
fn read_commands_record_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder()
        .statistics(true)
        .eviction_policy(EvictionPolicy::LeastFrequentlyUsed)
        .open(dir.path())?;
    cache.set("k", "v")?;
    let d = arg(dir.path());
    for args in [
        vec!["get", d, "k"],
        vec!["get", d, "missing"],
        vec!["stats", d],
        vec!["keys", d],
        vec!["dump", d],
        vec!["check", d],
    ] {
        assert!(run(&args).code <= 1, "{args:?}");
    }
    let summary = cache.summary()?;
    assert_eq!((summary.stats.hits, summary.stats.misses), (0, 0));
    let info = cache.entry_info("k")?.ok_or("k")?;
    assert_eq!(info.access_count, 0, "LFU access not recorded");
    assert_eq!(
        cache.settings().eviction_policy,
        EvictionPolicy::LeastFrequentlyUsed
    );
    Ok(())
}

#[test]
fn fanout_directories_are_read_shard_by_shard() -> TestResult {
    let dir = tempfile::tempdir()?;
    let fanout = FanoutCache::builder().shards(4).open(dir.path())?;
    for n in 0..40i64 {
        fanout.set_with(
            n,
            format!("v{n}"),
            SetOptions::new().tag(if n % 2 == 0 { "even" } else { "odd" }),
        )?;
    }
    let d = arg(dir.path());
    let stats = run(&["stats", d]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let text = stats.out();
    assert!(
        text.contains("kind             FanoutCache, 4 shards\n"),
        "{text}"
    );
    assert!(text.contains("entries          40 (0 expired)\n"), "{text}");
    assert!(text.contains("1.0 GiB (256.0 MiB per shard)"), "{text}");
    assert!(text.contains("settings (of shard 000)"), "{text}");
    let keys = run(&["keys", d, "--json"]).json_lines();
    assert_eq!(keys.len(), 40);
    let mut expected = Vec::new();
    for shard in 0..4 {
        for n in 0..40i64 {
            if fanout.shard_of(n)? == shard {
                expected.push((shard, n));
            }
        }
    }
    let got: Vec<(usize, i64)> = keys
        .iter()
        .map(|k| {
            (
                k["shard"].as_u64().unwrap_or(99) as usize,
                k["key"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(got, expected, "shard 0 first, each in insertion order");
    assert_eq!(run(&["get", d, "17", "--int"]).out(), "v17\n");
    assert_eq!(run(&["set", d, "new", "value"]).code, 0);
    assert_eq!(fanout.get::<String>("new")?.as_deref(), Some("value"));
    assert_eq!(
        run(&["evict", d, "odd"]).out(),
        "removed 20 entries tagged odd\n"
    );
    assert_eq!(run(&["dump", d, "--json"]).json_lines().len(), 21);
    assert_eq!(run(&["check", d]).code, 0);
    assert_eq!(run(&["clear", d, "-y"]).out(), "removed 21 entries\n");
    assert!(fanout.is_empty()?);
    Ok(())
}

#[test]
fn progress_is_quiet_in_pipes_unless_asked_for() -> TestResult {
    let (dir, _cache) = sample()?;
    let d = arg(dir.path());
    for command in [vec!["dump", d], vec!["check", d]] {
        let quiet = run(&command);
        assert_eq!(quiet.stderr, "", "{command:?} is quiet when piped");
    }
    let drawn = run(&["--progress", "always", "dump", d]);
    assert!(drawn.stderr.contains("dumping ["), "{:?}", drawn.stderr);
    assert!(drawn.stderr.contains("/7 "), "{:?}", drawn.stderr);
    assert!(
        drawn.stderr.ends_with("\r\x1b[2K"),
        "the line is cleared: {:?}",
        drawn.stderr
    );
    assert_eq!(drawn.lines().len(), 7, "stdout is unchanged");
    assert_eq!(run(&["--progress", "never", "dump", d]).stderr, "");
    assert_eq!(
        run(&["--progress", "always", "-q", "dump", d]).stderr,
        "",
        "-q"
    );
    assert_eq!(run(&["cull", d]).stderr, "", "cull is quiet when piped");
    let cleared = run(&["--progress", "always", "clear", d, "--yes"]);
    assert!(
        cleared.stderr.contains("clearing ["),
        "{:?}",
        cleared.stderr
    );
    Ok(())
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.transact(|c| {
        for n in 0..20_000 {
            c.set(n, n)?;
        }
        Ok::<_, dcache::cache::Error>(())
    })?;
    let mut child = dcache()
        .args(["keys", arg(dir.path())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = [0u8; 2];
    child
        .stdout
        .take()
        .ok_or("stdout")?
        .read_exact(&mut first)?;
    // Dropping our end closes the pipe; the rest of the listing hits a broken pipe.
    let out = child.wait_with_output()?;
    assert_eq!(&first, b"0\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    Ok(())
}

#[test]
fn typed_keys_of_every_kind_are_found() -> TestResult {
    let (dir, cache) = sample()?;
    cache.set(2.5, "float key")?;
    cache.set(Value::BigInt(u64::MAX.into()), "big int key")?;
    let d = arg(dir.path());
    assert_eq!(run(&["get", d, "2.5", "--float"]).out(), "float key\n");
    assert_eq!(
        run(&["keys", d, "-r", "-n", "2"]).lines(),
        ["18446744073709551615", "2.5"]
    );
    let json = run(&["keys", d, "-r", "-n", "1", "--json"]).json_lines();
    assert_eq!(
        json[0]["key"],
        serde_json::json!({"$int": "18446744073709551615"})
    );
    assert_eq!(json[0]["key_type"], "int");
    Ok(())
}

#[test]
fn a_write_lock_held_elsewhere_times_out_with_advice() -> TestResult {
    let (dir, cache) = sample()?;
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        cache.transact(|c| {
            c.set("held", 1)?;
            locked_tx
                .send(())
                .map_err(|_| dcache::cache::Error::KeyNotFound)?;
            release_rx
                .recv()
                .map_err(|_| dcache::cache::Error::KeyNotFound)?;
            Ok::<_, dcache::cache::Error>(())
        })
    });
    locked_rx.recv()?;
    let r = run(&["--timeout", "0.2", "set", arg(dir.path()), "k", "v"]);
    release_tx.send(())?;
    holder.join().map_err(|_| "the holder panicked")??;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(&format!("dcache: error: {}: timed out", arg(dir.path()))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: another thread or process holds the cache's write lock"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--timeout SECS"), "{}", r.stderr);
    assert_eq!(run(&["get", arg(dir.path()), "held"]).out(), "1\n");
    Ok(())
}
