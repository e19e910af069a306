//! The commands, on the facade's API only.

use std::io::{BufRead, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use dcache::cache::{CheckMode, EntryInfo, EntryQuery, Summary};
use dcache::disk::Mode;
use dcache::{Cache, DiskFormat, PushOptions, SetOptions, Side, Tag, Value, Warning};
use serde::Serialize;

use crate::cli::{Cli, Command, KeyType, ValueType, When};
use crate::error::CliError;
use crate::jsonvalue;
use crate::progress::Progress;
use crate::render;
use crate::target::{Access, Kind, Target};
use dcache::cache::unix_seconds;

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Done,
    /// Exit 1: a miss, findings, undecodable entries, or a declined confirmation.
    NotDone,
}

/// Values above this size are refused when `get` would print them to a terminal.
const TERMINAL_BYTES_LIMIT: u64 = 4096;

/// Runs the command with the cache's disk `disk`. An error whose message names no file is
/// given the cache directory.
pub(crate) fn run<D: DiskFormat>(cli: &Cli, disk: &D) -> Result<Outcome, CliError> {
    run_command(cli, disk).map_err(|e| match (e, cli.command.dir()) {
        (e @ CliError::Cache(_), Some(dir)) if !e.names_a_path() => {
            e.context(dir.display().to_string())
        }
        (other, _) => other,
    })
}

/// The options every command reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Global {
    /// When to draw progress (`Never` with `-q`).
    pub(crate) when: When,
    /// JSON output.
    pub(crate) json: bool,
    /// The write timeout.
    pub(crate) timeout: std::time::Duration,
}

