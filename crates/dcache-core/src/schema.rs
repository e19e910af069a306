//! python-diskcache 5.6's schema, statement for statement.
//!
//! Two spellings differ from python's on purpose, for speed, with the same results. SQLite
//! (3.4x and later, as bundled) re-prepares a statement every time a new value is bound to a
//! bare `LIMIT ?` or `OFFSET ?` parameter, so they are written `LIMIT +?n` (`OFFSET +?n`): the
//! unary plus keeps the limit an ordinary run-time expression. And `PRAGMA page_count` is re-prepared on every run, unlike
//! its table-valued form (in [`VOLUME`]). Re-preparing cost about 40% of a `set`.
//!
//! The SQL text is python's, including the double-quoted string literals of the triggers
//! (`key = "count"`): SQLite resolves them as strings because the bundled SQLite keeps
//! double-quoted strings enabled, and a `sqlite_master` identical to python's keeps
//! `check()` and schema comparisons simple on both sides.

/// The number of pages in the database (`PRAGMA page_count`, without its re-prepare per run)
/// and `Settings.size`: what python's `volume()` adds up.
pub(crate) const VOLUME: &str = "SELECT (SELECT page_count FROM pragma_page_count()), \
     (SELECT value FROM Settings WHERE key = 'size')";

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

/// `live` rows: `expire_time IS NULL OR expire_time > now`.
pub(crate) const SELECT_LIVE: &str = "SELECT rowid, expire_time, tag, mode, filename, value, size \
     FROM Cache WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
/// The value columns of a live row, for reads that need neither its expiry time nor its tag.
pub(crate) const SELECT_LIVE_VALUE: &str = "SELECT mode, filename, value, size FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
pub(crate) const SELECT_ROW: &str =
    "SELECT rowid, filename, expire_time FROM Cache WHERE key = ?1 AND raw = ?2";
pub(crate) const SELECT_LIVE_ROWID: &str = "SELECT rowid, filename FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
pub(crate) const INSERT_ROW: &str = "INSERT INTO Cache(key, raw, store_time, expire_time, \
     access_time, access_count, tag, size, mode, filename, value) \
     VALUES (?1, ?2, ?3, ?4, ?3, 0, ?5, ?6, ?7, ?8, ?9)";
pub(crate) const UPDATE_ROW: &str = "UPDATE Cache SET store_time = ?1, expire_time = ?2, \
     access_time = ?1, access_count = 0, tag = ?3, size = ?4, mode = ?5, filename = ?6, \
     value = ?7 WHERE rowid = ?8";
pub(crate) const DELETE_ROWID: &str = "DELETE FROM Cache WHERE rowid = ?1";
pub(crate) const SETTING_VALUE: &str = "SELECT value FROM Settings WHERE key = ?1";
pub(crate) const ADD_TO_SETTING: &str = "UPDATE Settings SET value = value + ?2 WHERE key = ?1";
pub(crate) const PUT_SETTING: &str = "INSERT OR REPLACE INTO Settings VALUES (?1, ?2)";
pub(crate) const PUT_METADATA: &str = "INSERT OR IGNORE INTO Settings VALUES (?1, 0)";
