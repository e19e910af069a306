//! Opening a cache directory: python-diskcache's open sequence, writing only what differs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dcache_disk::{DiskFormat, SqlValue};
use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::conn::{self, Access, Connected, Op, Pool, TxContext, WriterLock, map_err};
use crate::error::{Error, Result};
use crate::schema;
use crate::settings::{self, DEFAULT_SETTINGS, METADATA, Settings};

/// The oldest SQLite dcache's SQL runs on, as `sqlite3_libversion_number` counts: 3.16.0,
/// which added the table-valued pragma functions (`pragma_page_count()` in the `volume`
/// query). Everything else is older: WAL 3.7.0, `wal_checkpoint(TRUNCATE)` 3.8.8; no
/// `RETURNING`, upsert, window functions or JSON operators are used.
const MIN_SQLITE_VERSION: (i32, &str) = (3_016_000, "3.16.0");

/// Refuses an SQLite older than [`MIN_SQLITE_VERSION`] (possible only without `bundled`).
fn check_sqlite_version(number: i32, text: &str) -> Result<()> {
    if number < MIN_SQLITE_VERSION.0 {
        return Err(Error::SqliteTooOld {
            found: text.to_owned(),
            needed: MIN_SQLITE_VERSION.1,
        });
    }
    Ok(())
}

/// What opening found and decided.
pub(crate) struct Opened<D> {
    pub(crate) settings: Settings,
    pub(crate) disk: D,
    pub(crate) page_size: i64,
    pub(crate) access: Access,
    pub(crate) first: Connected,
}

/// Opens (creating if needed) the database of a cache directory.
///
/// `explicit` are the settings the caller asked for; they win over stored ones and are
/// persisted. Nothing is written when the stored settings and schema already match.
pub(crate) fn open_database<D: DiskFormat>(
    dir: &Path,
    explicit: &BTreeMap<String, SqlValue>,
    mut disk: D,
    read_only_requested: bool,
    writer: &Arc<WriterLock>,
    timeout: Duration,
) -> Result<Opened<D>> {
    check_sqlite_version(rusqlite::version_number(), rusqlite::version())?;
    let db_path = dir.join("cache.db");
    let op = Op::new(&db_path, Some(timeout));

    let (conn, access) = connect(dir, &db_path, read_only_requested)?;
    let (conn, access, objects) = match list_objects(&conn, &op) {
        Ok(objects) => (conn, access, objects),
        // A WAL database in a directory we cannot write: SQLite needs the `-shm` file, which
        // it cannot create here. Read-only works if another process keeps `-shm` open;
        // otherwise only an immutable open can read it.
        Err(Error::Sqlite { .. } | Error::ReadOnly { .. })
            if db_path.exists() && !dir_writable(dir) =>
        {
            fallback_read_only(access, &op)?
        }
        Err(e) => return Err(e),
    };
    let read_only = access != Access::ReadWrite;
    let opening = Opening {
        dir,
        db_path: &db_path,
        explicit,
        writer,
        timeout,
    };
    let (settings, page_size, first) = opening.finish(conn, &objects, &mut disk, read_only)?;
    Ok(Opened {
        settings,
        disk,
        page_size,
        access,
        first,
    })
}

/// Reopens a database whose directory is not writable: read-only if that can read it, else
/// immutable (see [`Access::Immutable`]).
fn fallback_read_only(tried: Access, op: &Op<'_>) -> Result<(Connected, Access, Objects)> {
    let db_path = op.db_path;
    if tried == Access::ReadWrite {
        let conn = Pool::connect(db_path, Access::ReadOnly)?;
        if let Ok(objects) = list_objects(&conn, op) {
            return Ok((conn, Access::ReadOnly, objects));
        }
    }
    log::warn!(
        "dcache: {} is in a directory this process cannot write and has no -shm file; opening it \
         immutable (read-only; changes other processes make meanwhile are not seen)",
        db_path.display()
    );
    let conn = Pool::connect(db_path, Access::Immutable)?;
    let objects = list_objects(&conn, op)?;
    Ok((conn, Access::Immutable, objects))
}

/// What an opening was asked for, once the database is connected.
struct Opening<'a> {
    dir: &'a Path,
    db_path: &'a Path,
    /// The settings the caller asked for.
    explicit: &'a BTreeMap<String, SqlValue>,
    writer: &'a Arc<WriterLock>,
    /// How long the checks and writes below may wait for locks.
    timeout: Duration,
}