fn run_command<D: DiskFormat>(cli: &Cli, disk: &D) -> Result<Outcome, CliError> {
    let open = |dir: &Path, access: Access| Target::open(dir, disk.clone(), access, cli.timeout);
    let when = if cli.quiet { When::Never } else { cli.progress };
    let json = cli.json;
    let global = Global {
        when,
        json,
        timeout: cli.timeout,
    };
    match &cli.command {
        Command::Stats { dir, watch: None } => stats(&open(dir, Access::Read)?, json),
        Command::Stats {
            dir,
            watch: Some(interval),
        } => crate::watch::watch(&open(dir, Access::Read)?, *interval, json),
        Command::Keys {
            dir,
            limit,
            reverse,
            tag,
        } => {
            let listing = Listing {
                limit: *limit,
                reverse: *reverse,
                tag: tag.as_deref().map(Tag::from),
                json,
            };
            keys(&open(dir, Access::Read)?, &listing)
        }
        Command::Dump {
            dir,
            max_size,
            limit,
            reverse,
            tag,
        } => {
            let listing = Listing {
                limit: *limit,
                reverse: *reverse,
                tag: tag.as_deref().map(Tag::from),
                json,
            };
            let max_size = max_size.unwrap_or(if json { u64::MAX } else { 4096 });
            dump(&open(dir, Access::Read)?, &listing, max_size, when)
        }
        Command::Get {
            dir,
            key,
            key_type,
            no_newline,
        } => get(
            &open(dir, Access::Read)?,
            &typed(key, *key_type)?,
            !*no_newline,
            json,
        ),
        Command::Set(store) | Command::Add(store) => {
            let add = matches!(cli.command, Command::Add(_));
            let key = typed(&store.key, store.key_type)?;
            let value = match &store.value {
                Some(v) if !store.value_type.stdin => Some(typed_value(v, store.value_type)?),
                _ => None,
            };
            let opts = SetOptions::new()
                .expire_opt(store.expire)
                .tag_opt(store.tag.as_deref().map(Tag::from));
            set(
                &open(&store.dir, Access::Write)?,
                &key,
                value.as_ref(),
                opts,
                add,
                json,
            )
        }
        Command::Delete { dir, key, key_type } => {
            let key = typed(key, *key_type)?;
            let target = open(dir, Access::Write)?;
            let (_, cache) = target.cache_for(&key)?;
            let deleted = cache.delete(&key)?;
            if json {
                print_json(&serde_json::json!({
                    "key": jsonvalue::to_json(&key), "deleted": deleted,
                }))?;
            }
            Ok(found(deleted, &key, &target))
        }
        Command::Touch {
            dir,
            key,
            key_type,
            expire,
        } => {
            let key = typed(key, *key_type)?;
            let target = open(dir, Access::Write)?;
            let (_, cache) = target.cache_for(&key)?;
            let touched = cache.touch(&key, *expire)?;
            if json {
                print_json(&serde_json::json!({
                    "key": jsonvalue::to_json(&key), "touched": touched,
                    "expire_time": expire.map(|d| unix_seconds(SystemTime::now() + d)),
                }))?;
            }
            Ok(found(touched, &key, &target))
        }
        Command::Incr {
            dir,
            key,
            key_type,
            delta,
        } => {
            let key = typed(key, *key_type)?;
            let target = open(dir, Access::Write)?;
            let (_, cache) = target.cache_for(&key)?;
            let value = cache.incr(&key, *delta)?;
            report(
                json,
                &value.to_string(),
                &serde_json::json!({"key": jsonvalue::to_json(&key), "value": value}),
            )
        }
        Command::Expire { dir } => {
            let target = open(dir, Access::Write)?;
            let removed = bulk(&target, when, "expiring", false, Cache::expire)?;
            report(
                json,
                &format!("removed {removed} expired {}", entries_word(removed)),
                &serde_json::json!({ "removed": removed }),
            )
        }
        Command::Evict { dir, tag, tag_type } => {
            let tag_value = typed(tag, *tag_type)?;
            let tag = match tag_value {
                Value::Str(s) => Tag::Text(s),
                Value::Int(i) => Tag::Integer(i),
                Value::Float(f) => Tag::Real(f),
                Value::Bytes(b) => Tag::Blob(b),
                other => return Err(CliError::Usage(format!("{other} cannot be a tag"))),
            };
            let target = open(dir, Access::Write)?;
            let removed = bulk(&target, when, "evicting", false, |c| c.evict(tag.clone()))?;
            report(
                json,
                &format!(
                    "removed {removed} {} tagged {}",
                    entries_word(removed),
                    render::text(&render::tag_value(&tag))
                ),
                &serde_json::json!({
                    "removed": removed, "tag": jsonvalue::to_json(&render::tag_value(&tag)),
                }),
            )
        }
        Command::Cull { dir } => cull(&open(dir, Access::Write)?, when, json),
        Command::Clear { dir, yes } => clear(&open(dir, Access::Write)?, *yes, when, json),
        Command::Check { dir, fix } => {
            let access = if *fix { Access::Write } else { Access::Read };
            let target = open(dir, access)?;
            if *fix && let Some(shard) = target.shards.iter().find(|s| s.is_read_only()) {
                return Err(CliError::Cache(dcache::cache::Error::ReadOnly {
                    path: shard.directory().to_path_buf(),
                }));
            }
            check(&target, *fix, when, json)
        }
        Command::Vacuum { dir } => vacuum(&open(dir, Access::Write)?, when, json),
        Command::Init {
            dir,
            shards,
            settings,
        } => crate::admin::init(dir, *shards, settings, disk, global),
        Command::Settings { dir, name, value } => crate::admin::settings(
            &open(
                dir,
                if value.is_some() {
                    Access::Write
                } else {
                    Access::Read
                },
            )?,
            name.as_deref(),
            value.as_deref(),
            json,
        ),
        Command::Push {
            dir,
            value,
            value_type,
            queue,
            front,
            expire,
            tag,
        } => {
            let value = match value {
                Some(v) if !value_type.stdin => typed_value(v, *value_type)?,
                _ => Value::Bytes(read_stdin()?),
            };
            let mut opts = PushOptions::new().side(if *front { Side::Front } else { Side::Back });
            opts.set = SetOptions::new()
                .expire_opt(*expire)
                .tag_opt(tag.as_deref().map(Tag::from));
            if let Some(prefix) = &queue.prefix {
                opts = opts.prefix(prefix.clone());
            }
            let target = open(dir, Access::Write)?;
            crate::queue::push(&target, &value, opts, json)
        }
        Command::Pull { dir, queue, back } | Command::Peek { dir, queue, back } => {
            let remove = matches!(cli.command, Command::Pull { .. });
            let target = open(dir, Access::Write)?;
            crate::queue::pull(
                &target,
                queue.prefix.as_deref(),
                if *back { Side::Back } else { Side::Front },
                remove,
                json,
            )
        }
        Command::Locks { dir, semaphores } => {
            crate::locks::list(&open(dir, Access::Read)?, *semaphores, json)
        }
        Command::Unlock {
            dir,
            key,
            key_type,
            yes,
        } => {
            let key = typed(key, *key_type)?;
            crate::locks::unlock(&open(dir, Access::Write)?, &key, *yes, json)
        }
        Command::Load { dir, file } => {
            crate::load::load(&open(dir, Access::Write)?, file.as_deref(), global)
        }
        Command::Completions { .. } | Command::Man { .. } => Err(CliError::Usage(
            "completions and man are handled before a cache is opened".to_owned(),
        )),
    }
}

// ----- arguments -----

/// A key (or tag) argument as a typed value.
pub(crate) fn typed(text: &str, ty: KeyType) -> Result<Value, CliError> {
    parse_typed(text, ty.int, ty.float, ty.bytes_hex, "key")
}

/// `set`'s value argument as a typed value.
pub(crate) fn typed_value(text: &str, ty: ValueType) -> Result<Value, CliError> {
    if ty.value_json {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| CliError::Usage(format!("--value-json: {text:?} is not JSON: {e}")))?;
        return jsonvalue::from_json(&json)
            .map_err(|e| CliError::Usage(format!("--value-json: {e}")));
    }
    parse_typed(
        text,
        ty.value_int,
        ty.value_float,
        ty.value_bytes_hex,
        "value",
    )
}

fn parse_typed(
    text: &str,
    int: bool,
    float: bool,
    bytes_hex: bool,
    what: &str,
) -> Result<Value, CliError> {
    if int {
        text.parse::<i64>().map(Value::Int).map_err(|_| {
            CliError::Usage(format!(
                "{what} {text:?} is not an integer between -2^63 and 2^63-1"
            ))
        })
    } else if float {
        match text.parse::<f64>() {
            Ok(f) if f.is_nan() => Err(CliError::Usage(format!(
                "{what} {text:?}: NaN cannot be stored as a key or found again"
            ))),
            Ok(f) => Ok(Value::Float(f)),
            Err(_) => Err(CliError::Usage(format!("{what} {text:?} is not a number"))),
        }
    } else if bytes_hex {
        render::parse_hex(text)
            .map(Value::Bytes)
            .map_err(|e| CliError::Usage(format!("{what}: {e}")))
    } else {
        Ok(Value::Str(text.to_owned()))
    }
}

