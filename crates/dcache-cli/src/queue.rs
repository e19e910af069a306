//! `push`, `pull` and `peek`: python's queue operations on a Cache.

use std::io::{IsTerminal, Write};

use dcache::{DiskFormat, PushOptions, QueueKey, Side, Value};

use crate::commands::{Outcome, print_json, print_value, stdout, write_error};
use crate::error::CliError;
use crate::jsonvalue;
use crate::target::{Kind, Target};

/// The one cache of a queue command (python's FanoutCache has no queue operations).
fn queue_cache<D: DiskFormat>(target: &Target<D>) -> Result<&dcache::Cache<D>, CliError> {
    match target.kind {
        Kind::Cache => Ok(&target.shards[0]),
        Kind::Fanout => Err(CliError::Usage(format!(
            "{} is a FanoutCache, which has no queues (python's FanoutCache has no push or \
             pull); give one of its shard directories, or a Cache",
            target.dir.display()
        ))),
    }
}

fn key_json(key: &QueueKey) -> serde_json::Value {
    match key {
        QueueKey::Int(i) => serde_json::Value::from(*i),
        QueueKey::Text(s) => serde_json::Value::from(s.as_str()),
    }
}

/// `dcache push`: pushes `value` and prints its key.
pub(crate) fn push<D: DiskFormat>(
    target: &Target<D>,
    value: &Value,
    opts: PushOptions,
    json: bool,
) -> Result<Outcome, CliError> {
    let cache = queue_cache(target)?;
    let key = cache.push_with(value, opts)?;
    if json {
        print_json(&serde_json::json!({ "key": key_json(&key) }))?;
    } else {
        let mut out = stdout();
        writeln!(out, "{key}")
            .and_then(|()| out.flush())
            .map_err(write_error)?;
    }
    Ok(Outcome::Done)
}

/// `dcache pull` (`remove`) and `dcache peek`: prints the value at `side`; exit 1 when the
/// queue is empty.
pub(crate) fn pull<D: DiskFormat>(
    target: &Target<D>,
    prefix: Option<&str>,
    side: Side,
    remove: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let cache = queue_cache(target)?;
    let found = if remove {
        cache.pull::<Value>(prefix, side)?
    } else {
        cache.peek::<Value>(prefix, side)?
    };
    let Some((key, entry)) = found else {
        if json {
            print_json(&serde_json::json!({"key": null, "value": null}))?;
        }
        eprintln!(
            "dcache: the queue{} in {} is empty",
            prefix.map_or_else(String::new, |p| format!(" {p:?}")),
            target.dir.display()
        );
        return Ok(Outcome::NotDone);
    };
    if json {
        print_json(&serde_json::json!({
            "key": key_json(&key),
            "value": jsonvalue::to_json(&entry.value),
            "value_type": entry.value.type_name(),
        }))?;
        return Ok(Outcome::Done);
    }
    let mut out = stdout();
    print_value(
        &entry.value,
        std::io::stdout().is_terminal(),
        true,
        &mut out,
    )?;
    out.flush().map_err(write_error)?;
    Ok(Outcome::Done)
}