impl Opening<'_> {
    /// Checks that the database is a cache, settles the settings (defaults < the disk's <
    /// stored < explicit) and writes what differs: settings, counters, schema.
    fn finish<D: DiskFormat>(
        &self,
        conn: Connected,
        objects: &Objects,
        disk: &mut D,
        read_only: bool,
    ) -> Result<(Settings, i64, Connected)> {
        let Opening {
            dir,
            db_path,
            explicit,
            writer,
            timeout,
        } = *self;
        let op = Op::new(db_path, Some(timeout));
        check_foreign(db_path, objects)?;
        if objects.tables.contains("Cache") {
            check_cache_columns(&conn, db_path)?;
        }
        if objects.tables.contains("Settings") {
            check_settings_columns(&conn, db_path)?;
        }

        let stored = if objects.tables.contains("Settings") {
            read_settings(&conn, &op)?
        } else {
            BTreeMap::new()
        };
        if !objects.tables.contains("Cache") {
            check_settings_names(db_path, objects, &stored)?;
        }

        // defaults < disk's own defaults < stored < explicit (python's precedence).
        let mut effective: BTreeMap<String, SqlValue> = DEFAULT_SETTINGS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_sql()))
            .collect();
        for (name, value) in disk.settings() {
            effective.entry(format!("disk_{name}")).or_insert(value);
        }
        for (name, value) in stored
            .iter()
            .filter(|(k, _)| !METADATA.contains(&k.as_str()))
        {
            effective.insert(name.clone(), value.clone());
        }
        for (name, value) in explicit {
            settings::validate(name, value)?;
            effective.insert(name.clone(), value.clone());
        }
        let settings = Settings::from_map(effective).map_err(|e| match e {
            Error::InvalidSetting {
                name,
                value,
                reason,
            } => Error::InvalidSetting {
                reason: format!(
                    "{reason} (stored in {}; pass an explicit value to the builder to replace it)",
                    db_path.display()
                ),
                name,
                value,
            },
            other => other,
        })?;
        for (name, value) in &settings.all {
            if let Some(disk_name) = name.strip_prefix("disk_") {
                disk.configure(disk_name, value.as_ref())?;
            }
        }

        // What must be written: settings that differ, missing counters, missing schema objects.
        let changed: Vec<(&String, &SqlValue)> = settings
            .all
            .iter()
            .filter(|(k, v)| stored.get(*k) != Some(*v))
            .collect();
        let missing_metadata: Vec<&str> = METADATA
            .iter()
            .copied()
            .filter(|m| !stored.contains_key(*m))
            .collect();
        let policy_index = settings.eviction_policy.index_name();
        let schema_missing = !objects.tables.contains("Cache")
            || schema::INDEXES
                .iter()
                .any(|(name, _)| !objects.indexes.contains(*name))
            || schema::TRIGGERS
                .iter()
                .any(|(name, _)| !objects.triggers.contains(*name))
            || policy_index.is_some_and(|i| !objects.indexes.contains(i))
            || settings.tag_index != objects.indexes.contains(schema::TAG_INDEX);

        if read_only {
            if !objects.tables.contains("Cache") {
                return Err(Error::ReadOnly {
                    path: dir.to_path_buf(),
                });
            }
        } else {
            apply_persistent_pragmas(&conn, &settings, objects.tables.is_empty(), &op)?;
            if !changed.is_empty() || !missing_metadata.is_empty() || schema_missing {
                let pool = Pool::new(
                    db_path.to_path_buf(),
                    Access::ReadWrite,
                    crate::cache::pragmas_of(&settings, false),
                );
                let ctx = TxContext {
                    pool: &pool,
                    writer,
                    op,
                };
                conn::write(&ctx, |tx| -> Result<()> {
                    let db = tx.db();
                    let exec = |s: &str| db.execute_batch(s);
                    exec(schema::CREATE_SETTINGS)?;
                    for (name, value) in &changed {
                        db.put_setting(name, value.as_ref())?;
                    }
                    for name in &missing_metadata {
                        db.create_counter(name)?;
                    }
                    exec(schema::CREATE_CACHE)?;
                    for (_, ddl) in schema::INDEXES {
                        exec(ddl)?;
                    }
                    if let Some(ddl) = settings.eviction_policy.index_sql() {
                        exec(ddl)?;
                    }
                    for (_, ddl) in schema::TRIGGERS {
                        exec(ddl)?;
                    }
                    exec(if settings.tag_index {
                        schema::CREATE_TAG_INDEX
                    } else {
                        schema::DROP_TAG_INDEX
                    })
                })?;
            }
        }

        let page_size: i64 =
            op.retry_busy(|| conn.query_row("PRAGMA page_size", [], |r| r.get(0)))?;
        Ok((settings, page_size, conn))
    }
}

