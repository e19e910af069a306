//! `check`: python-diskcache's consistency check, with typed findings.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dcache_disk::DiskFormat;

use crate::cache::Cache;
use crate::error::{Error, Result};

/// Unknown files younger than this are reported but never removed by `check(fix)`: a writer
/// writes its value file before inserting the row, so a fresh unreferenced file may be an
/// entry about to commit.
pub const UNKNOWN_FILE_GRACE: Duration = Duration::from_secs(60);

/// One finding of [`Cache::check`], as python's warnings report them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// `PRAGMA integrity_check` reported a problem (fix: `VACUUM`).
    Integrity(String),
    /// A row's value file is missing (fix: delete the row).
    MissingFile {
        /// The file the row points to.
        path: PathBuf,
    },
    /// A value file's size differs from its row's (fix: record the real size).
    WrongSize {
        /// The file.
        path: PathBuf,
        /// The size on disk.
        actual: u64,
        /// The size in the row.
        recorded: u64,
    },
    /// A row's filename points outside the cache directory (fix: delete the row; the file it
    /// names is never touched).
    UnsafePath {
        /// The filename as stored.
        filename: String,
    },
    /// A file no row refers to (fix: remove it, unless younger than [`UNKNOWN_FILE_GRACE`]).
    UnknownFile {
        /// The file.
        path: PathBuf,
    },
    /// An empty directory (fix: remove it).
    EmptyDir {
        /// The directory.
        path: PathBuf,
    },
    /// `Settings.count` differs from the number of rows (fix: correct it).
    CountMismatch {
        /// The stored count.
        recorded: i64,
        /// The number of rows.
        actual: i64,
    },
    /// `Settings.size` differs from the sum of row sizes (fix: correct it).
    SizeMismatch {
        /// The stored size.
        recorded: i64,
        /// The sum of sizes.
        actual: i64,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Integrity(msg) => write!(f, "integrity check: {msg}"),
            Warning::MissingFile { path } => write!(f, "file not found: {}", path.display()),
            Warning::WrongSize {
                path,
                actual,
                recorded,
            } => {
                write!(
                    f,
                    "wrong file size: {}, {actual} != {recorded}",
                    path.display()
                )
            }
            Warning::UnsafePath { filename } => {
                write!(f, "filename outside the cache directory: {filename:?}")
            }
            Warning::UnknownFile { path } => write!(f, "unknown file: {}", path.display()),
            Warning::EmptyDir { path } => write!(f, "empty directory: {}", path.display()),
            Warning::CountMismatch { recorded, actual } => {
                write!(
                    f,
                    "Settings.count != COUNT(Cache.key); {recorded} != {actual}"
                )
            }
            Warning::SizeMismatch { recorded, actual } => {
                write!(
                    f,
                    "Settings.size != SUM(Cache.size); {recorded} != {actual}"
                )
            }
        }
    }
}

impl<D: DiskFormat> Cache<D> {
    /// Checks the database and the value files against each other (python's `check`) and,
    /// with `fix`, repairs what it finds. Returns the findings (empty when all is well).
    ///
    /// Runs in one write transaction (after an integrity check and, with `fix`, a `VACUUM`).
    /// Unknown files younger than [`UNKNOWN_FILE_GRACE`] are reported but not removed.
    ///
    /// # Errors
    ///
    /// The errors of a write, and [`Error::Io`] when the directory cannot be walked.
    pub fn check(&self, fix: bool) -> Result<Vec<Warning>> {
        self.check_with(fix, self.timeout().max(UNKNOWN_FILE_GRACE))
    }

