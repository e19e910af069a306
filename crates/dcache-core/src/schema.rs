//! python-diskcache 5.6's schema, statement for statement: tables, indexes and triggers.
//! The statements that read and write rows are in [`crate::sql`], beside their rows.
//!
//! The SQL text is python's, including the double-quoted string literals of the triggers
//! (`key = "count"`): SQLite resolves them as strings because the bundled SQLite keeps
//! double-quoted strings enabled, and a `sqlite_master` identical to python's keeps
//! `check()` and schema comparisons simple on both sides.

/// The `Settings` table.
pub(crate) const CREATE_SETTINGS: &str =
    "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value)";

/// The `Cache` table.
pub(crate) const CREATE_CACHE: &str = "CREATE TABLE IF NOT EXISTS Cache ( rowid INTEGER PRIMARY KEY, \
     key BLOB, raw INTEGER, store_time REAL, expire_time REAL, access_time REAL, \
     access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT 0, mode INTEGER DEFAULT 0, \
     filename TEXT, value BLOB)";

/// The columns of `Cache`, in order, as `PRAGMA table_info` reports them.
pub(crate) const CACHE_COLUMNS: [&str; 12] = [
    "rowid",
    "key",
    "raw",
    "store_time",
    "expire_time",
    "access_time",
    "access_count",
    "tag",
    "size",
    "mode",
    "filename",
    "value",
];

/// Indexes every cache has, with their names.
pub(crate) const INDEXES: [(&str, &str); 2] = [
    (
        "Cache_key_raw",
        "CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw)",
    ),
    (
        "Cache_expire_time",
        "CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time)",
    ),
];

/// The triggers that keep `Settings.count` and `Settings.size` current.
pub(crate) const TRIGGERS: [(&str, &str); 5] = [
    (
        "Settings_count_insert",
        "CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON Cache FOR EACH ROW \
         BEGIN UPDATE Settings SET value = value + 1 WHERE key = \"count\"; END",
    ),
    (
        "Settings_count_delete",
        "CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON Cache FOR EACH ROW \
         BEGIN UPDATE Settings SET value = value - 1 WHERE key = \"count\"; END",
    ),
    (
        "Settings_size_insert",
        "CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW \
         BEGIN UPDATE Settings SET value = value + NEW.size WHERE key = \"size\"; END",
    ),
    (
        "Settings_size_update",
        "CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON Cache FOR EACH ROW \
         BEGIN UPDATE Settings SET value = value + NEW.size - OLD.size WHERE key = \"size\"; END",
    ),
    (
        "Settings_size_delete",
        "CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON Cache FOR EACH ROW \
         BEGIN UPDATE Settings SET value = value - OLD.size WHERE key = \"size\"; END",
    ),
];

/// The optional tag index.
pub(crate) const TAG_INDEX: &str = "Cache_tag_rowid";
pub(crate) const CREATE_TAG_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS Cache_tag_rowid ON Cache(tag, rowid)";
pub(crate) const DROP_TAG_INDEX: &str = "DROP INDEX IF EXISTS Cache_tag_rowid";