/// Connects read-write (creating the directory), or read-only when asked or when the
/// directory cannot be written.
fn connect(dir: &Path, db_path: &Path, read_only: bool) -> Result<(Connected, Access)> {
    check_db_path(db_path)?;
    if read_only {
        if !db_path.exists() {
            return Err(Error::ReadOnly {
                path: dir.to_path_buf(),
            });
        }
        return Ok((Pool::connect(db_path, Access::ReadOnly)?, Access::ReadOnly));
    }
    if let Err(e) = std::fs::create_dir_all(dir)
        && !dir.is_dir()
    {
        return Err(Error::io(dir, e));
    }
    match Pool::connect(db_path, Access::ReadWrite) {
        Ok(conn) if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) => {
            Ok((conn, Access::ReadOnly))
        }
        Ok(conn) => Ok((conn, Access::ReadWrite)),
        Err(Error::Sqlite { source, .. })
            if source.0.sqlite_error_code() == Some(ErrorCode::CannotOpen) && db_path.exists() =>
        {
            Ok((Pool::connect(db_path, Access::ReadOnly)?, Access::ReadOnly))
        }
        Err(Error::ReadOnly { .. }) if db_path.exists() => {
            Ok((Pool::connect(db_path, Access::ReadOnly)?, Access::ReadOnly))
        }
        Err(e) => Err(e),
    }
}

/// SQLite's longest database path (`MAX_PATHNAME` of its unix VFS), in bytes.
const SQLITE_MAX_PATH: usize = 512;

/// Refuses a database path SQLite would mishandle, before SQLite opens it: too long (SQLite
/// says only "unable to open database file"), a symbolic link (a dangling one would create the
/// database outside the directory), or not a regular file (a FIFO would block the open or the
/// first read forever). A missing file is fine: it is created.
///
/// The kind is read with `lstat`, which never blocks; SQLite then opens the path with
/// `SQLITE_OPEN_NOFOLLOW`, so a link planted in between is refused by SQLite itself.
fn check_db_path(db_path: &Path) -> Result<()> {
    let absolute = if db_path.is_absolute() {
        db_path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(db_path, e))?
            .join(db_path)
    };
    let len = absolute.as_os_str().len();
    if len >= SQLITE_MAX_PATH {
        return Err(Error::PathTooLong {
            path: absolute,
            len,
            limit: SQLITE_MAX_PATH - 1,
        });
    }
    match std::fs::symlink_metadata(db_path) {
        Ok(meta) => match file_kind(meta.file_type()) {
            None => Ok(()),
            Some(kind) => Err(Error::NotAFile {
                path: db_path.to_path_buf(),
                kind,
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(db_path, e)),
    }
}

/// What a file that is not a regular file is, for error messages (`None` for a regular file).
pub(crate) fn file_kind(kind: std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some("a device");
        }
    }
    if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_file() {
        None
    } else {
        Some("not a regular file")
    }
}

fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".dcache-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => std::fs::remove_file(&probe).is_ok(),
        Err(_) => false,
    }
}

/// The schema objects present.
#[derive(Debug, Default)]
struct Objects {
    tables: std::collections::BTreeSet<String>,
    indexes: std::collections::BTreeSet<String>,
    triggers: std::collections::BTreeSet<String>,
}

fn list_objects(conn: &Connection, op: &Op<'_>) -> Result<Objects> {
    op.retry_busy(|| {
        let mut objects = Objects::default();
        let mut stmt = conn.prepare("SELECT type, name FROM sqlite_master")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (kind, name): (String, String) = (row.get(0)?, row.get(1)?);
            match kind.as_str() {
                "table" if !name.starts_with("sqlite_") => objects.tables.insert(name),
                "index" => objects.indexes.insert(name),
                "trigger" => objects.triggers.insert(name),
                _ => false,
            };
        }
        Ok(objects)
    })
}

fn check_foreign(db_path: &Path, objects: &Objects) -> Result<()> {
    let ours = objects.tables.contains("Settings") || objects.tables.contains("Cache");
    if !objects.tables.is_empty() && !ours {
        let tables: Vec<&str> = objects.tables.iter().map(String::as_str).collect();
        return Err(Error::ForeignDatabase {
            path: db_path.to_path_buf(),
            tables: tables.join(", "),
        });
    }
    Ok(())
}

/// The column names of `table`, in order.
fn columns_of(conn: &Connection, db_path: &Path, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(|e| map_err(db_path, e))?;
    stmt.query_map([], |r| r.get::<_, String>(1))
        .and_then(Iterator::collect)
        .map_err(|e| map_err(db_path, e))
}