// ----- output -----

pub(crate) type Out = BufWriter<std::io::StdoutLock<'static>>;

/// Buffered standard output.
pub(crate) fn stdout() -> Out {
    BufWriter::new(std::io::stdout().lock())
}

/// An error writing standard output.
pub(crate) fn write_error(e: std::io::Error) -> CliError {
    CliError::Io {
        what: "writing to standard output",
        source: e,
    }
}

/// Prints one JSON document on a line.
pub(crate) fn print_json(doc: &serde_json::Value) -> Result<(), CliError> {
    let mut out = stdout();
    writeln!(out, "{doc}")
        .and_then(|()| out.flush())
        .map_err(write_error)
}

/// Prints `doc` with `--json`, else the line `text`.
pub(crate) fn report(json: bool, text: &str, doc: &serde_json::Value) -> Result<Outcome, CliError> {
    if json {
        print_json(doc)?;
        Ok(Outcome::Done)
    } else {
        say(text)
    }
}

/// Prints one line of human output.
pub(crate) fn say(line: &str) -> Result<Outcome, CliError> {
    let mut out = stdout();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(write_error)?;
    Ok(Outcome::Done)
}

/// `entry` or `entries`.
pub(crate) fn entries_word(n: u64) -> &'static str {
    if n == 1 { "entry" } else { "entries" }
}

/// `Done` when the key was found; a note on stderr and `NotDone` when not.
pub(crate) fn found<D: DiskFormat>(found: bool, key: &Value, target: &Target<D>) -> Outcome {
    if found {
        Outcome::Done
    } else {
        eprintln!(
            "dcache: no live entry for key {key} in {}",
            target.dir.display()
        );
        Outcome::NotDone
    }
}

// ----- stats -----

