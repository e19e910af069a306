//! The identities of a database's files (`cache.db`, `-wal`, `-shm`) as this process's
//! connections use them, so a write refuses to start on a file another program replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rusqlite::Connection;

use super::lock;
use crate::error::{Error, Result};

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

/// The identities of a database's files (`None`: the file did not exist when recorded).
type FileIds = [Option<FileId>; 3];

/// The suffixes of the files SQLite keeps for a database in WAL mode.
const DB_FILE_SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

fn file_ids(db_path: &Path) -> Result<FileIds> {
    let mut ids = [None; 3];
    for (id, suffix) in ids.iter_mut().zip(DB_FILE_SUFFIXES) {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        *id = match std::fs::symlink_metadata(&path) {
            Ok(meta) => Some(file_id(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(PathBuf::from(path), e)),
        };
    }
    Ok(ids)
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> FileId {
    // No inode numbers: identity checks are a no-op (every file compares equal).
    FileId(0, 0)
}

/// This process's connections to one database file, and the identities of the file and its
/// `-wal` and `-shm` as those connections use them.
#[derive(Debug, Default)]
pub(crate) struct DbFiles {
    state: Mutex<DbFilesState>,
}

#[derive(Debug, Default)]
struct DbFilesState {
    /// Pool connections that have completed an operation, and so hold `-shm` open (SQLite
    /// opens `-wal` and `-shm` at a connection's first transaction, not when it opens).
    attached: usize,
    /// Recorded at the first write since `attached` was last 0.
    ids: Option<FileIds>,
}

impl DbFiles {
    /// The record shared by every connection to `db_path` in this process.
    pub(super) fn for_database(db_path: &Path) -> Arc<DbFiles> {
        static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<DbFiles>>>> = OnceLock::new();
        let mut registry = lock(REGISTRY.get_or_init(Default::default));
        if let Some(existing) = registry.get(db_path).and_then(Weak::upgrade) {
            return existing;
        }
        registry.retain(|_, w| w.strong_count() > 0);
        let fresh = Arc::new(DbFiles::default());
        registry.insert(db_path.to_path_buf(), Arc::downgrade(&fresh));
        fresh
    }

    /// Checks, inside a write transaction, that `cache.db` and its `-wal` and `-shm` files at
    /// their paths are still the files this process's connections have open.
    ///
    /// SQLite keeps one `-shm` mapping (and its locks) per database per process while any of
    /// the process's connections is open, so within that time the files at the paths cannot
    /// legitimately change: SQLite deletes `-wal`/`-shm` only when the last connection of the
    /// last process closes, which our open connection prevents. A different or missing file
    /// means another program deleted or replaced it (a temporary-file cleaner deleting
    /// `-shm`, a removed FanoutCache shard): writing on would corrupt the database (a second
    /// `-shm` means a second, unsynchronized lock table) or go to a deleted file, so the
    /// write is refused with [`Error::FileReplaced`].
    ///
    ///
    /// The first write while this process has connections attached records the identities;
    /// they are forgotten when the process's last attached connection to the database closes
    /// (SQLite may then delete `-wal` and `-shm`) and when the journal mode changes. `-wal` and `-shm` are
    /// compared only when they existed at the recording (a rollback-journal database has
    /// neither).
    pub(super) fn verify(&self, db_path: &Path) -> Result<()> {
        let now = file_ids(db_path)?;
        let mut state = lock(&self.state);
        let Some(then) = state.ids else {
            state.ids = Some(now);
            return Ok(());
        };
        for ((was, is), suffix) in then.iter().zip(now).zip(DB_FILE_SUFFIXES) {
            let what = match (was, is) {
                (Some(was), Some(is)) if *was != is => "replaced",
                (Some(_), None) => "deleted",
                _ => continue,
            };
            let mut path = db_path.as_os_str().to_owned();
            path.push(suffix);
            return Err(Error::FileReplaced {
                path: PathBuf::from(path),
                what,
            });
        }
        Ok(())
    }

    pub(super) fn forget(&self) {
        lock(&self.state).ids = None;
    }
}

/// Counts one connection in its database's [`DbFiles`] once it has completed an operation
/// ([`attach`](ConnToken::attach)) until it is dropped, just before the connection closes.
#[derive(Debug)]
pub(crate) struct ConnToken {
    files: Arc<DbFiles>,
    attached: bool,
}

impl ConnToken {
    pub(super) fn new(db_path: &Path) -> Self {
        ConnToken {
            files: DbFiles::for_database(db_path),
            attached: false,
        }
    }

    /// Counts the connection as holding the database's `-shm` open. Called after an operation
    /// completed on it, never before: a connection counted before it attached could keep the
    /// identities of files that another connection's close deleted meanwhile.
    pub(super) fn attach(&mut self) {
        if !self.attached {
            self.attached = true;
            lock(&self.files.state).attached += 1;
        }
    }
}

impl Drop for ConnToken {
    /// Runs just before the connection closes (the token is the first field of [`Conn`] and
    /// [`Connected`]). With no attached connection left, the identities are forgotten: SQLite
    /// may delete `-wal` and `-shm` as this connection closes. Forgetting before the close is
    /// safe: identities are recorded only inside a write transaction, whose connection holds
    /// the `-shm` open, and SQLite deletes the files only when no connection holds it.
    /// Forgetting after the close is not: another thread could compare the files it just
    /// created with the ones this close deleted.
    fn drop(&mut self) {
        let mut state = lock(&self.files.state);
        if self.attached {
            state.attached = state.attached.saturating_sub(1);
        }
        if state.attached == 0 {
            state.ids = None;
        }
    }
}

/// A connection counted in its database's [`DbFiles`].
pub(crate) struct Connected {
    // Dropped before `sql` (fields drop in order): see `ConnToken`'s `Drop`. Held for its
    // `Drop` only.
    #[allow(dead_code)]
    pub(super) token: ConnToken,
    pub(crate) sql: Connection,
}

impl std::ops::Deref for Connected {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.sql
    }
}
