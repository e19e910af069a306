//! The two floors of docs/benchmarks.md: the least an SQLite cache can do per operation
//! ([`SqliteFloor`]) and the least python-diskcache's on-disk format can do ([`FormatFloor`]).
//!
//! Both run with dcache's pragmas, read from [`DEFAULT_SETTINGS`]: WAL, synchronous NORMAL,
//! `cache_size` 8192 pages, `mmap_size` 64 MiB, `auto_vacuum` FULL. Each thread has its own
//! connection with every statement prepared once; writers in one process take a mutex (the
//! least a multi-threaded writer can do: SQLite's busy handler sleeps milliseconds).
//!
//! They stay honest minimal implementations: no serialization (keys are bound as TEXT,
//! values as BLOB), no connection pool, no error mapping, but every statement the format
//! requires.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcache::cache::{DEFAULT_SETTINGS, DefaultValue, METADATA};
use rusqlite::{Connection, OptionalExtension, Statement, params};

use crate::Result;
use crate::data::Rng;
use crate::target::{Ops, POPULATE_BATCH, Policy, Target};

/// The `sqlite_*` settings of [`DEFAULT_SETTINGS`] as pragmas, sorted by name as python
/// applies them: `(pragma, value)`.
#[must_use]
pub fn default_pragmas() -> Vec<(&'static str, String)> {
    let mut pragmas: Vec<(&'static str, String)> = DEFAULT_SETTINGS
        .iter()
        .filter_map(|(name, value)| {
            let pragma = name.strip_prefix("sqlite_")?;
            let value = match value {
                DefaultValue::Int(i) => i.to_string(),
                DefaultValue::Text(s) => (*s).to_owned(),
            };
            Some((pragma, value))
        })
        .collect();
    pragmas.sort_unstable();
    pragmas
}

/// Pragmas that belong to a connection (the others are stored in the database).
const PER_CONNECTION: [&str; 3] = ["cache_size", "mmap_size", "synchronous"];

/// Opens a connection with the per-connection pragmas; the busy timeout is python's default.
fn connect(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    for (pragma, value) in default_pragmas() {
        if PER_CONNECTION.contains(&pragma) {
            conn.execute_batch(&format!("PRAGMA {pragma} = {value}"))?;
        }
    }
    Ok(conn)
}

/// Creates `dir` and the database with every pragma applied before the schema (`auto_vacuum`
/// only takes effect on an empty database).
fn create(dir: &Path) -> Result<(PathBuf, Connection)> {
    fs::create_dir_all(dir)?;
    let db = dir.join("cache.db");
    let conn = Connection::open(&db)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    for (pragma, value) in default_pragmas() {
        // journal_mode answers with a row: query it rather than execute it.
        conn.query_row(&format!("PRAGMA {pragma} = {value}"), [], |_| Ok(()))
            .optional()?;
    }
    Ok((db, conn))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn lock(m: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stream(mut file: File, buf: &mut [u8]) -> Result<u64> {
    let mut total = 0u64;
    loop {
        match file.read(buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

// ----- sqlite-floor -----

/// `sqlite-floor`: a bare key/value table with its unique index, one prepared statement per
/// operation, autocommit. For the large values of W3 it is a plain file per key, written and
/// read whole (the least any cache storing values in files can do).
#[derive(Debug)]
pub struct SqliteFloor {
    dir: PathBuf,
    db: PathBuf,
    writer: Mutex<()>,
}

impl SqliteFloor {
    /// Creates the table in `dir` (the policy is ignored: the floor keeps no bookkeeping).
    ///
    /// # Errors
    ///
    /// SQLite and I/O errors.
    pub fn open(dir: &Path, _policy: Policy) -> Result<Box<dyn Target>> {
        let (db, conn) = create(dir)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT NOT NULL, value BLOB);
             CREATE UNIQUE INDEX IF NOT EXISTS kv_key ON kv (key);",
        )?;
        fs::create_dir_all(dir.join("files"))?;
        Ok(Box::new(SqliteFloor {
            dir: dir.to_path_buf(),
            db,
            writer: Mutex::new(()),
        }))
    }
}

const KV_SET: &str = "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const KV_GET: &str = "SELECT value FROM kv WHERE key = ?1";
const KV_DELETE: &str = "DELETE FROM kv WHERE key = ?1";

struct SqliteFloorOps<'c> {
    set: Statement<'c>,
    get: Statement<'c>,
    delete: Statement<'c>,
    writer: &'c Mutex<()>,
    files: PathBuf,
}

impl Target for SqliteFloor {
    fn with_ops(&self, f: &mut dyn FnMut(&mut dyn Ops) -> Result<()>) -> Result<()> {
        let conn = connect(&self.db)?;
        let mut ops = SqliteFloorOps {
            set: conn.prepare(KV_SET)?,
            get: conn.prepare(KV_GET)?,
            delete: conn.prepare(KV_DELETE)?,
            writer: &self.writer,
            files: self.dir.join("files"),
        };
        f(&mut ops)
    }

    fn populate(&self, keys: &mut dyn Iterator<Item = (String, Vec<u8>)>) -> Result<()> {
        let conn = connect(&self.db)?;
        let mut set = conn.prepare(KV_SET)?;
        let mut batch = Vec::with_capacity(POPULATE_BATCH);
        loop {
            batch.clear();
            batch.extend((&mut *keys).take(POPULATE_BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for (k, v) in &batch {
                set.execute(params![k, v])?;
            }
            conn.execute_batch("COMMIT")?;
        }
    }
}

impl Ops for SqliteFloorOps<'_> {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let _writing = lock(self.writer);
        self.set.execute(params![key, value])?;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get
            .query_row([key], |r| r.get::<_, Vec<u8>>(0))
            .optional()?)
    }

    fn delete(&mut self, key: &str) -> Result<bool> {
        let _writing = lock(self.writer);
        Ok(self.delete.execute([key])? > 0)
    }

    fn set_large(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let mut file = File::create(self.files.join(key))?;
        file.write_all(value)?;
        Ok(())
    }

    fn get_large(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.files.join(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn read_large(&mut self, key: &str, buf: &mut [u8]) -> Result<Option<u64>> {
        match File::open(self.files.join(key)) {
            Ok(file) => stream(file, buf).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

// ----- sqlite-format-floor -----

/// python-diskcache 5.6.3's schema (`diskcache/core.py`), statement for statement.
const FORMAT_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS Cache ( rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER,
        store_time REAL, expire_time REAL, access_time REAL, access_count INTEGER DEFAULT 0,
        tag BLOB, size INTEGER DEFAULT 0, mode INTEGER DEFAULT 0, filename TEXT, value BLOB);
    CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw);
    CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time);
    CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON Cache FOR EACH ROW
        BEGIN UPDATE Settings SET value = value + 1 WHERE key = \"count\"; END;
    CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON Cache FOR EACH ROW
        BEGIN UPDATE Settings SET value = value - 1 WHERE key = \"count\"; END;
    CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW
        BEGIN UPDATE Settings SET value = value + NEW.size WHERE key = \"size\"; END;
    CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON Cache FOR EACH ROW
        BEGIN UPDATE Settings SET value = value + NEW.size - OLD.size WHERE key = \"size\"; END;
    CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON Cache FOR EACH ROW
        BEGIN UPDATE Settings SET value = value - OLD.size WHERE key = \"size\"; END;
    DROP INDEX IF EXISTS Cache_tag_rowid;";

/// `sqlite-format-floor`: python-diskcache's exact statements per operation on its real schema
/// (triggers and indexes included), `BEGIN IMMEDIATE` for writes, every statement prepared, no
/// serialization. Large values go to `hh/hh/<28 hex>.val` files written before the row, as
/// python does; replaced files are removed after the commit.
#[derive(Debug)]
pub struct FormatFloor {
    dir: PathBuf,
    db: PathBuf,
    writer: Mutex<()>,
    lru: bool,
    page_size: i64,
    size_limit: i64,
    cull_limit: i64,
    min_file_size: usize,
}

fn setting_int(name: &str) -> i64 {
    DEFAULT_SETTINGS
        .iter()
        .find_map(|(n, v)| match v {
            DefaultValue::Int(i) if *n == name => Some(*i),
            _ => None,
        })
        .unwrap_or(0)
}

impl FormatFloor {
    /// Creates python's schema and settings rows in `dir` (python's open sequence).
    ///
    /// # Errors
    ///
    /// SQLite and I/O errors.
    pub fn open(dir: &Path, policy: Policy) -> Result<Box<dyn Target>> {
        let (db, conn) = create(dir)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value)",
        )?;
        let lru = policy == Policy::LeastRecentlyUsed;
        for (name, value) in DEFAULT_SETTINGS {
            let value = match (name, value) {
                ("eviction_policy", _) if lru => {
                    rusqlite::types::Value::from("least-recently-used".to_owned())
                }
                (_, DefaultValue::Int(i)) => rusqlite::types::Value::from(i),
                (_, DefaultValue::Text(s)) => rusqlite::types::Value::from(s.to_owned()),
            };
            conn.execute(
                "INSERT OR REPLACE INTO Settings VALUES (?, ?)",
                params![name, value],
            )?;
        }
        for name in METADATA {
            conn.execute("INSERT OR IGNORE INTO Settings VALUES (?, 0)", [name])?;
        }
        conn.execute_batch(FORMAT_SCHEMA)?;
        conn.execute_batch(if lru {
            "CREATE INDEX IF NOT EXISTS Cache_access_time ON Cache (access_time)"
        } else {
            "CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time)"
        })?;
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Box::new(FormatFloor {
            dir: dir.to_path_buf(),
            db,
            writer: Mutex::new(()),
            lru,
            page_size,
            size_limit: setting_int("size_limit"),
            cull_limit: setting_int("cull_limit"),
            min_file_size: usize::try_from(setting_int("disk_min_file_size")).unwrap_or(0),
        }))
    }

    fn ops<'c>(&'c self, conn: &'c Connection) -> Result<FormatOps<'c>> {
        let policy_column = if self.lru {
            "access_time"
        } else {
            "store_time"
        };
        Ok(FormatOps {
            floor: self,
            conn,
            rng: Rng::new(u64::from(std::process::id()) << 32 ^ now().to_bits()),
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            select_row: conn.prepare("SELECT rowid, filename FROM Cache WHERE key = ? AND raw = ?")?,
            update_row: conn.prepare(
                "UPDATE Cache SET store_time = ?, expire_time = ?, access_time = ?, \
                 access_count = ?, tag = ?, size = ?, mode = ?, filename = ?, value = ? \
                 WHERE rowid = ?",
            )?,
            insert_row: conn.prepare(
                "INSERT INTO Cache( key, raw, store_time, expire_time, access_time, \
                 access_count, tag, size, mode, filename, value) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            select_expired: conn.prepare(
                "SELECT filename FROM Cache WHERE expire_time IS NOT NULL AND expire_time < ? \
                 ORDER BY expire_time LIMIT ?",
            )?,
            delete_expired: conn.prepare(
                "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
                 WHERE expire_time IS NOT NULL AND expire_time < ? ORDER BY expire_time LIMIT ?)",
            )?,
            page_count: conn.prepare("PRAGMA page_count")?,
            select_setting: conn.prepare("SELECT value FROM Settings WHERE key = ?")?,
            select_policy: conn.prepare(&format!(
                "SELECT filename FROM Cache ORDER BY {policy_column} LIMIT ?"
            ))?,
            delete_policy: conn.prepare(&format!(
                "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache ORDER BY {policy_column} LIMIT ?)"
            ))?,
            select_live: conn.prepare(
                "SELECT rowid, expire_time, tag, mode, filename, value FROM Cache \
                 WHERE key = ? AND raw = ? AND (expire_time IS NULL OR expire_time > ?)",
            )?,
            touch_access: conn.prepare("UPDATE Cache SET access_time = ? WHERE rowid = ?")?,
            select_live_rowid: conn.prepare(
                "SELECT rowid, filename FROM Cache WHERE key = ? AND raw = ? \
                 AND (expire_time IS NULL OR expire_time > ?)",
            )?,
            delete_rowid: conn.prepare("DELETE FROM Cache WHERE rowid = ?")?,
        })
    }
}

impl Target for FormatFloor {
    fn with_ops(&self, f: &mut dyn FnMut(&mut dyn Ops) -> Result<()>) -> Result<()> {
        let conn = connect(&self.db)?;
        let mut ops = self.ops(&conn)?;
        f(&mut ops)
    }

    fn populate(&self, keys: &mut dyn Iterator<Item = (String, Vec<u8>)>) -> Result<()> {
        let conn = connect(&self.db)?;
        let mut ops = self.ops(&conn)?;
        let mut batch = Vec::with_capacity(POPULATE_BATCH);
        loop {
            batch.clear();
            batch.extend((&mut *keys).take(POPULATE_BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            ops.begin.execute([])?;
            let mut removed = Vec::new();
            for (k, v) in &batch {
                ops.set_in_tx(k, now(), (0, 1, None, v.as_slice()), &mut removed)?;
            }
            ops.commit.execute([])?;
            ops.remove_files(removed);
        }
    }
}

/// One thread's prepared statements on the format.
struct FormatOps<'c> {
    floor: &'c FormatFloor,
    conn: &'c Connection,
    rng: Rng,
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    select_row: Statement<'c>,
    update_row: Statement<'c>,
    insert_row: Statement<'c>,
    select_expired: Statement<'c>,
    delete_expired: Statement<'c>,
    page_count: Statement<'c>,
    select_setting: Statement<'c>,
    select_policy: Statement<'c>,
    delete_policy: Statement<'c>,
    select_live: Statement<'c>,
    touch_access: Statement<'c>,
    select_live_rowid: Statement<'c>,
    delete_rowid: Statement<'c>,
}

/// The `size`, `mode`, `filename` and `value` columns of a write.
type Columns<'a> = (i64, i64, Option<&'a str>, &'a [u8]);

/// A row python's `get` reads: mode, filename, inline value.
type LiveRow = (i64, Option<String>, Option<Vec<u8>>);

impl FormatOps<'_> {
    /// python's `set` inside its transaction: SELECT, UPDATE or INSERT, then `_cull`.
    fn set_in_tx(
        &mut self,
        key: &str,
        now: f64,
        (size, mode, filename, value): Columns<'_>,
        removed: &mut Vec<String>,
    ) -> Result<()> {
        let value = if filename.is_some() {
            None
        } else {
            Some(value)
        };
        let row: Option<(i64, Option<String>)> = self
            .select_row
            .query_row(params![key, 1], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((rowid, old_filename)) = row {
            removed.extend(old_filename);
            self.update_row.execute(params![
                now,
                None::<f64>,
                now,
                0,
                None::<&str>,
                size,
                mode,
                filename,
                value,
                rowid
            ])?;
        } else {
            self.insert_row.execute(params![
                key,
                1,
                now,
                None::<f64>,
                now,
                0,
                None::<&str>,
                size,
                mode,
                filename,
                value
            ])?;
        }
        self.cull(now, removed)
    }

    /// python's `_cull`: expired rows first, then by policy when the volume is over the limit.
    fn cull(&mut self, now: f64, removed: &mut Vec<String>) -> Result<()> {
        let mut limit = self.floor.cull_limit;
        if limit == 0 {
            return Ok(());
        }
        let expired: Vec<Option<String>> = self
            .select_expired
            .query_map(params![now, limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !expired.is_empty() {
            self.delete_expired.execute(params![now, limit])?;
            limit -= expired.len() as i64;
            removed.extend(expired.into_iter().flatten());
            if limit == 0 {
                return Ok(());
            }
        }
        let pages: i64 = self.page_count.query_row([], |r| r.get(0))?;
        let size: i64 = self.select_setting.query_row(["size"], |r| r.get(0))?;
        if self.floor.page_size * pages + size < self.floor.size_limit {
            return Ok(());
        }
        let culled: Vec<Option<String>> = self
            .select_policy
            .query_map([limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !culled.is_empty() {
            self.delete_policy.execute([limit])?;
            removed.extend(culled.into_iter().flatten());
        }
        Ok(())
    }

    /// python's `cleanup` after the commit: unlink, then prune empty `hh/hh` directories.
    fn remove_files(&self, names: Vec<String>) {
        for name in names {
            let path = self.floor.dir.join(&name);
            if fs::remove_file(&path).is_ok() {
                let mut dir = path.parent();
                while let Some(d) = dir.filter(|d| *d != self.floor.dir) {
                    if fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
        }
    }

    /// python's `Disk.store` of bytes at least `min_file_size` long: a new `hh/hh/<28 hex>.val`
    /// file, created exclusively.
    fn write_file(&mut self, value: &[u8]) -> Result<String> {
        let hex = format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64());
        let name = format!("{}/{}/{}.val", &hex[..2], &hex[2..4], &hex[4..]);
        let path = self.floor.dir.join(&name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(value)?;
        Ok(name)
    }

    /// python's `get` (fast path without a transaction; LRU: in one, updating `access_time`).
    fn lookup(&mut self, key: &str) -> Result<Option<LiveRow>> {
        let now = now();
        let select = |s: &mut Statement<'_>| -> Result<Option<(i64, LiveRow)>> {
            Ok(s.query_row(params![key, 1, now], |r| {
                Ok((r.get(0)?, (r.get(3)?, r.get(4)?, r.get(5)?)))
            })
            .optional()?)
        };
        if !self.floor.lru {
            return Ok(select(&mut self.select_live)?.map(|(_, row)| row));
        }
        let _writing = lock(&self.floor.writer);
        self.begin.execute([])?;
        let found = select(&mut self.select_live);
        let found = match found {
            Ok(Some((rowid, row))) => self
                .touch_access
                .execute(params![self::now(), rowid])
                .map(|_| Some(row)),
            Ok(None) => Ok(None),
            Err(e) => {
                self.rollback.execute([])?;
                return Err(e);
            }
        };
        match found {
            Ok(row) => {
                self.commit.execute([])?;
                Ok(row)
            }
            Err(e) => {
                self.rollback.execute([])?;
                Err(e.into())
            }
        }
    }
}

impl Ops for FormatOps<'_> {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let filename = if value.len() >= self.floor.min_file_size {
            Some(self.write_file(value)?)
        } else {
            None
        };
        let columns = match &filename {
            Some(name) => (value.len() as i64, 2, Some(name.as_str()), value),
            None => (0, 1, None, value),
        };
        let mut removed = Vec::new();
        let _writing = lock(&self.floor.writer);
        self.begin.execute([])?;
        match self.set_in_tx(key, now(), columns, &mut removed) {
            Ok(()) => {
                self.commit.execute([])?;
                self.remove_files(removed);
                Ok(())
            }
            Err(e) => {
                self.rollback.execute([])?;
                self.remove_files(filename.into_iter().collect());
                Err(e)
            }
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.lookup(key)? {
            None => Ok(None),
            Some((1, None, Some(value))) => Ok(Some(value)),
            Some((2, Some(filename), None)) => Ok(Some(fs::read(self.floor.dir.join(filename))?)),
            Some((mode, filename, _)) => {
                Err(format!("unexpected row: mode {mode}, file {filename:?}").into())
            }
        }
    }

    fn delete(&mut self, key: &str) -> Result<bool> {
        let _writing = lock(&self.floor.writer);
        self.begin.execute([])?;
        let row: Option<(i64, Option<String>)> = self
            .select_live_rowid
            .query_row(params![key, 1, now()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((rowid, filename)) = row else {
            // python raises KeyError inside the transaction: it rolls back.
            self.rollback.execute([])?;
            return Ok(false);
        };
        self.delete_rowid.execute([rowid])?;
        self.commit.execute([])?;
        self.remove_files(filename.into_iter().collect());
        Ok(true)
    }

    fn read_large(&mut self, key: &str, buf: &mut [u8]) -> Result<Option<u64>> {
        match self.lookup(key)? {
            None => Ok(None),
            Some((2, Some(filename), None)) => {
                stream(File::open(self.floor.dir.join(filename))?, buf).map(Some)
            }
            Some((mode, filename, _)) => {
                Err(format!("not a value file: mode {mode}, file {filename:?}").into())
            }
        }
    }
}

impl Drop for FormatOps<'_> {
    fn drop(&mut self) {
        // A transaction left open by an error must not outlive the thread's connection.
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            eprintln!("sqlite-format-floor: rollback on drop: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragmas_are_dcache_defaults() {
        let pragmas = default_pragmas();
        let get = |name: &str| {
            pragmas
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("journal_mode"), Some("wal"));
        assert_eq!(get("synchronous"), Some("1"));
        assert_eq!(get("cache_size"), Some("8192"));
        assert_eq!(get("mmap_size"), Some("67108864"));
        assert_eq!(get("auto_vacuum"), Some("1"));
    }

    fn exercise(target: &dyn Target) -> Result<()> {
        target.with_ops(&mut |ops| {
            ops.set("key-00000001", b"one")?;
            ops.set("key-00000001", b"uno")?;
            assert_eq!(ops.get("key-00000001")?.as_deref(), Some(&b"uno"[..]));
            assert_eq!(ops.get("key-00000002")?, None);
            assert!(ops.delete("key-00000001")?);
            assert!(!ops.delete("key-00000001")?);
            let big = vec![7u8; 40_000];
            ops.set_large("big", &big)?;
            assert_eq!(ops.get_large("big")?.as_deref(), Some(&big[..]));
            let mut buf = [0u8; 4096];
            assert_eq!(ops.read_large("big", &mut buf)?, Some(40_000));
            Ok(())
        })
    }

    #[test]
    fn floors_store_and_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        exercise(&*SqliteFloor::open(
            &dir.path().join("bare"),
            Policy::LeastRecentlyStored,
        )?)?;
        exercise(&*FormatFloor::open(
            &dir.path().join("fmt"),
            Policy::LeastRecentlyStored,
        )?)?;
        exercise(&*FormatFloor::open(
            &dir.path().join("lru"),
            Policy::LeastRecentlyUsed,
        )?)?;
        Ok(())
    }

    #[test]
    fn the_format_floor_writes_a_directory_dcache_and_its_counters_agree_on() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let floor = FormatFloor::open(dir.path(), Policy::LeastRecentlyStored)?;
        floor.populate(&mut (0..50).map(|i| (crate::data::key(i), vec![1u8; 10])))?;
        floor.with_ops(&mut |ops| {
            ops.set_large("big", &vec![3u8; 50_000])?;
            ops.set_large("big", &vec![4u8; 50_000])?;
            Ok(())
        })?;
        let cache = dcache::Cache::open(dir.path())?;
        assert_eq!(cache.len()?, 51);
        assert_eq!(cache.get_bytes("big")?, Some(vec![4u8; 50_000]));
        assert_eq!(cache.get::<Vec<u8>>("key-00000049")?, Some(vec![1u8; 10]));
        assert!(cache.check(false)?.is_empty(), "{:?}", cache.check(false)?);
        Ok(())
    }
}