fn stats<D: DiskFormat>(target: &Target<D>, json: bool) -> Result<Outcome, CliError> {
    let summaries: Vec<Summary> = target
        .shards
        .iter()
        .map(Cache::summary)
        .collect::<Result<_, _>>()?;
    let settings: Vec<_> = target.shards.iter().map(Cache::settings).collect();
    let first = &settings[0];
    let total = summaries.iter().fold(Summary::default(), |mut acc, s| {
        acc.entries += s.entries;
        acc.expired += s.expired;
        acc.volume = acc.volume.saturating_add(s.volume);
        acc.files_size = acc.files_size.saturating_add(s.files_size);
        acc.stats.hits += s.stats.hits;
        acc.stats.misses += s.stats.misses;
        acc
    });
    let size_limit = settings
        .iter()
        .fold(0u64, |acc, s| acc.saturating_add(s.size_limit));
    let differing: Vec<(usize, Vec<&String>)> = settings
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, s)| {
            let names: Vec<&String> = s
                .all
                .iter()
                .filter(|(k, v)| first.all.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .chain(first.all.keys().filter(|k| !s.all.contains_key(*k)))
                .collect();
            (!names.is_empty()).then_some((i, names))
        })
        .collect();
    let mut out = stdout();
    if json {
        let shard_stats: Vec<serde_json::Value> = summaries
            .iter()
            .enumerate()
            .map(|(i, s)| {
                serde_json::json!({
                    "shard": i, "entries": s.entries, "expired": s.expired, "volume": s.volume,
                    "files_size": s.files_size, "size_limit": settings[i].size_limit,
                })
            })
            .collect();
        let all: serde_json::Map<String, serde_json::Value> = first
            .all
            .iter()
            .map(|(k, v)| (k.clone(), render::json_sql(v)))
            .collect();
        let doc = serde_json::json!({
            "directory": target.dir.display().to_string(),
            "kind": match target.kind { Kind::Cache => "Cache", Kind::Fanout => "FanoutCache" },
            "shards": (target.kind == Kind::Fanout).then_some(target.shards.len()),
            "entries": total.entries,
            "expired": total.expired,
            "volume": total.volume,
            "files_size": total.files_size,
            "size_limit": size_limit,
            "eviction_policy": first.eviction_policy.as_str(),
            "cull_limit": first.cull_limit,
            "statistics": first.statistics,
            "hits": total.stats.hits,
            "misses": total.stats.misses,
            "tag_index": first.tag_index,
            "settings": all,
            "shard_stats": if target.kind == Kind::Fanout { serde_json::Value::Array(shard_stats) } else { serde_json::Value::Null },
        });
        writeln!(out, "{doc}").map_err(write_error)?;
        out.flush().map_err(write_error)?;
        return Ok(Outcome::Done);
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut row = |name: &str, value: String| lines.push((name.to_owned(), value));
    row("directory", target.dir.display().to_string());
    row(
        "kind",
        match target.kind {
            Kind::Cache => "Cache".to_owned(),
            Kind::Fanout => format!("FanoutCache, {} shards", target.shards.len()),
        },
    );
    row(
        "entries",
        format!("{} ({} expired)", total.entries, total.expired),
    );
    row(
        "volume",
        format!(
            "{} (value files {})",
            render::human_size(total.volume),
            render::human_size(total.files_size)
        ),
    );
    row(
        "size limit",
        match target.kind {
            Kind::Cache => render::human_size(size_limit),
            Kind::Fanout => format!(
                "{} ({} per shard)",
                render::human_size(size_limit),
                render::human_size(first.size_limit)
            ),
        },
    );
    row("eviction policy", first.eviction_policy.as_str().to_owned());
    row("cull limit", first.cull_limit.to_string());
    let counts = format!("{} hits, {} misses", total.stats.hits, total.stats.misses);
    row(
        "statistics",
        match (first.statistics, total.stats.hits + total.stats.misses) {
            (true, _) => format!("on: {counts}"),
            (false, 0) => "off (no hits or misses are counted; turn it on with `dcache settings \
                             DIR statistics on`)"
                .to_owned(),
            (false, _) => format!("off ({counts} recorded while it was on)"),
        },
    );
    row(
        "tag index",
        if first.tag_index { "on" } else { "off" }.to_owned(),
    );
    for (name, value) in &lines {
        writeln!(out, "{name:<16} {value}").map_err(write_error)?;
    }
    if target.kind == Kind::Fanout {
        writeln!(out, "shards").map_err(write_error)?;
        for (i, s) in summaries.iter().enumerate() {
            writeln!(
                out,
                "  {i:03}  {} {} ({} expired), volume {}",
                s.entries,
                entries_word(s.entries),
                s.expired,
                render::human_size(s.volume)
            )
            .map_err(write_error)?;
        }
    }
    match target.kind {
        Kind::Cache => writeln!(out, "settings"),
        Kind::Fanout => writeln!(out, "settings (of shard 000)"),
    }
    .map_err(write_error)?;
    let width = first.all.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &first.all {
        writeln!(out, "  {name:<width$}  {value}").map_err(write_error)?;
    }
    for (i, names) in differing {
        let names: Vec<String> = names
            .iter()
            .map(|n| {
                let value = settings[i]
                    .all
                    .get(*n)
                    .map_or_else(|| "(missing)".to_owned(), ToString::to_string);
                format!("{n} = {value}")
            })
            .collect();
        writeln!(out, "  shard {i:03} differs: {}", names.join(", ")).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(Outcome::Done)
}

// ----- keys and dump -----

/// What `keys` and `dump` list.
struct Listing {
    limit: Option<u64>,
    reverse: bool,
    tag: Option<Tag>,
    json: bool,
}

/// Visits the entries of every shard (shard 0 first, or the last shard first, newest first,
/// with `reverse`), up to the limit. `visit` returns whether the entry decoded cleanly; the
/// count of those that did not is returned.
fn each_entry<D: DiskFormat>(
    target: &Target<D>,
    listing: &Listing,
    values: bool,
    mut visit: impl FnMut(usize, &Cache<D>, EntryInfo) -> Result<bool, CliError>,
) -> Result<u64, CliError> {
    let mut order: Vec<usize> = (0..target.shards.len()).collect();
    if listing.reverse {
        order.reverse();
    }
    let mut seen = 0u64;
    let mut failed = 0u64;
    for i in order {
        let cache = &target.shards[i];
        let query = EntryQuery::new()
            .values(values)
            .reverse(listing.reverse)
            .tag_opt(listing.tag.clone());
        for entry in cache.entries(query)? {
            if listing.limit.is_some_and(|limit| seen >= limit) {
                return Ok(failed);
            }
            seen += 1;
            match entry {
                Ok(entry) => {
                    if !visit(i, cache, entry)? {
                        failed += 1;
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("dcache: {}skipping an entry: {e}", target.shard_prefix(i));
                }
            }
        }
    }
    Ok(failed)
}

/// Ends a listing: flushes, and reports entries that could not be decoded.
fn end_listing(mut out: Out, failed: u64) -> Result<Outcome, CliError> {
    out.flush().map_err(write_error)?;
    if failed == 0 {
        Ok(Outcome::Done)
    } else {
        eprintln!(
            "dcache: {failed} {} could not be decoded (shown as <undecodable ...> or skipped)",
            entries_word(failed)
        );
        Ok(Outcome::NotDone)
    }
}

/// The key of a listed entry as text, or a marker and a note on stderr.
fn key_text(entry: &EntryInfo, prefix: &str) -> (String, bool) {
    match &entry.key {
        Ok(key) => (render::text(key), true),
        Err(e) => {
            eprintln!(
                "dcache: {prefix}row {}: cannot decode its key: {e}",
                entry.rowid
            );
            (
                format!("<undecodable key {}>", column_text(&entry.key_column)),
                false,
            )
        }
    }
}

fn column_text(column: &dcache::disk::SqlValue) -> String {
    use dcache::disk::SqlValue;
    match column {
        SqlValue::Blob(b) => format!("hex:{}", render::hex(b)),
        other => other.to_string(),
    }
}

fn column_json(column: &dcache::disk::SqlValue) -> serde_json::Value {
    render::json_sql(column)
}

#[derive(Serialize)]
struct KeyLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<usize>,
    rowid: i64,
    key: serde_json::Value,
    key_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_column: Option<serde_json::Value>,
}

impl KeyLine {
    fn new(shard: Option<usize>, entry: &EntryInfo) -> Self {
        match &entry.key {
            Ok(key) => {
                let (key, key_type) = render::json_value(key);
                KeyLine {
                    shard,
                    rowid: entry.rowid,
                    key,
                    key_type: Some(key_type),
                    key_error: None,
                    key_column: None,
                }
            }
            Err(e) => KeyLine {
                shard,
                rowid: entry.rowid,
                key: serde_json::Value::Null,
                key_type: None,
                key_error: Some(e.to_string()),
                key_column: Some(column_json(&entry.key_column)),
            },
        }
    }
}

fn keys<D: DiskFormat>(target: &Target<D>, listing: &Listing) -> Result<Outcome, CliError> {
    let mut out = stdout();
    let failed = each_entry(target, listing, false, |i, _, entry| {
        if listing.json {
            let line = KeyLine::new(target.shard_number(i), &entry);
            serde_json::to_writer(&mut out, &line).map_err(|e| write_error(e.into()))?;
            writeln!(out).map_err(write_error)?;
            Ok(line.key_error.is_none())
        } else {
            let (text, ok) = key_text(&entry, &target.shard_prefix(i));
            writeln!(out, "{text}").map_err(write_error)?;
            Ok(ok)
        }
    })?;
    end_listing(out, failed)
}

/// A listed entry's value: decoded, summarized (too large), or not decodable.
enum Shown {
    Value(Value),
    Summary(String),
    Error(String),
}

fn shown<D: DiskFormat>(cache: &Cache<D>, entry: &EntryInfo, max_size: u64) -> Shown {
    if entry.value_size() > max_size {
        return Shown::Summary(render::summary(entry));
    }
    match cache.decode_value(entry) {
        Ok(v) => Shown::Value(v),
        Err(e) => Shown::Error(e.to_string()),
    }
}

#[derive(Serialize)]
struct DumpLine<'a> {
    #[serde(flatten)]
    key: KeyLine,
    raw: bool,
    value: serde_json::Value,
    value_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_error: Option<String>,
    stored: String,
    value_size: u64,
    mode: u8,
    filename: Option<&'a str>,
    store_time: Option<f64>,
    expire_time: Option<f64>,
    expired: bool,
    access_time: Option<f64>,
    access_count: u64,
    tag: serde_json::Value,
    tag_type: Option<&'static str>,
}