    /// [`check`](Self::check) with the age below which unknown files are kept by `fix`.
    ///
    /// Pass `Duration::ZERO` only when no process is writing to the cache (after a crash,
    /// say): a writer's value file exists briefly before its row commits, and a fix with no
    /// grace would remove it.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// std::fs::write(cache.directory().join("stray.val"), b"?")?;
    /// assert_eq!(cache.check_with(true, Duration::ZERO)?.len(), 1); // found and removed
    /// assert!(cache.check(false)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_with(&self, fix: bool, unknown_file_grace: Duration) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        let integrity: Vec<String> = self.read_sql(|c| {
            c.prepare("PRAGMA integrity_check")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect()
        })?;
        if integrity.len() != 1 || integrity[0] != "ok" {
            warnings.extend(integrity.into_iter().map(Warning::Integrity));
        }
        if fix && !self.is_read_only() {
            self.read_sql(|c| c.execute_batch("VACUUM"))?;
        }
        let files = self.files().clone();
        let root = self.directory().to_path_buf();
        let body = |fix: bool,
                    warnings: &mut Vec<Warning>,
                    sql: &rusqlite::Connection|
         -> Result<()> {
            let err = self.sql_err();
            let rows: Vec<(i64, i64, String)> = sql
                .prepare("SELECT rowid, size, filename FROM Cache WHERE filename IS NOT NULL")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(&err)?;
            let mut referenced = HashSet::new();
            for (rowid, size, filename) in rows {
                let Ok(path) = files.resolve(&filename) else {
                    warnings.push(Warning::UnsafePath { filename });
                    if fix {
                        sql.execute("DELETE FROM Cache WHERE rowid = ?1", [rowid])
                            .map_err(&err)?;
                    }
                    continue;
                };
                referenced.insert(path.clone());
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        let actual = meta.len();
                        if i64::try_from(actual).ok() != Some(size) {
                            warnings.push(Warning::WrongSize {
                                path,
                                actual,
                                recorded: u64::try_from(size).unwrap_or(0),
                            });
                            if fix {
                                sql.execute(
                                    "UPDATE Cache SET size = ?1 WHERE rowid = ?2",
                                    (i64::try_from(actual).unwrap_or(i64::MAX), rowid),
                                )
                                .map_err(&err)?;
                            }
                        }
                    }
                    _ => {
                        warnings.push(Warning::MissingFile { path });
                        if fix {
                            sql.execute("DELETE FROM Cache WHERE rowid = ?1", [rowid])
                                .map_err(&err)?;
                        }
                    }
                }
            }
            let grace = unknown_file_grace;
            let mut all_files = Vec::new();
            let mut all_dirs = Vec::new();
            walk(&root, &mut all_files, &mut all_dirs)?;
            for path in all_files {
                let name = path.to_string_lossy();
                if referenced.contains(&path) || name.contains("cache.db") {
                    continue;
                }
                warnings.push(Warning::UnknownFile { path: path.clone() });
                if fix && older_than(&path, grace) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                }
            }
            // Deepest first, so a parent emptied by removing its children is found too.
            all_dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for dir in all_dirs {
                let empty = std::fs::read_dir(&dir)
                    .map_err(|e| Error::io(&dir, e))?
                    .next()
                    .is_none();
                if empty {
                    warnings.push(Warning::EmptyDir { path: dir.clone() });
                    if fix {
                        match std::fs::remove_dir(&dir) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(Error::io(&dir, e)),
                        }
                    }
                }
            }
            // Every row counts, NULL keys included: `Settings.count` is kept by triggers on
            // every insert and delete, and python stores a NaN key as NULL. (Python counts
            // `COUNT(key)` here, so its `check(fix=True)` sets the count too low on such a
            // cache, and `len()` later goes negative.)
            let (recorded_count, actual_count): (i64, i64) = sql
                .query_row(
                    "SELECT (SELECT value FROM Settings WHERE key = 'count'), (SELECT COUNT(*) FROM Cache)",
                    [],
                    |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get(1)?)),
                )
                .map_err(&err)?;
            if recorded_count != actual_count {
                warnings.push(Warning::CountMismatch {
                    recorded: recorded_count,
                    actual: actual_count,
                });
                if fix {
                    sql.execute(
                        "UPDATE Settings SET value = ?1 WHERE key = 'count'",
                        [actual_count],
                    )
                    .map_err(&err)?;
                }
            }
            let (recorded_size, actual_size): (i64, i64) = sql
                .query_row(
                    "SELECT (SELECT value FROM Settings WHERE key = 'size'), (SELECT COALESCE(SUM(size), 0) FROM Cache)",
                    [],
                    |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get(1)?)),
                )
                .map_err(&err)?;
            if recorded_size != actual_size {
                warnings.push(Warning::SizeMismatch {
                    recorded: recorded_size,
                    actual: actual_size,
                });
                if fix {
                    sql.execute(
                        "UPDATE Settings SET value = ?1 WHERE key = 'size'",
                        [actual_size],
                    )
                    .map_err(&err)?;
                }
            }
            Ok(())
        };
        if self.is_read_only() {
            self.read_with(|c| body(false, &mut warnings, c))?;
        } else {
            self.write(|tx| body(fix, &mut warnings, tx.sql))?;
        }
        Ok(warnings)
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|elapsed| elapsed >= age)
}

/// Lists files and directories below `root` (not `root` itself), without following links.
fn walk(root: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            if kind.is_dir() {
                dirs.push(entry.path());
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    Ok(())
}
