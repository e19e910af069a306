//! Cache settings: python-diskcache's `DEFAULT_SETTINGS`, persisted in the `Settings` table.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use dcache_disk::{SqlRef, SqlValue};

use crate::error::{Error, Result};

/// Which entries culling removes first once the cache reaches its size limit.
///
/// The policy is persisted (`eviction_policy` setting), so every process sharing the cache
/// uses the same one. Policies that record reads (LRU, LFU) turn every hit into a small write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EvictionPolicy {
    /// `none`: never cull by size (expired entries are still culled).
    None,
    /// `least-recently-stored` (the default): the oldest writes go first. Reads stay read-only.
    #[default]
    LeastRecentlyStored,
    /// `least-recently-used`: entries not read for the longest go first; every hit updates
    /// `access_time`.
    LeastRecentlyUsed,
    /// `least-frequently-used`: the least read entries go first; every hit increments
    /// `access_count`.
    LeastFrequentlyUsed,
}

impl EvictionPolicy {
    /// All policies, in python's order.
    pub const ALL: [EvictionPolicy; 4] = [
        EvictionPolicy::None,
        EvictionPolicy::LeastRecentlyStored,
        EvictionPolicy::LeastRecentlyUsed,
        EvictionPolicy::LeastFrequentlyUsed,
    ];

    /// The name python-diskcache stores: `none`, `least-recently-stored`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::None => "none",
            EvictionPolicy::LeastRecentlyStored => "least-recently-stored",
            EvictionPolicy::LeastRecentlyUsed => "least-recently-used",
            EvictionPolicy::LeastFrequentlyUsed => "least-frequently-used",
        }
    }

    /// The index python creates for the policy (`None` for `none`).
    pub(crate) fn index_sql(self) -> Option<&'static str> {
        match self {
            EvictionPolicy::None => None,
            EvictionPolicy::LeastRecentlyStored => {
                Some("CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time)")
            }
            EvictionPolicy::LeastRecentlyUsed => {
                Some("CREATE INDEX IF NOT EXISTS Cache_access_time ON Cache (access_time)")
            }
            EvictionPolicy::LeastFrequentlyUsed => {
                Some("CREATE INDEX IF NOT EXISTS Cache_access_count ON Cache (access_count)")
            }
        }
    }

    /// The index name, to check whether it exists.
    pub(crate) fn index_name(self) -> Option<&'static str> {
        match self {
            EvictionPolicy::None => None,
            EvictionPolicy::LeastRecentlyStored => Some("Cache_store_time"),
            EvictionPolicy::LeastRecentlyUsed => Some("Cache_access_time"),
            EvictionPolicy::LeastFrequentlyUsed => Some("Cache_access_count"),
        }
    }

    /// Whether a hit updates the row (LRU, LFU).
    #[must_use]
    pub fn updates_on_get(self) -> bool {
        matches!(
            self,
            EvictionPolicy::LeastRecentlyUsed | EvictionPolicy::LeastFrequentlyUsed
        )
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvictionPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        EvictionPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::UnknownEvictionPolicy { name: s.to_owned() })
    }
}

/// python-diskcache's `DEFAULT_SETTINGS`, in its order. A file-format contract: python and
/// dcache must agree on them for a directory created by one to behave the same in the other.
pub const DEFAULT_SETTINGS: [(&str, DefaultValue); 12] = [
    ("statistics", DefaultValue::Int(0)),
    ("tag_index", DefaultValue::Int(0)),
    (
        "eviction_policy",
        DefaultValue::Text("least-recently-stored"),
    ),
    ("size_limit", DefaultValue::Int(1 << 30)),
    ("cull_limit", DefaultValue::Int(10)),
    ("sqlite_auto_vacuum", DefaultValue::Int(1)),
    ("sqlite_cache_size", DefaultValue::Int(1 << 13)),
    ("sqlite_journal_mode", DefaultValue::Text("wal")),
    ("sqlite_mmap_size", DefaultValue::Int(1 << 26)),
    ("sqlite_synchronous", DefaultValue::Int(1)),
    ("disk_min_file_size", DefaultValue::Int(1 << 15)),
    ("disk_pickle_protocol", DefaultValue::Int(5)),
];

/// The `Settings` rows that are counters, not settings (python's `METADATA`).
pub const METADATA: [&str; 4] = ["count", "size", "hits", "misses"];

/// A default setting value (a `const`-friendly [`SqlValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'static str),
}

impl DefaultValue {
    /// As an [`SqlValue`].
    #[must_use]
    pub fn to_sql(self) -> SqlValue {
        match self {
            DefaultValue::Int(i) => SqlValue::Integer(i),
            DefaultValue::Text(s) => SqlValue::Text(s.to_owned()),
        }
    }
}