fn dump<D: DiskFormat>(
    target: &Target<D>,
    listing: &Listing,
    max_size: u64,
    when: When,
) -> Result<Outcome, CliError> {
    let total = if listing.tag.is_none() {
        let mut n = 0u64;
        for shard in &target.shards {
            n += shard.len()?;
        }
        listing.limit.map_or(Some(n), |l| Some(n.min(l)))
    } else {
        None
    };
    let progress = Progress::start(when, "dumping", total, None);
    let now = SystemTime::now();
    let mut out = stdout();
    let failed = each_entry(target, listing, true, |i, cache, entry| {
        progress.inc();
        let prefix = target.shard_prefix(i);
        let value = shown(cache, &entry, max_size);
        let expired = entry.is_expired_at(now);
        if listing.json {
            let (json, value_type, summary, value_error) = match &value {
                Shown::Value(v) => {
                    let (json, ty) = render::json_value(v);
                    (json, Some(ty), None, None)
                }
                Shown::Summary(s) => (serde_json::Value::Null, None, Some(s.clone()), None),
                Shown::Error(e) => (serde_json::Value::Null, None, None, Some(e.clone())),
            };
            let (tag, tag_type) = entry
                .tag
                .as_ref()
                .map_or((serde_json::Value::Null, None), |t| {
                    let (json, ty) = render::json_value(&render::tag_value(t));
                    (json, Some(ty))
                });
            let ok = entry.key.is_ok() && value_error.is_none();
            let line = DumpLine {
                key: KeyLine::new(target.shard_number(i), &entry),
                raw: entry.raw,
                value: json,
                value_type,
                summary,
                value_error,
                stored: render::stored_kind(&entry),
                value_size: entry.value_size(),
                mode: entry.mode.0,
                filename: entry.filename.as_deref(),
                store_time: entry.store_time.map(unix_seconds),
                expire_time: entry.expire_time.map(unix_seconds),
                expired,
                access_time: entry.access_time.map(unix_seconds),
                access_count: entry.access_count,
                tag,
                tag_type,
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| write_error(e.into()))?;
            writeln!(out).map_err(write_error)?;
            if let Shown::Error(e) = &value {
                eprintln!(
                    "dcache: {prefix}row {}: cannot decode its value: {e}",
                    entry.rowid
                );
            }
            return Ok(ok);
        }
        let (key, key_ok) = key_text(&entry, &prefix);
        let (value, value_ok) = match value {
            Shown::Value(v) => (render::text(&v), true),
            Shown::Summary(s) => (s, true),
            Shown::Error(e) => {
                eprintln!(
                    "dcache: {prefix}row {}: cannot decode its value: {e}",
                    entry.rowid
                );
                ("<undecodable value>".to_owned(), false)
            }
        };
        let expires = match entry.expire_time {
            None => "-".to_owned(),
            Some(t) if expired => format!("{} (expired)", render::rfc3339(t)),
            Some(t) => render::rfc3339(t),
        };
        let tag = entry
            .tag
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| render::text(&render::tag_value(t)));
        writeln!(out, "{key}\t{value}\t{expires}\t{tag}").map_err(write_error)?;
        Ok(key_ok && value_ok)
    })?;
    progress.finish();
    end_listing(out, failed)
}

// ----- single keys -----

