//! `init` (create a cache with chosen settings) and `settings` (read or change them).

use std::io::Write;
use std::path::Path;

use dcache::disk::SqlValue;
use dcache::{Cache, DiskFormat, FanoutCache};

use crate::cli::InitSettings;
use crate::commands::{Global, Outcome, print_json, stdout, write_error};
use crate::error::CliError;
use crate::render;
use crate::target::{self, Access, Kind, Target};
use crate::units;

/// The settings python-diskcache knows, with how a value is read from the command line.
const KNOWN: [(&str, SettingType); 13] = [
    ("statistics", SettingType::Bool),
    ("tag_index", SettingType::Bool),
    ("eviction_policy", SettingType::Text),
    ("size_limit", SettingType::Size),
    ("cull_limit", SettingType::Int),
    ("sqlite_auto_vacuum", SettingType::Int),
    ("sqlite_cache_size", SettingType::Int),
    ("sqlite_journal_mode", SettingType::Text),
    ("sqlite_mmap_size", SettingType::Size),
    ("sqlite_synchronous", SettingType::Int),
    ("disk_min_file_size", SettingType::Size),
    ("disk_pickle_protocol", SettingType::Int),
    ("disk_compress_level", SettingType::Int),
];

/// How a setting's value is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettingType {
    /// 0/1, true/false, on/off, yes/no; stored as python stores `bool`s (an integer).
    Bool,
    /// An integer.
    Int,
    /// A size with optional units, stored as an integer.
    Size,
    /// A name.
    Text,
}

/// Reads `text` as the value of setting `name`, in the type python stores for it. Unknown
/// names (python stores any setting) are an integer, a float or text, whichever reads.
pub(crate) fn parse_setting(name: &str, text: &str) -> Result<SqlValue, CliError> {
    if dcache::cache::METADATA.contains(&name) {
        return Err(CliError::Usage(format!(
            "{name} is a counter the cache maintains, not a setting"
        )));
    }
    let ty = KNOWN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    let bad = |why: &str| CliError::Usage(format!("{name}: {text:?} {why}"));
    Ok(match ty {
        Some(SettingType::Bool) => match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => SqlValue::Integer(1),
            "0" | "false" | "off" | "no" => SqlValue::Integer(0),
            _ => return Err(bad("is not a boolean (1/0, true/false, on/off, yes/no)")),
        },
        Some(SettingType::Int) => {
            SqlValue::Integer(text.parse().map_err(|_| bad("is not an integer"))?)
        }
        Some(SettingType::Size) => {
            let bytes = units::parse_size(text).map_err(CliError::Usage)?;
            SqlValue::Integer(i64::try_from(bytes).map_err(|_| bad("is too large"))?)
        }
        Some(SettingType::Text) => SqlValue::Text(text.to_owned()),
        None => {
            if let Ok(i) = text.parse::<i64>() {
                SqlValue::Integer(i)
            } else if let Ok(f) = text.parse::<f64>() {
                SqlValue::Real(f)
            } else {
                SqlValue::Text(text.to_owned())
            }
        }
    })
}