/// The settings of an open cache, as in effect.
///
/// Read them with [`Cache::settings`](crate::Cache::settings); change them with the builder
/// when opening or [`Cache::reset`](crate::Cache::reset) later. Every value is persisted in
/// the `Settings` table and shared with python-diskcache.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Settings {
    /// Count hits and misses (`statistics`, default false).
    pub statistics: bool,
    /// Index `(tag, rowid)` so `evict(tag)` is fast (`tag_index`, default false).
    pub tag_index: bool,
    /// The eviction policy (`eviction_policy`, default least-recently-stored).
    pub eviction_policy: EvictionPolicy,
    /// Bytes the cache aims to stay under (`size_limit`, default 1 GiB).
    pub size_limit: u64,
    /// Most entries one write culls (`cull_limit`, default 10; 0 disables culling on writes).
    pub cull_limit: u64,
    /// `PRAGMA auto_vacuum` (`sqlite_auto_vacuum`, default 1 = FULL).
    pub sqlite_auto_vacuum: i64,
    /// `PRAGMA cache_size` in pages (`sqlite_cache_size`, default 8192).
    pub sqlite_cache_size: i64,
    /// `PRAGMA journal_mode` (`sqlite_journal_mode`, default `wal`).
    pub sqlite_journal_mode: String,
    /// `PRAGMA mmap_size` in bytes (`sqlite_mmap_size`, default 64 MiB).
    pub sqlite_mmap_size: i64,
    /// `PRAGMA synchronous` (`sqlite_synchronous`, default 1 = NORMAL).
    pub sqlite_synchronous: i64,
    /// Every setting by name, including `disk_*` ones and names dcache does not interpret
    /// (python stores unknown settings too), as stored.
    pub all: BTreeMap<String, SqlValue>,
}

impl Default for Settings {
    fn default() -> Self {
        let all: BTreeMap<String, SqlValue> = DEFAULT_SETTINGS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_sql()))
            .collect();
        Settings::from_map(all).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl Settings {
    /// Interprets a complete map of settings.
    pub(crate) fn from_map(all: BTreeMap<String, SqlValue>) -> Result<Settings> {
        let get = |name: &str| -> Result<SqlRef<'_>> {
            all.get(name).map(SqlValue::as_ref).ok_or_else(|| {
                Error::invalid_setting(name, "missing", "every default setting must be present")
            })
        };
        Ok(Settings {
            statistics: parse_bool("statistics", get("statistics")?)?,
            tag_index: parse_bool("tag_index", get("tag_index")?)?,
            eviction_policy: parse_policy(get("eviction_policy")?)?,
            size_limit: parse_size_limit("size_limit", get("size_limit")?)?,
            cull_limit: parse_u64("cull_limit", get("cull_limit")?)?,
            sqlite_auto_vacuum: parse_range(
                "sqlite_auto_vacuum",
                get("sqlite_auto_vacuum")?,
                0,
                2,
            )?,
            sqlite_cache_size: parse_i64("sqlite_cache_size", get("sqlite_cache_size")?)?,
            sqlite_journal_mode: parse_journal_mode(get("sqlite_journal_mode")?)?,
            sqlite_mmap_size: parse_range(
                "sqlite_mmap_size",
                get("sqlite_mmap_size")?,
                0,
                i64::MAX,
            )?,
            sqlite_synchronous: parse_range(
                "sqlite_synchronous",
                get("sqlite_synchronous")?,
                0,
                3,
            )?,
            all,
        })
    }

    /// The value of any setting by name, as stored.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&SqlValue> {
        self.all.get(name)
    }
}

/// Validates one setting value; returns it normalized for storage.
pub(crate) fn validate(name: &str, value: &SqlValue) -> Result<()> {
    let v = value.as_ref();
    match name {
        "statistics" | "tag_index" => parse_bool(name, v).map(drop),
        "eviction_policy" => parse_policy(v).map(drop),
        "size_limit" => parse_size_limit(name, v).map(drop),
        "cull_limit" => parse_u64(name, v).map(drop),
        "sqlite_auto_vacuum" => parse_range(name, v, 0, 2).map(drop),
        "sqlite_synchronous" => parse_range(name, v, 0, 3).map(drop),
        "sqlite_mmap_size" => parse_range(name, v, 0, i64::MAX).map(drop),
        "sqlite_cache_size" => parse_i64(name, v).map(drop),
        "sqlite_journal_mode" => parse_journal_mode(v).map(drop),
        n if METADATA.contains(&n) => Err(Error::invalid_setting(
            name,
            value,
            "this is a counter maintained by the cache, not a setting",
        )),
        _ => Ok(()),
    }
}