fn get<D: DiskFormat>(
    target: &Target<D>,
    key: &Value,
    newline: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let (_, cache) = target.cache_for(key)?;
    if json {
        let Some(entry) = cache.get_value(key)? else {
            print_json(
                &serde_json::json!({"key": jsonvalue::to_json(key), "value": null, "found": false}),
            )?;
            return Ok(found(false, key, target));
        };
        let tag = entry
            .tag
            .as_ref()
            .map(|t| jsonvalue::to_json(&render::tag_value(t)));
        print_json(&serde_json::json!({
            "key": jsonvalue::to_json(key),
            "found": true,
            "value": jsonvalue::to_json(&entry.value),
            "value_type": entry.value.type_name(),
            "expire_time": entry.expire_time.map(unix_seconds),
            "tag": tag,
        }))?;
        return Ok(Outcome::Done);
    }
    let Some(info) = cache.entry_info(key)? else {
        return Ok(found(false, key, target));
    };
    let terminal = std::io::stdout().is_terminal();
    let mut out = stdout();
    if info.in_file() && matches!(info.mode, Mode::BINARY | Mode::TEXT) {
        let is_text = info.mode == Mode::TEXT;
        if !is_text && terminal && info.size > TERMINAL_BYTES_LIMIT {
            return Err(refuse_binary(info.size));
        }
        if is_text || !terminal {
            // Stream the file: a large value is never held in memory.
            let Some(mut reader) = cache.read(key)? else {
                return Ok(found(false, key, target));
            };
            std::io::copy(&mut reader, &mut out).map_err(|e| copy_error(&e, cache, &info))?;
            if is_text && newline {
                writeln!(out).map_err(write_error)?;
            }
            out.flush().map_err(write_error)?;
            return Ok(Outcome::Done);
        }
    }
    let Some(entry) = cache.get_value(key)? else {
        return Ok(found(false, key, target));
    };
    print_value(&entry.value, terminal, newline, &mut out)?;
    out.flush().map_err(write_error)?;
    Ok(Outcome::Done)
}

/// Prints a value for `get`: bytes raw (as python's repr on a terminal, refused there when
/// large), text as it is, anything else as python's repr; text and repr end with a newline
/// when asked.
pub(crate) fn print_value(
    value: &Value,
    terminal: bool,
    newline: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    match value {
        Value::Bytes(bytes) if !terminal => return out.write_all(bytes).map_err(write_error),
        Value::Bytes(bytes) if bytes.len() as u64 > TERMINAL_BYTES_LIMIT => {
            return Err(refuse_binary(bytes.len() as u64));
        }
        Value::Str(text) => out.write_all(text.as_bytes()).map_err(write_error)?,
        other => write!(out, "{other}").map_err(write_error)?,
    }
    if newline {
        writeln!(out).map_err(write_error)?;
    }
    Ok(())
}

fn refuse_binary(size: u64) -> CliError {
    CliError::Refused(format!(
        "the value is {} of bytes; redirect standard output to a file or a pipe to get it \
         (it is not printed to a terminal)",
        render::human_size(size)
    ))
}

/// An error while streaming a value file to stdout: reading the file, or writing stdout.
fn copy_error<D: DiskFormat>(e: &std::io::Error, cache: &Cache<D>, info: &EntryInfo) -> CliError {
    let file = info.filename.as_deref().map_or_else(
        || cache.directory().to_path_buf(),
        |f| cache.directory().join(f),
    );
    CliError::Io {
        what: "copying a value file to standard output",
        source: std::io::Error::new(e.kind(), format!("{} ({e})", file.display())),
    }
}

fn set<D: DiskFormat>(
    target: &Target<D>,
    key: &Value,
    value: Option<&Value>,
    opts: SetOptions,
    add: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let (_, cache) = target.cache_for(key)?;
    let stored = match (value, add) {
        (Some(value), false) => {
            cache.set_with(key, value, opts)?;
            true
        }
        (Some(value), true) => cache.add_with(key, value, opts)?,
        (None, false) => {
            let mut stdin = std::io::stdin().lock();
            let reader: &mut dyn Read = &mut stdin;
            cache.set_reader(key, reader, opts)?;
            true
        }
        (None, true) => cache.add_with(key, Value::Bytes(read_stdin()?), opts)?,
    };
    if json {
        print_json(&serde_json::json!({"key": jsonvalue::to_json(key), "stored": stored}))?;
    }
    if stored {
        Ok(Outcome::Done)
    } else {
        eprintln!(
            "dcache: key {key} already has a live entry in {}; not changed",
            target.dir.display()
        );
        Ok(Outcome::NotDone)
    }
}

// ----- bulk operations -----

/// The entries of every shard, or `None` when one cannot be read.
pub(crate) fn total_len<D: DiskFormat>(shards: &[Cache<D>]) -> Option<u64> {
    shards
        .iter()
        .try_fold(0u64, |acc, s| s.len().ok().map(|n| acc + n))
}

/// Runs `op` on every shard with a progress line counting removed entries (polled from the
/// cache's entry count); returns the total `op` reported.
fn bulk<D: DiskFormat>(
    target: &Target<D>,
    when: When,
    label: &str,
    known_total: bool,
    op: impl Fn(&Cache<D>) -> dcache::cache::Result<u64>,
) -> Result<u64, CliError> {
    let before = total_len(&target.shards).unwrap_or(0);
    let shards = target.shards.clone();
    let poll = Box::new(move || total_len(&shards).map(|left| before.saturating_sub(left)));
    let progress = Progress::start(when, label, known_total.then_some(before), Some(poll));
    let mut total = 0u64;
    for (i, shard) in target.shards.iter().enumerate() {
        if target.kind == Kind::Fanout {
            progress.label(&format!("{label} shard {i:03}"));
        }
        total += op(shard).map_err(|e| {
            CliError::from(e).context(format!("{label} {}", shard.directory().display()))
        })?;
    }
    progress.finish();
    Ok(total)
}