/// A `Settings` table must be python's `(key, value)`: another application's table of that
/// name is not a cache's.
fn check_settings_columns(conn: &Connection, db_path: &Path) -> Result<()> {
    let columns = columns_of(conn, db_path, "Settings")?;
    if columns != ["key", "value"] {
        return Err(Error::ForeignDatabase {
            path: db_path.to_path_buf(),
            tables: format!("Settings ({})", columns.join(", ")),
        });
    }
    Ok(())
}

/// A database with a `Settings` table but no `Cache` table is a cache only while it is being
/// created (python writes `Settings` first): then every row is a setting python or dcache
/// writes. Anything else is another application's database, which must not be written.
fn check_settings_names(
    db_path: &Path,
    objects: &Objects,
    stored: &BTreeMap<String, SqlValue>,
) -> Result<()> {
    let known = |name: &str| {
        DEFAULT_SETTINGS.iter().any(|(n, _)| *n == name)
            || METADATA.contains(&name)
            || name.starts_with("disk_")
    };
    let foreign_tables = objects
        .tables
        .iter()
        .any(|t| t != "Settings" && t != "Cache");
    if let Some(unknown) = stored.keys().find(|k| !known(k)) {
        let tables: Vec<&str> = objects.tables.iter().map(String::as_str).collect();
        return Err(Error::ForeignDatabase {
            path: db_path.to_path_buf(),
            tables: format!(
                "{} (no Cache table, and Settings holds {unknown:?}, which is no cache setting)",
                tables.join(", ")
            ),
        });
    }
    if foreign_tables {
        let tables: Vec<&str> = objects.tables.iter().map(String::as_str).collect();
        return Err(Error::ForeignDatabase {
            path: db_path.to_path_buf(),
            tables: tables.join(", "),
        });
    }
    Ok(())
}

fn check_cache_columns(conn: &Connection, db_path: &Path) -> Result<()> {
    let columns = columns_of(conn, db_path, "Cache")?;
    if columns != schema::CACHE_COLUMNS {
        return Err(Error::IncompatibleSchema {
            path: db_path.to_path_buf(),
            detail: format!(
                "table Cache has columns ({}), expected ({})",
                columns.join(", "),
                schema::CACHE_COLUMNS.join(", ")
            ),
        });
    }
    Ok(())
}

/// Every row of `Settings`, counters included.
pub(crate) fn read_settings(conn: &Connection, op: &Op<'_>) -> Result<BTreeMap<String, SqlValue>> {
    let rows: Vec<(String, SqlValue)> = op
        .retry_busy(|| {
            let mut stmt = conn.prepare_cached("SELECT key, value FROM Settings")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                out.push((key, row.get::<_, rusqlite::types::Value>(1)?));
            }
            Ok(out)
        })?
        .into_iter()
        .map(|(k, v): (String, rusqlite::types::Value)| Ok((k, crate::sqlval::from_rusqlite(v))))
        .collect::<Result<_>>()?;
    Ok(rows.into_iter().collect())
}

/// `journal_mode` and `auto_vacuum` live in the database file: change them only when they
/// differ, and `auto_vacuum` only before tables exist (SQLite ignores it afterwards).
fn apply_persistent_pragmas(
    conn: &Connection,
    settings: &Settings,
    empty: bool,
    op: &Op<'_>,
) -> Result<()> {
    if empty {
        let current: i64 =
            op.retry_busy(|| conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)))?;
        if current != settings.sqlite_auto_vacuum {
            op.retry_busy(|| conn.pragma_update(None, "auto_vacuum", settings.sqlite_auto_vacuum))?;
        }
    }
    set_journal_mode(conn, op, &settings.sqlite_journal_mode)
}

/// Switches the journal mode to `mode` unless it is already in effect.
pub(crate) fn set_journal_mode(conn: &Connection, op: &Op<'_>, mode: &str) -> Result<()> {
    let db_path = op.db_path;
    let current: String =
        op.retry_busy(|| conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)))?;
    if !current.eq_ignore_ascii_case(mode) {
        let now: Option<String> = op.retry_busy(|| {
            conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
                .optional()
        })?;
        if !now.is_some_and(|n| n.eq_ignore_ascii_case(mode)) {
            log::warn!(
                "dcache: {} kept journal mode {current}, not {mode}",
                db_path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_sqlite_is_new_enough_and_an_older_one_is_refused() {
        check_sqlite_version(rusqlite::version_number(), rusqlite::version()).unwrap();
        check_sqlite_version(3_016_000, "3.16.0").unwrap();
        let err = check_sqlite_version(3_015_002, "3.15.2").unwrap_err();
        assert!(matches!(
            &err,
            Error::SqliteTooOld { found, needed: "3.16.0" } if found == "3.15.2"
        ));
        let message = err.to_string();
        assert!(
            message.contains("3.15.2") && message.contains("`bundled`"),
            "{message}"
        );
    }
}