/// Reads an integer; python's FanoutCache stores integral settings as REAL.
pub(crate) fn parse_i64(name: &str, v: SqlRef<'_>) -> Result<i64> {
    match v {
        SqlRef::Integer(i) => Ok(i),
        SqlRef::Real(f) => dcache_disk::integral_i64(f)
            .ok_or_else(|| Error::invalid_setting(name, v, "expected an integer")),
        _ => Err(Error::invalid_setting(name, v, "expected an integer")),
    }
}

fn parse_range(name: &str, v: SqlRef<'_>, lo: i64, hi: i64) -> Result<i64> {
    let i = parse_i64(name, v)?;
    if (lo..=hi).contains(&i) {
        Ok(i)
    } else {
        Err(Error::invalid_setting(
            name,
            v,
            &format!("expected an integer from {lo} to {hi}"),
        ))
    }
}

fn parse_u64(name: &str, v: SqlRef<'_>) -> Result<u64> {
    Ok(parse_range(name, v, 0, i64::MAX)? as u64)
}

/// `size_limit`: an integer, or a real as python's FanoutCache stores it (`size_limit / shards`,
/// fractional when the count does not divide it, e.g. 357913941.33 for 3 shards of 1 GiB).
/// Only compared with a whole number of bytes, so rounding down changes nothing.
fn parse_size_limit(name: &str, v: SqlRef<'_>) -> Result<u64> {
    match v {
        SqlRef::Real(f) if (0.0..9.0e18).contains(&f) => Ok(f.floor() as u64),
        _ => parse_u64(name, v),
    }
}

fn parse_bool(name: &str, v: SqlRef<'_>) -> Result<bool> {
    match parse_i64(name, v)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::invalid_setting(name, v, "expected 0 or 1")),
    }
}

fn parse_policy(v: SqlRef<'_>) -> Result<EvictionPolicy> {
    match v {
        SqlRef::Text(s) => s.parse(),
        _ => Err(Error::invalid_setting(
            "eviction_policy",
            v,
            "expected a policy name",
        )),
    }
}

fn parse_journal_mode(v: SqlRef<'_>) -> Result<String> {
    const MODES: [&str; 6] = ["delete", "truncate", "persist", "memory", "wal", "off"];
    match v {
        SqlRef::Text(s) if MODES.contains(&s.to_ascii_lowercase().as_str()) => {
            Ok(s.to_ascii_lowercase())
        }
        _ => Err(Error::invalid_setting(
            "sqlite_journal_mode",
            v,
            "expected one of delete, truncate, persist, memory, wal, off",
        )),
    }
}

/// As python names it (`"least-recently-stored"`, …).
impl serde::Serialize for EvictionPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_python() {
        let s = Settings::default();
        assert!(!s.statistics && !s.tag_index);
        assert_eq!(s.eviction_policy, EvictionPolicy::LeastRecentlyStored);
        assert_eq!((s.size_limit, s.cull_limit), (1_073_741_824, 10));
        assert_eq!((s.sqlite_auto_vacuum, s.sqlite_cache_size), (1, 8192));
        assert_eq!((s.sqlite_mmap_size, s.sqlite_synchronous), (67_108_864, 1));
        assert_eq!(s.sqlite_journal_mode, "wal");
        assert_eq!(s.get("disk_min_file_size"), Some(&SqlValue::Integer(32768)));
    }

    #[test]
    fn policies_round_trip_by_name() {
        for p in EvictionPolicy::ALL {
            assert_eq!(p.as_str().parse::<EvictionPolicy>().unwrap(), p);
        }
        assert!(matches!(
            "most-recently-used".parse::<EvictionPolicy>(),
            Err(Error::UnknownEvictionPolicy { .. })
        ));
    }

    #[test]
    fn real_integral_values_are_accepted() {
        assert_eq!(
            parse_u64("size_limit", SqlRef::Real(134_217_728.0)).unwrap(),
            134_217_728
        );
        assert!(parse_u64("cull_limit", SqlRef::Real(1.5)).is_err());
        // python's FanoutCache(shards=3) stores a third of 1 GiB.
        assert_eq!(
            parse_size_limit("size_limit", SqlRef::Real(357_913_941.333_333_3)).unwrap(),
            357_913_941
        );
        assert!(parse_size_limit("size_limit", SqlRef::Real(-1.0)).is_err());
        assert!(parse_size_limit("size_limit", SqlRef::Real(f64::NAN)).is_err());
        assert!(parse_u64("size_limit", SqlRef::Text("abc")).is_err());
        assert!(parse_u64("size_limit", SqlRef::Integer(-1)).is_err());
        assert!(validate("count", &SqlValue::Integer(1)).is_err());
        assert!(validate("my_own_setting", &SqlValue::Text("x".into())).is_ok());
    }
}