fn cull<D: DiskFormat>(target: &Target<D>, when: When, json: bool) -> Result<Outcome, CliError> {
    let removed = bulk(target, when, "culling", false, Cache::cull)?;
    let mut volume = 0u64;
    let mut limit = 0u64;
    for shard in &target.shards {
        volume = volume.saturating_add(shard.volume()?);
        limit = limit.saturating_add(shard.settings().size_limit);
    }
    report(
        json,
        &format!(
            "removed {removed} {}; volume {} (size limit {})",
            entries_word(removed),
            render::human_size(volume),
            render::human_size(limit)
        ),
        &serde_json::json!({"removed": removed, "volume": volume, "size_limit": limit}),
    )
}

fn clear<D: DiskFormat>(
    target: &Target<D>,
    yes: bool,
    when: When,
    json: bool,
) -> Result<Outcome, CliError> {
    let entries = total_len(&target.shards).unwrap_or(0);
    if !yes {
        let question = format!(
            "Remove all {entries} {} from {}?",
            entries_word(entries),
            target.dir.display()
        );
        let terminal = std::io::stdin().is_terminal();
        if !confirm(
            &question,
            terminal,
            &mut std::io::stdin().lock(),
            &mut std::io::stderr(),
        )? {
            eprintln!("dcache: not cleared");
            return Ok(Outcome::NotDone);
        }
    }
    let removed = bulk(target, when, "clearing", true, Cache::clear)?;
    report(
        json,
        &format!("removed {removed} {}", entries_word(removed)),
        &serde_json::json!({ "removed": removed }),
    )
}

