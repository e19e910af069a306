//! `dcache load DIR [FILE]`: stores the entries `dcache dump --json` printed.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcache::{DiskFormat, SetOptions, Tag, Value};

use crate::commands::{Global, Outcome, entries_word, print_json, say};
use crate::error::CliError;
use crate::jsonvalue;
use crate::progress::Progress;
use crate::target::Target;

/// What one line of input holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// An entry to store.
    Entry {
        /// The key.
        key: Value,
        /// The value.
        value: Value,
        /// Its tag.
        tag: Option<Tag>,
        /// When it expires.
        expire_time: Option<SystemTime>,
    },
    /// An entry that had expired when dumped.
    Expired,
}

/// Reads one `dump --json` line; the error says what is wrong with it.
pub(crate) fn parse_line(text: &str) -> Result<Line, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = json
        .as_object()
        .ok_or("not a JSON object (dump --json prints one object per line)")?;
    if obj.get("expired").and_then(serde_json::Value::as_bool) == Some(true) {
        return Ok(Line::Expired);
    }
    for (field, why) in [
        ("key_error", "its key could not be decoded when dumped"),
        ("value_error", "its value could not be decoded when dumped"),
        (
            "summary",
            "its value was summarized, not dumped (dump with a larger --max-size, or without it)",
        ),
    ] {
        if obj.get(field).is_some_and(|v| !v.is_null()) {
            return Err(why.to_owned());
        }
    }
    let key = jsonvalue::from_json(obj.get("key").ok_or("no \"key\"")?)
        .map_err(|e| format!("key: {e}"))?;
    let value = jsonvalue::from_json(obj.get("value").ok_or("no \"value\"")?)
        .map_err(|e| format!("value: {e}"))?;
    let tag = match obj.get("tag") {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => Some(
            match jsonvalue::from_json(t).map_err(|e| format!("tag: {e}"))? {
                Value::Str(s) => Tag::Text(s),
                Value::Bytes(b) => Tag::Blob(b),
                Value::Int(i) => Tag::Integer(i),
                Value::Float(f) => Tag::Real(f),
                other => return Err(format!("tag {other} is not a str, bytes, int or float")),
            },
        ),
    };
    let expire_time = match obj.get("expire_time") {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => {
            let secs = t
                .as_f64()
                .ok_or("expire_time is not a number of Unix seconds")?;
            Some(
                UNIX_EPOCH
                    + Duration::try_from_secs_f64(secs)
                        .map_err(|_| "expire_time is not a time after 1970")?,
            )
        }
    };
    Ok(Line::Entry {
        key,
        value,
        tag,
        expire_time,
    })
}

/// Entries stored per transaction (per shard): one commit for many entries.
const BATCH: usize = 1000;

/// An entry read and waiting for its batch's transaction.
struct Pending {
    line: usize,
    shard: usize,
    key: Value,
    value: Value,
    opts: SetOptions,
}

/// Stores the batch, one transaction per shard; returns how many entries were stored.
fn flush<D: DiskFormat>(target: &Target<D>, batch: &mut Vec<Pending>) -> Result<u64, CliError> {
    let mut stored = 0u64;
    for (i, cache) in target.shards.iter().enumerate() {
        let mine: Vec<&Pending> = batch.iter().filter(|p| p.shard == i).collect();
        let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
            continue;
        };
        cache
            .transact(|c| {
                for p in &mine {
                    c.set_with(&p.key, &p.value, p.opts.clone())?;
                }
                Ok::<(), dcache::cache::Error>(())
            })
            .map_err(|e| {
                CliError::from(e).context(format!(
                    "storing the entries of lines {} to {} in {}",
                    first.line,
                    last.line,
                    cache.directory().display()
                ))
            })?;
        stored += mine.len() as u64;
    }
    batch.clear();
    Ok(stored)
}

/// `dcache load`.
pub(crate) fn load<D: DiskFormat>(
    target: &Target<D>,
    file: Option<&Path>,
    global: Global,
) -> Result<Outcome, CliError> {
    let read_error = |e: std::io::Error| CliError::Io {
        what: "reading the entries to load",
        source: e,
    };
    let (input, total): (Box<dyn Read>, Option<u64>) = match file {
        None => (Box::new(std::io::stdin().lock()), None),
        Some(path) if path.as_os_str() == "-" => (Box::new(std::io::stdin().lock()), None),
        Some(path) => {
            let open = || {
                std::fs::File::open(path).map_err(|e| CliError::Io {
                    what: "opening the file to load",
                    source: std::io::Error::new(e.kind(), format!("{} ({e})", path.display())),
                })
            };
            // Count the lines first, so progress can show the time left.
            let lines = BufReader::new(open()?).lines().count() as u64;
            (Box::new(open()?), Some(lines))
        }
    };
    let progress = Progress::start(global.when, "loading", total, None);
    let now = SystemTime::now();
    let (mut stored, mut expired, mut failed) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    for (n, line) in BufReader::new(input).lines().enumerate() {
        let line = line.map_err(read_error)?;
        progress.inc();
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(Line::Expired) => expired += 1,
            Ok(Line::Entry {
                key,
                value,
                tag,
                expire_time,
            }) => {
                let expire = match expire_time.map(|t| t.duration_since(now)) {
                    None => None,
                    Some(Ok(left)) => Some(left),
                    Some(Err(_)) => {
                        expired += 1;
                        continue;
                    }
                };
                let (shard, _) = target.cache_for(&key)?;
                batch.push(Pending {
                    line: n + 1,
                    shard: shard.unwrap_or(0),
                    key,
                    value,
                    opts: SetOptions::new().expire_opt(expire).tag_opt(tag),
                });
                if batch.len() >= BATCH {
                    stored += flush(target, &mut batch)?;
                }
            }
            Err(why) => {
                failed += 1;
                eprintln!("dcache: line {}: skipped: {why}", n + 1);
            }
        }
    }
    stored += flush(target, &mut batch)?;
    progress.finish();
    let outcome = if failed == 0 {
        Outcome::Done
    } else {
        Outcome::NotDone
    };
    if global.json {
        print_json(&serde_json::json!({
            "stored": stored, "expired": expired, "failed": failed,
        }))?;
    } else {
        say(&format!(
            "stored {stored} {}; skipped {expired} expired, {failed} that could not be loaded",
            entries_word(stored)
        ))?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines_parse() {
        let line = r#"{"key":{"$tuple":["user",7]},"value":{"name":"ada"},"tag":"t","expire_time":4102444800.0,"expired":false}"#;
        let Ok(Line::Entry {
            key,
            value,
            tag,
            expire_time,
        }) = parse_line(line)
        else {
            panic!("{line} parses");
        };
        assert_eq!(key, Value::Tuple(vec![Value::from("user"), Value::Int(7)]));
        assert_eq!(
            value,
            Value::Dict(vec![(Value::from("name"), Value::from("ada"))])
        );
        assert_eq!(tag, Some(Tag::Text("t".to_owned())));
        assert_eq!(
            expire_time,
            Some(UNIX_EPOCH + Duration::from_secs(4_102_444_800))
        );
        assert_eq!(
            parse_line(r#"{"key":1,"value":2,"expired":true}"#),
            Ok(Line::Expired)
        );
        let summarized = parse_line(r#"{"key":1,"value":null,"summary":"<file>"}"#);
        assert!(summarized.unwrap_err().contains("--max-size"));
        assert!(parse_line("[1]").is_err());
        assert!(parse_line(r#"{"key":{"$what":1},"value":1}"#).is_err());
    }
}
