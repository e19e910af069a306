//! `check`: python-diskcache's consistency check, with typed findings.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dcache_disk::DiskFormat;

use dcache_disk::{SqlRef, SqlValue};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::sql::{Db, FileRow};

/// Unknown files younger than this are reported but never removed by `check(fix)`: a writer
/// writes its value file before inserting the row, so a fresh unreferenced file may be an
/// entry about to commit.
pub const UNKNOWN_FILE_GRACE: Duration = Duration::from_secs(60);

/// One finding of [`Cache::check`], as python's warnings report them. Serializes as
/// `{"<kind in snake case>": …}` (serde's external tagging), for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// A row's filename is not a value file name: it points outside the cache directory, or
    /// names the database, its `-wal`/`-shm`, or something at the top of the directory (fix:
    /// delete the row; the file it names is never touched).
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
    /// A `Settings` counter (`count` or `size`) holds something that is not an integer, or is
    /// missing (fix: store the real value).
    BadCounter {
        /// `count` or `size`.
        name: &'static str,
        /// What is stored, as SQLite shows it.
        stored: String,
        /// The real value.
        actual: i64,
    },
    /// A row whose columns python-diskcache never writes (a filename that is not text, a
    /// size that is not an integer); another program wrote it (fix: delete the row; a file
    /// it names is never touched).
    BadRow {
        /// The row.
        rowid: i64,
        /// What is wrong.
        reason: String,
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
                write!(
                    f,
                    "filename that is not a value file (outside the directory, the database or \
                     its top level): {filename:?}"
                )
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
            Warning::BadCounter {
                name,
                stored,
                actual,
            } => write!(
                f,
                "Settings.{name} holds {stored}, not an integer; the real value is {actual}"
            ),
            Warning::BadRow { rowid, reason } => write!(f, "row {rowid}: {reason}"),
        }
    }
}

/// What [`Cache::check`] does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CheckMode {
    /// Only reports (python's `check(fix=False)`).
    Report,
    /// Reports and repairs (python's `check(fix=True)`).
    Fix,
}

impl<D: DiskFormat> Cache<D> {
    /// Checks the database and the value files against each other (python's `check`) and,
    /// with [`CheckMode::Fix`], repairs what it finds. Returns the findings (empty when all
    /// is well).
    ///
    /// Runs in one write transaction (after an integrity check and, when fixing, a `VACUUM`).
    /// Unknown files younger than [`UNKNOWN_FILE_GRACE`] are reported but not removed.
    ///
    /// # Errors
    ///
    /// The errors of a write, and [`Error::Io`] when the directory cannot be walked.
    pub fn check(&self, mode: CheckMode) -> Result<Vec<Warning>> {
        self.check_with(mode, self.timeout().max(UNKNOWN_FILE_GRACE))
    }

    /// [`check`](Self::check) with the age below which unknown files are kept by
    /// [`CheckMode::Fix`].
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
    /// use dcache_core::CheckMode;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// std::fs::write(cache.directory().join("stray.val"), b"?")?;
    /// // found and removed
    /// assert_eq!(cache.check_with(CheckMode::Fix, Duration::ZERO)?.len(), 1);
    /// assert!(cache.check(CheckMode::Report)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_with(
        &self,
        mode: CheckMode,
        unknown_file_grace: Duration,
    ) -> Result<Vec<Warning>> {
        let fix = mode == CheckMode::Fix;
        let mut warnings = Vec::new();
        let integrity = self.read_with(|db| db.integrity_check())?;
        if integrity.len() != 1 || integrity[0] != "ok" {
            warnings.extend(integrity.into_iter().map(Warning::Integrity));
        }
        if fix && !self.is_read_only() {
            self.read_with(|db| db.vacuum())?;
        }
        let files = self.files().clone();
        let root = self.directory().to_path_buf();
        let body = |fix: bool, warnings: &mut Vec<Warning>, db: Db<'_>| -> Result<()> {
            let delete_row = |rowid: i64| db.delete_row(rowid);
            let mut referenced = HashSet::new();
            for FileRow {
                rowid,
                size,
                filename,
            } in db.file_rows()?
            {
                let SqlValue::Text(filename) = filename else {
                    warnings.push(Warning::BadRow {
                        rowid,
                        reason: format!("the filename column holds {filename:?}, not text"),
                    });
                    if fix {
                        delete_row(rowid)?;
                    }
                    continue;
                };
                let Ok(path) = files.resolve(&filename) else {
                    warnings.push(Warning::UnsafePath { filename });
                    if fix {
                        delete_row(rowid)?;
                    }
                    continue;
                };
                referenced.insert(path.clone());
                let recorded = match size {
                    SqlValue::Integer(size) => Some(size),
                    _ => None,
                };
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        let actual = meta.len();
                        if recorded.and_then(|r| u64::try_from(r).ok()) != Some(actual) {
                            warnings.push(Warning::WrongSize {
                                path,
                                actual,
                                recorded: recorded.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
                            });
                            if fix {
                                db.set_size(rowid, i64::try_from(actual).unwrap_or(i64::MAX))?;
                            }
                        }
                    }
                    _ => {
                        warnings.push(Warning::MissingFile { path });
                        if fix {
                            delete_row(rowid)?;
                        }
                    }
                }
            }
            let grace = unknown_file_grace;
            let mut all_files = Vec::new();
            let mut all_dirs = Vec::new();
            walk(&root, &mut all_files, &mut all_dirs)?;
            for path in all_files {
                // The database and SQLite's files beside it, at the top of the directory only
                // (python skips any path containing "cache.db", which hides every orphan of a
                // cache whose own directory path contains it).
                let sqlite_file = path.parent() == Some(root.as_path())
                    && path.file_name().is_some_and(|n| {
                        [
                            "cache.db",
                            "cache.db-wal",
                            "cache.db-shm",
                            "cache.db-journal",
                            crate::reserve::RESERVE_NAME,
                        ]
                        .iter()
                        .any(|f| n == *f)
                    });
                if referenced.contains(&path) || sqlite_file {
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
            let (actual_count, actual_size) = (db.row_count()?, db.total_size()?);
            for (name, actual) in [("count", actual_count), ("size", actual_size)] {
                let stored = db.setting(name)?.unwrap_or(SqlValue::Null);
                let recorded = match stored {
                    SqlValue::Integer(i) => i,
                    other => {
                        warnings.push(Warning::BadCounter {
                            name,
                            stored: format!("{other:?}"),
                            actual,
                        });
                        if fix {
                            db.put_setting(name, SqlRef::Integer(actual))?;
                        }
                        continue;
                    }
                };
                if recorded != actual {
                    warnings.push(if name == "count" {
                        Warning::CountMismatch { recorded, actual }
                    } else {
                        Warning::SizeMismatch { recorded, actual }
                    });
                    if fix {
                        db.set_counter(name, actual)?;
                    }
                }
            }
            Ok(())
        };
        if self.is_read_only() {
            self.read_with(|db| body(false, &mut warnings, db))?;
        } else {
            self.write(|tx| body(fix, &mut warnings, tx.db()))?;
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