/// Asks `question` on `prompt` and reads the answer from `input`: true for `y` or `yes`.
/// Refuses (an error) when standard input is not a terminal: nobody is there to answer.
pub(crate) fn confirm(
    question: &str,
    terminal: bool,
    input: &mut impl BufRead,
    prompt: &mut impl Write,
) -> Result<bool, CliError> {
    if !terminal {
        return Err(CliError::Refused(format!(
            "refusing without --yes: standard input is not a terminal to ask on ({question})"
        )));
    }
    write!(prompt, "{question} [y/N] ")
        .and_then(|()| prompt.flush())
        .map_err(|e| CliError::Io {
            what: "writing to standard error",
            source: e,
        })?;
    let mut answer = String::new();
    input.read_line(&mut answer).map_err(|e| CliError::Io {
        what: "reading the answer from standard input",
        source: e,
    })?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn check<D: DiskFormat>(
    target: &Target<D>,
    fix: bool,
    when: When,
    json: bool,
) -> Result<Outcome, CliError> {
    let run = |fix: bool, label: &str| -> Result<Vec<(usize, Warning)>, CliError> {
        let n = target.shards.len();
        let progress = Progress::start(when, label, (n > 1).then_some(n as u64), None);
        let mut findings = Vec::new();
        for (i, shard) in target.shards.iter().enumerate() {
            if target.kind == Kind::Fanout {
                progress.label(&format!("{label} shard {i:03}"));
            }
            let mode = if fix {
                CheckMode::Fix
            } else {
                CheckMode::Report
            };
            let warnings = shard.check(mode).map_err(|e| {
                CliError::from(e).context(format!("checking {}", shard.directory().display()))
            })?;
            findings.extend(warnings.into_iter().map(|w| (i, w)));
            progress.set(i as u64 + 1);
        }
        progress.finish();
        Ok(findings)
    };
    let findings = run(fix, if fix { "repairing" } else { "checking" })?;
    if json {
        let remaining = if fix {
            run(false, "checking again")?
        } else {
            findings.clone()
        };
        let list = |items: &[(usize, Warning)]| -> Vec<serde_json::Value> {
            items
                .iter()
                .map(|(i, w)| {
                    serde_json::json!({
                        "shard": target.shard_number(*i),
                        "kind": warning_kind(w),
                        "message": w.to_string(),
                    })
                })
                .collect()
        };
        print_json(&serde_json::json!({
            "directory": target.dir.display().to_string(),
            "ok": remaining.is_empty(),
            "fixed": fix,
            "findings": list(&findings),
            "remaining": list(&remaining),
        }))?;
        return Ok(if remaining.is_empty() {
            Outcome::Done
        } else {
            Outcome::NotDone
        });
    }
    let mut out = stdout();
    for (i, warning) in &findings {
        let verb = if fix { "fixing: " } else { "" };
        writeln!(out, "{}{verb}{warning}", target.shard_prefix(*i)).map_err(write_error)?;
    }
    let remaining = if fix {
        run(false, "checking again")?
    } else {
        findings.clone()
    };
    if fix {
        for (i, warning) in &remaining {
            writeln!(out, "{}still: {warning}", target.shard_prefix(*i)).map_err(write_error)?;
        }
    }
    let problems = |n: usize| if n == 1 { "problem" } else { "problems" };
    let summary = match (fix, findings.len(), remaining.len()) {
        (_, 0, 0) => "no problems found".to_owned(),
        (false, n, _) => format!("{n} {} found; run with --fix to repair", problems(n)),
        (true, n, 0) => format!("{n} {} found and fixed", problems(n)),
        (true, n, left) => format!("{n} {} found, {left} left after fixing", problems(n)),
    };
    writeln!(out, "{summary}").map_err(write_error)?;
    if fix
        && remaining
            .iter()
            .any(|(_, w)| matches!(w, Warning::UnknownFile { .. }))
    {
        writeln!(
            out,
            "note: unknown files younger than {} s are kept (a writer may be about to commit \
             them); check again later",
            dcache::cache::UNKNOWN_FILE_GRACE.as_secs()
        )
        .map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(if remaining.is_empty() {
        Outcome::Done
    } else {
        Outcome::NotDone
    })
}

/// A finding's kind for JSON: its variant name in snake case (`missing_file`).
fn warning_kind(w: &Warning) -> String {
    let debug = format!("{w:?}");
    let name = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn vacuum<D: DiskFormat>(target: &Target<D>, when: When, json: bool) -> Result<Outcome, CliError> {
    let n = target.shards.len();
    let progress = Progress::start(when, "vacuuming", (n > 1).then_some(n as u64), None);
    let mut before = 0u64;
    let mut after = 0u64;
    for (i, shard) in target.shards.iter().enumerate() {
        if target.kind == Kind::Fanout {
            progress.label(&format!("vacuuming shard {i:03}"));
        }
        before = before.saturating_add(shard.volume()?);
        shard.vacuum().map_err(|e| {
            CliError::from(e).context(format!("vacuuming {}", shard.directory().display()))
        })?;
        after = after.saturating_add(shard.volume()?);
        progress.set(i as u64 + 1);
    }
    progress.finish();
    report(
        json,
        &format!(
            "volume {} -> {}",
            render::human_size(before),
            render::human_size(after)
        ),
        &serde_json::json!({"volume_before": before, "volume_after": after}),
    )
}

/// All of standard input, as the bytes of a value.
fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Io {
            what: "reading standard input",
            source: e,
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arguments_parse_or_explain() {
        let plain = KeyType::default();
        assert_eq!(typed("42", plain).ok(), Some(Value::from("42")));
        let int = KeyType {
            int: true,
            ..KeyType::default()
        };
        assert_eq!(typed("-42", int).ok(), Some(Value::from(-42)));
        let err = typed("4x", int).unwrap_err().to_string();
        assert!(err.contains("not an integer"), "{err}");
        let float = KeyType {
            float: true,
            ..KeyType::default()
        };
        assert_eq!(typed("1.5", float).ok(), Some(Value::from(1.5)));
        assert!(typed("nan", float).is_err());
        let hex = KeyType {
            bytes_hex: true,
            ..KeyType::default()
        };
        assert_eq!(typed("00ff", hex).ok(), Some(Value::from(vec![0u8, 255])));
        assert!(typed("0", hex).is_err());
        let value = ValueType {
            value_int: true,
            ..ValueType::default()
        };
        assert_eq!(typed_value("7", value).ok(), Some(Value::from(7)));
    }

    #[test]
    fn confirmation_asks_on_a_terminal_and_refuses_elsewhere() {
        let mut prompt = Vec::new();
        for (answer, expected) in [
            ("y\n", true),
            ("YES\n", true),
            ("n\n", false),
            ("\n", false),
            ("", false),
        ] {
            prompt.clear();
            let yes = confirm(
                "Remove all 3 entries from /c?",
                true,
                &mut answer.as_bytes(),
                &mut prompt,
            );
            assert_eq!(yes.ok(), Some(expected), "{answer:?}");
            assert_eq!(prompt, b"Remove all 3 entries from /c? [y/N] ");
        }
        prompt.clear();
        let err = confirm("Remove?", false, &mut "y\n".as_bytes(), &mut prompt).unwrap_err();
        assert!(err.to_string().contains("without --yes"), "{err}");
        assert!(prompt.is_empty(), "nothing asked without a terminal");
    }

    #[test]
    fn get_prints_bytes_raw_in_pipes_and_as_repr_on_terminals() {
        let print = |value: &Value, terminal: bool, newline: bool| {
            let mut out = Vec::new();
            print_value(value, terminal, newline, &mut out).map(|()| out)
        };
        let bytes = Value::from(b"\x00a\n".to_vec());
        assert_eq!(
            print(&bytes, false, true).ok(),
            Some(b"\x00a\n".to_vec()),
            "raw, no newline added"
        );
        assert_eq!(
            print(&bytes, true, true).ok(),
            Some(b"b'\\x00a\\n'\n".to_vec())
        );
        let large = Value::from(vec![0u8; 5000]);
        assert!(print(&large, false, true).is_ok_and(|out| out.len() == 5000));
        let refused = print(&large, true, true).unwrap_err().to_string();
        assert!(refused.contains("redirect standard output"), "{refused}");
        assert_eq!(
            print(&Value::from("héllo"), true, true).ok(),
            Some("héllo\n".as_bytes().to_vec())
        );
        assert_eq!(
            print(&Value::from("héllo"), false, false).ok(),
            Some("héllo".as_bytes().to_vec())
        );
        assert_eq!(
            print(&Value::Tuple(vec![Value::None]), false, true).ok(),
            Some(b"(None,)\n".to_vec())
        );
    }
}