/// The settings `init` was given, by name.
fn chosen(settings: &InitSettings) -> Result<Vec<(String, SqlValue)>, CliError> {
    let mut out: Vec<(String, SqlValue)> = Vec::new();
    let mut put = |name: &str, value: SqlValue| out.push((name.to_owned(), value));
    if settings.statistics {
        put("statistics", SqlValue::Integer(1));
    }
    if settings.tag_index {
        put("tag_index", SqlValue::Integer(1));
    }
    let int = |v: u64| SqlValue::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    if let Some(p) = &settings.eviction_policy {
        put("eviction_policy", SqlValue::Text(p.clone()));
    }
    if let Some(v) = settings.size_limit {
        put("size_limit", int(v));
    }
    if let Some(v) = settings.cull_limit {
        put("cull_limit", int(v));
    }
    if let Some(v) = settings.sqlite_auto_vacuum {
        put("sqlite_auto_vacuum", SqlValue::Integer(v));
    }
    if let Some(v) = settings.sqlite_cache_size {
        put("sqlite_cache_size", SqlValue::Integer(v));
    }
    if let Some(v) = &settings.sqlite_journal_mode {
        put("sqlite_journal_mode", SqlValue::Text(v.clone()));
    }
    if let Some(v) = settings.sqlite_mmap_size {
        put("sqlite_mmap_size", int(v));
    }
    if let Some(v) = settings.sqlite_synchronous {
        put("sqlite_synchronous", SqlValue::Integer(v));
    }
    if let Some(v) = settings.disk_min_file_size {
        put("disk_min_file_size", int(v));
    }
    if let Some(v) = settings.disk_pickle_protocol {
        put("disk_pickle_protocol", SqlValue::Integer(i64::from(v)));
    }
    for extra in &settings.extra {
        let Some((name, value)) = extra.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--setting {extra:?}: give NAME=VALUE, e.g. --setting disk_compress_level=6"
            )));
        };
        let value = parse_setting(name, value)?;
        out.retain(|(n, _)| n != name);
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// `dcache init DIR`: creates a Cache (or a FanoutCache of `shards`) with the chosen
/// settings; a directory that already holds a cache is refused.
pub(crate) fn init<D: DiskFormat>(
    dir: &Path,
    shards: Option<u16>,
    settings: &InitSettings,
    disk: &D,
    global: Global,
) -> Result<Outcome, CliError> {
    if let Ok(kind) = target::detect(dir, Access::Read) {
        let what = match kind {
            Kind::Cache => "a Cache",
            Kind::Fanout => "a FanoutCache",
        };
        return Err(CliError::Refused(format!(
            "{} already holds {what}; show or change its settings with `dcache settings {}`",
            dir.display(),
            dir.display()
        )));
    }
    let chosen = chosen(settings)?;
    let created = |e: CliError| e.context(format!("cannot create a cache in {}", dir.display()));
    let caches: Vec<Cache<D>> = match shards {
        None => {
            let mut builder = Cache::builder().disk(disk.clone()).timeout(global.timeout);
            for (name, value) in &chosen {
                builder = builder.setting(name, value.clone());
            }
            vec![builder.open(dir).map_err(|e| created(e.into()))?]
        }
        Some(n) => {
            // The fanout builder takes `size_limit` as the total of all shards.
            let mut shard = Cache::builder().disk(disk.clone());
            for (name, value) in &chosen {
                shard = shard.setting(name, value.clone());
            }
            let fanout = FanoutCache::builder()
                .shards(usize::from(n))
                .timeout(global.timeout)
                .cache(shard)
                .open(dir)
                .map_err(|e| created(e.into()))?;
            fanout.shards().to_vec()
        }
    };
    let first = caches[0].settings();
    let kind = if shards.is_some() {
        "FanoutCache"
    } else {
        "Cache"
    };
    if global.json {
        print_json(&serde_json::json!({
            "directory": dir.display().to_string(),
            "kind": kind,
            "shards": shards,
            "settings": settings_json(&first.all),
        }))?;
        return Ok(Outcome::Done);
    }
    let mut out = stdout();
    match shards {
        None => writeln!(out, "created a Cache in {}", dir.display()),
        Some(n) => writeln!(
            out,
            "created a FanoutCache of {n} shards in {}",
            dir.display()
        ),
    }
    .map_err(write_error)?;
    for (name, _) in &chosen {
        let mut value = first
            .all
            .get(name)
            .map_or_else(String::new, |v| shown(name, v));
        if let (Some(n), "size_limit") = (shards, name.as_str()) {
            value = format!("{value} per shard, {n} shards");
        }
        writeln!(out, "  {name} = {value}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(Outcome::Done)
}

/// A setting's value as text, sizes with their readable form: `1073741824 (1.0 GiB)`.
fn shown(name: &str, value: &SqlValue) -> String {
    let size = KNOWN
        .iter()
        .any(|(n, t)| *n == name && *t == SettingType::Size);
    match value {
        SqlValue::Integer(i) if size && *i >= 1024 => {
            format!("{i} ({})", render::human_size(*i as u64))
        }
        SqlValue::Real(f) if size && *f >= 1024.0 && f.fract() == 0.0 => {
            format!("{value} ({})", render::human_size(*f as u64))
        }
        SqlValue::Text(t) => t.clone(),
        other => other.to_string(),
    }
}

fn settings_json(
    all: &std::collections::BTreeMap<String, SqlValue>,
) -> serde_json::Map<String, serde_json::Value> {
    all.iter()
        .map(|(k, v)| (k.clone(), render::json_sql(v)))
        .collect()
}

/// `dcache settings DIR [NAME [VALUE]]`.
pub(crate) fn settings<D: DiskFormat>(
    target: &Target<D>,
    name: Option<&str>,
    value: Option<&str>,
    json: bool,
) -> Result<Outcome, CliError> {
    let first = target.shards[0].settings();
    let mut out = stdout();
    let Some(name) = name else {
        if json {
            print_json(&serde_json::Value::Object(settings_json(&first.all)))?;
            return Ok(Outcome::Done);
        }
        let width = first.all.keys().map(String::len).max().unwrap_or(0);
        for (name, value) in &first.all {
            writeln!(out, "{name:<width$}  {}", shown(name, value)).map_err(write_error)?;
        }
        if target.kind == Kind::Fanout {
            writeln!(
                out,
                "(shard 000 of {}; size_limit is per shard)",
                target.shards.len()
            )
            .map_err(write_error)?;
        }
        out.flush().map_err(write_error)?;
        return Ok(Outcome::Done);
    };
    let Some(text) = value else {
        let Some(current) = first.all.get(name) else {
            let known: Vec<&str> = first.all.keys().map(String::as_str).collect();
            return Err(CliError::Usage(format!(
                "{} has no setting {name:?}; it has: {}",
                target.dir.display(),
                known.join(", ")
            )));
        };
        if json {
            print_json(&serde_json::json!({ name: render::json_sql(current) }))?;
        } else {
            writeln!(out, "{}", shown(name, current))
                .and_then(|()| out.flush())
                .map_err(write_error)?;
        }
        return Ok(Outcome::Done);
    };
    let mut value = parse_setting(name, text)?;
    if name == "size_limit"
        && target.kind == Kind::Fanout
        && let SqlValue::Integer(total) = value
    {
        // python's FanoutCache(size_limit=N) gives each shard N / shards.
        value = SqlValue::Integer(total / target.shards.len() as i64);
    }
    let before = first.all.get(name).cloned();
    for shard in &target.shards {
        if shard.is_read_only() {
            return Err(CliError::Cache(dcache::cache::Error::ReadOnly {
                path: shard.directory().to_path_buf(),
            }));
        }
        shard.reset(name, value.clone()).map_err(|e| {
            CliError::from(e).context(format!(
                "cannot set {name} in {}",
                shard.directory().display()
            ))
        })?;
    }
    if json {
        print_json(&serde_json::json!({
            "name": name,
            "before": before.as_ref().map(render::json_sql),
            "value": render::json_sql(&value),
            "shards": (target.kind == Kind::Fanout).then_some(target.shards.len()),
        }))?;
        return Ok(Outcome::Done);
    }
    let before = before.map_or_else(|| "(unset)".to_owned(), |v| shown(name, &v));
    let per_shard = if target.kind == Kind::Fanout {
        format!(" in each of {} shards", target.shards.len())
    } else {
        String::new()
    };
    writeln!(
        out,
        "{name}: {before} -> {}{per_shard}",
        shown(name, &value)
    )
    .and_then(|()| out.flush())
    .map_err(write_error)?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_python_types() {
        assert!(matches!(
            parse_setting("statistics", "on"),
            Ok(SqlValue::Integer(1))
        ));
        assert!(matches!(
            parse_setting("tag_index", "False"),
            Ok(SqlValue::Integer(0))
        ));
        assert!(parse_setting("statistics", "maybe").is_err());
        assert!(matches!(
            parse_setting("size_limit", "2GiB"),
            Ok(SqlValue::Integer(2_147_483_648))
        ));
        assert!(matches!(
            parse_setting("cull_limit", "0"),
            Ok(SqlValue::Integer(0))
        ));
        assert!(parse_setting("cull_limit", "ten").is_err());
        assert!(matches!(
            parse_setting("eviction_policy", "none"),
            Ok(SqlValue::Text(ref s)) if s == "none"
        ));
        assert!(matches!(
            parse_setting("custom", "1.5"),
            Ok(SqlValue::Real(_))
        ));
        assert!(matches!(
            parse_setting("custom", "x"),
            Ok(SqlValue::Text(_))
        ));
        assert!(parse_setting("hits", "0").is_err());
    }
}
