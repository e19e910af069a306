//! Connections, the per-database writer lock, and transactions.
//!
//! - Each cache holds a pool of connections: a thread checks one out per operation, so readers
//!   never wait for each other or for a writer (WAL).
//! - Writers in one process serialize on a [`WriterLock`] shared by every handle on the same
//!   database file, so threads never spin in SQLite's busy handler. Across processes,
//!   `BEGIN IMMEDIATE` is retried from Rust with a short growing backoff until the timeout.
//! - A write transaction is registered in a thread-local list while it runs: calls on the same
//!   database from the same thread (from inside `transact`) join it instead of deadlocking.
//! - Connections remember the process that opened them; after a `fork` the child never uses its
//!   parent's connections, and closes them before opening its own (see
//!   `close_connections_after_fork`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use dcache_disk::FileStore;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};

/// First and largest sleep between `BEGIN IMMEDIATE` attempts while another process writes.
const BACKOFF_START: Duration = Duration::from_micros(20);
const BACKOFF_MAX: Duration = Duration::from_millis(1);

/// Prepared statements kept per connection; more than dcache's fixed statements.
const STATEMENT_CACHE: usize = 128;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data behind (plain values).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The in-process writer lock of one database file.
#[derive(Debug, Default)]
pub(crate) struct WriterLock {
    state: Mutex<LockState>,
    released: Condvar,
}

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

#[derive(Debug, Default)]
struct LockState {
    /// The process of the thread holding the lock (a child of a fork sees its parent's).
    owner: Option<u32>,
    /// Threads waiting on `released`: a release wakes one only if there is one (a wake-up is a
    /// system call).
    waiters: usize,
}

/// Holding the [`WriterLock`]; released on drop.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    lock: Arc<WriterLock>,
}

impl WriterLock {
    /// The lock shared by every handle on `db` in this process.
    pub(crate) fn for_database(db: &Path) -> Arc<WriterLock> {
        static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<WriterLock>>>> = OnceLock::new();
        let mut registry = lock(REGISTRY.get_or_init(Default::default));
        if let Some(existing) = registry.get(db).and_then(Weak::upgrade) {
            return existing;
        }
        registry.retain(|_, w| w.strong_count() > 0);
        let fresh = Arc::new(WriterLock::default());
        registry.insert(db.to_path_buf(), Arc::downgrade(&fresh));
        fresh
    }

    /// Waits for the lock until `deadline` (forever with `None`); `pid` is this process's id.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        pid: u32,
    ) -> Option<WriterGuard> {
        let mut state = lock(&self.state);
        loop {
            match state.owner {
                None => break,
                // Held by a thread of the parent process before a fork: it does not exist here.
                Some(owner) if owner != pid => break,
                Some(_) => {}
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            state.waiters += 1;
            state = match deadline {
                None => self
                    .released
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    self.released
                        .wait_timeout(state, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.waiters -= 1;
        }
        state.owner = Some(pid);
        Some(WriterGuard {
            lock: Arc::clone(self),
        })
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let waiting = {
            let mut state = lock(&self.lock.state);
            state.owner = None;
            state.waiters > 0
        };
        if waiting {
            self.lock.released.notify_one();
        }
    }
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
    fn for_database(db_path: &Path) -> Arc<DbFiles> {
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
    fn verify(&self, db_path: &Path) -> Result<()> {
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

    fn forget(&self) {
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
    fn new(db_path: &Path) -> Self {
        ConnToken {
            files: DbFiles::for_database(db_path),
            attached: false,
        }
    }

    /// Counts the connection as holding the database's `-shm` open. Called after an operation
    /// completed on it, never before: a connection counted before it attached could keep the
    /// identities of files that another connection's close deleted meanwhile.
    fn attach(&mut self) {
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
    token: ConnToken,
    pub(crate) sql: Connection,
}

impl std::ops::Deref for Connected {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.sql
    }
}

/// Per-connection pragmas, from the `sqlite_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pragmas {
    pub(crate) cache_size: i64,
    pub(crate) mmap_size: i64,
    pub(crate) synchronous: i64,
}

/// A connection stamped with the process that opened it and the pragma generation it has.
pub(crate) struct Conn {
    // Before `sql`: uncounted just before the connection closes (see `ConnToken`'s `Drop`).
    // Held for its `Drop` only.
    #[allow(dead_code)]
    token: ConnToken,
    pub(crate) sql: Connection,
    pid: u32,
    generation: u64,
}

/// How a cache's connections open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read and write (the normal case).
    ReadWrite,
    /// Read only: asked for, or the database file is not writable.
    ReadOnly,
    /// Read only, with SQLite's `immutable=1`: a WAL database in a directory this process
    /// cannot write, whose `-shm` file does not exist, can be read no other way. SQLite then
    /// takes no locks, so changes another process makes while this one reads are not seen
    /// reliably; nobody can be writing when the `-shm` file is absent at open.
    Immutable,
}

/// Parking places for idle connections, one per thread (modulo [`SLOTS`]).
const SLOTS: usize = 32;

/// Where one thread parks its connection between operations. Aligned so that no two slots
/// share a cache line: a thread taking and returning its connection writes only memory no
/// other thread touches, so concurrent readers do not slow each other down.
#[derive(Default)]
#[repr(align(128))]
struct Slot(Mutex<Option<Conn>>);

/// This thread's slot: threads are numbered in the order they first use a pool.
fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    // A thread whose thread-locals are being destroyed shares slot 0 (slots are only a
    // preference: a busy or empty slot falls back to the shared list).
    INDEX.try_with(|i| *i).unwrap_or(0)
}

fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// What a connection is taken from the pool for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Reads in autocommit mode: the calling thread's own connection.
    Read,
    /// A write transaction, under the writer lock: the pool's writer connection.
    Write,
}

/// Opens connections to one database and keeps idle ones for reuse.
///
/// For reads, a thread gets back the connection it used last (its [`Slot`]), without locks or
/// memory shared with other threads; connections beyond one per slot wait in a shared list,
/// and a thread with neither takes one parked by another thread before opening a new one.
///
/// Writes, which the writer lock serializes anyway, all use one connection, whatever the
/// thread. SQLite drops a connection's page cache when another connection has committed since
/// its last transaction: with a connection per writing thread, threads taking turns would each
/// re-read every page they touch (about 10 `pread`s per `set`, which doubled the time of
/// `set_2t`).
pub(crate) struct Pool {
    pub(crate) db_path: PathBuf,
    access: Access,
    /// The connections not in use, shared with [`POOLS`] for the sweep after a fork.
    parked: Arc<Parked>,
    /// The pragmas new and reused connections must have, and their generation.
    pragmas: Mutex<(u64, Pragmas)>,
    /// The generation in `pragmas`, readable without the lock.
    generation: AtomicU64,
    /// This process's connections to the database and its files' identities.
    files: Arc<DbFiles>,
}

impl Pool {
    pub(crate) fn new(db_path: PathBuf, access: Access, pragmas: Pragmas) -> Self {
        let parked = Arc::new(Parked {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            writer: Slot::default(),
            idle: Mutex::new(Vec::new()),
        });
        {
            let mut pools = lock(&POOLS);
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(&parked));
        }
        Pool {
            files: DbFiles::for_database(&db_path),
            db_path,
            access,
            parked,
            pragmas: Mutex::new((0, pragmas)),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn read_only(&self) -> bool {
        self.access != Access::ReadWrite
    }

    /// See [`DbFiles::verify`]: inside a write transaction, refuses to go on when the
    /// database's files at their paths are not the ones this process has open.
    pub(crate) fn verify_files(&self) -> Result<()> {
        self.files.verify(&self.db_path)
    }

    /// Forgets the recorded file identities (the journal mode changed: SQLite deleted or
    /// created `-wal` and `-shm`).
    pub(crate) fn forget_files(&self) {
        self.files.forget();
    }

    /// Opens a connection with dcache's settings but no pragmas (used while opening a cache).
    pub(crate) fn connect(db_path: &Path, access: Access) -> Result<Connected> {
        close_connections_after_fork();
        let conn = match access {
            Access::ReadWrite => Connection::open_with_flags(
                db_path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            ),
            Access::ReadOnly => Connection::open_with_flags(
                db_path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            ),
            Access::Immutable => Connection::open_with_flags(
                immutable_uri(db_path),
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_NOFOLLOW
                    | OpenFlags::SQLITE_OPEN_URI,
            ),
        }
        .map_err(|e| map_err(db_path, e))?;
        conn.busy_timeout(Duration::ZERO)
            .map_err(|e| map_err(db_path, e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Connected {
            sql: conn,
            token: ConnToken::new(db_path),
        })
    }

    /// Changes the pragmas; idle and checked-out connections pick them up on next checkout.
    pub(crate) fn set_pragmas(&self, pragmas: Pragmas) {
        let mut p = lock(&self.pragmas);
        if p.1 != pragmas {
            *p = (p.0 + 1, pragmas);
            self.generation.store(p.0, Ordering::Release);
        }
    }

    /// Takes this thread's parked connection, another idle one, or opens one. Opening
    /// retries while the database is busy (another connection closing last checkpoints the
    /// WAL under an exclusive lock).
    ///
    /// `pid` is this process's id (`crate::pid::current()`, cached and cleared in a fork
    /// child): a connection is used only by the process that opened it.
    pub(crate) fn checkout(
        &self,
        purpose: Use,
        pid: u32,
        deadline: Option<Instant>,
        started: Instant,
    ) -> Result<Conn> {
        let mine = slot_index();
        let mut parked = try_lock(&self.slot(purpose, mine).0).and_then(|mut s| s.take());
        loop {
            let candidate = parked
                .take()
                .or_else(|| lock(&self.parked.idle).pop())
                .or_else(|| self.steal(mine));
            match candidate {
                // Opened by the parent before a fork (see `close_connections_after_fork`).
                Some(conn) if conn.pid != pid => close_inherited(conn),
                Some(mut conn) => {
                    if conn.generation != self.generation.load(Ordering::Acquire) {
                        let (generation, pragmas) = *lock(&self.pragmas);
                        retry_busy(&self.db_path, deadline, started, || {
                            apply_pragmas(&conn.sql, &pragmas)
                        })?;
                        conn.generation = generation;
                    }
                    return Ok(conn);
                }
                None => {
                    let (generation, pragmas) = *lock(&self.pragmas);
                    let Connected { sql, token } = Self::connect(&self.db_path, self.access)?;
                    retry_busy(&self.db_path, deadline, started, || {
                        apply_pragmas(&sql, &pragmas)
                    })?;
                    return Ok(Conn {
                        token,
                        sql,
                        pid,
                        generation,
                    });
                }
            }
        }
    }

    /// Takes a connection parked in another thread's slot (that thread may have ended): a new
    /// thread reuses an idle connection rather than opening one, so the pool holds about as
    /// many connections as threads use it at once.
    fn steal(&self, mine: usize) -> Option<Conn> {
        (1..SLOTS)
            .map(|i| &self.parked.slots[(mine + i) % SLOTS])
            .find_map(|slot| try_lock(&slot.0).and_then(|mut s| s.take()))
    }

    fn slot(&self, purpose: Use, mine: usize) -> &Slot {
        match purpose {
            Use::Read => &self.parked.slots[mine],
            Use::Write => &self.parked.writer,
        }
    }

    /// Returns a connection for reuse: parked in this thread's slot (or the writer's) if free.
    ///
    /// The process id is not checked here: a connection checked out by this process is
    /// returned by it (a child forked in between never sees it checked out; [`checkout`] and
    /// the first connection the child opens close the ones it finds parked).
    pub(crate) fn checkin(&self, purpose: Use, mut conn: Conn) {
        conn.token.attach();
        if let Some(mut slot) = try_lock(&self.slot(purpose, slot_index()).0)
            && slot.is_none()
        {
            *slot = Some(conn);
            return;
        }
        lock(&self.parked.idle).push(conn);
    }

    /// Closes idle connections.
    pub(crate) fn close_idle(&self) -> Result<()> {
        let pid = crate::pid::current();
        let mut first_err = None;
        for conn in self.parked.take_all(true) {
            if conn.pid != pid {
                close_inherited(conn);
            } else if let Err((_, e)) = conn.sql.close() {
                first_err.get_or_insert(map_err(&self.db_path, e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The connections of a pool that no operation is using.
struct Parked {
    /// One slot per thread number (modulo [`SLOTS`]) for read connections.
    slots: Box<[Slot]>,
    /// The write connection.
    writer: Slot,
    /// Connections that found their slot taken.
    idle: Mutex<Vec<Conn>>,
}

impl Parked {
    /// Takes every parked connection. With `wait` false, a slot whose lock is held is skipped:
    /// in the child of a fork, a lock held at the fork belongs to a thread that does not exist
    /// there and is never released.
    fn take_all(&self, wait: bool) -> Vec<Conn> {
        let take = |m: &Mutex<Option<Conn>>| {
            if wait {
                lock(m).take()
            } else {
                try_lock(m).and_then(|mut s| s.take())
            }
        };
        let mut all = if wait {
            std::mem::take(&mut *lock(&self.idle))
        } else {
            try_lock(&self.idle)
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        };
        all.extend(
            self.slots
                .iter()
                .chain(std::iter::once(&self.writer))
                .filter_map(|s| take(&s.0)),
        );
        all
    }
}

/// Every pool of the process, for [`close_connections_after_fork`].
static POOLS: Mutex<Vec<Weak<Parked>>> = Mutex::new(Vec::new());

/// In the child of a `fork`, before it opens its first connection: closes every connection its
/// parent left parked in a pool (python-diskcache closes its inherited connection too).
///
/// They must be closed, not merely left unused. SQLite keeps one lock record per database file
/// per process, shared by all of the process's connections to it, and the child inherits its
/// parent's record claiming locks that `fcntl` does not pass to a child. A connection the child
/// opened while an inherited one stayed open would take no lock of its own: the parent closing
/// its last connection would then checkpoint and delete the WAL under the child, and the
/// child's later commits would go to a deleted file (`tests/fork.rs` reproduces that). Closing
/// an inherited connection in the child releases nothing of the parent's (the child holds no
/// `fcntl` lock), and its checkpoint-on-close needs an exclusive lock that the parent's open
/// connections deny.
///
/// A connection that another thread of the parent was using at the fork cannot be reached in
/// the child: fork while no other thread is inside a cache call.
fn close_connections_after_fork() {
    static SWEEP: Mutex<()> = Mutex::new(());
    if !crate::pid::fork_pending() {
        return;
    }
    let _sweeping = lock(&SWEEP);
    if !crate::pid::fork_pending() {
        return;
    }
    let pid = crate::pid::current();
    let pools: Vec<Arc<Parked>> = lock(&POOLS).iter().filter_map(Weak::upgrade).collect();
    let mut closed = 0usize;
    for parked in pools {
        for conn in parked.take_all(false) {
            if conn.pid == pid {
                lock(&parked.idle).push(conn);
            } else {
                close_inherited(conn);
                closed += 1;
            }
        }
    }
    log::debug!("closed {closed} connection(s) inherited through fork by process {pid}");
    crate::pid::fork_handled();
}

/// Closes a connection another process (the parent of a fork) opened.
fn close_inherited(conn: Conn) {
    if let Err((sql, e)) = conn.sql.close() {
        log::warn!("cannot close a connection inherited through fork: {e}");
        // Closing again from `Drop` would fail the same way.
        std::mem::forget(sql);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let pid = crate::pid::current();
        for conn in self.parked.take_all(true) {
            if conn.pid != pid {
                close_inherited(conn);
            }
        }
    }
}

/// `file:<path>?mode=ro&immutable=1`, the path percent-encoded as SQLite's URI parser expects.
fn immutable_uri(db_path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in db_path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            uri.push('%');
            uri.push(char::from(HEX[usize::from(b >> 4)]));
            uri.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

fn apply_pragmas(conn: &Connection, p: &Pragmas) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", p.cache_size)?;
    conn.pragma_update(None, "mmap_size", p.mmap_size)?;
    conn.pragma_update(None, "synchronous", p.synchronous)?;
    Ok(())
}

/// Maps a rusqlite error to dcache's, recognising the cases users act on.
pub(crate) fn map_err(db_path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotADatabase {
            path: db_path.to_path_buf(),
        },
        Some(ErrorCode::ReadOnly) => Error::ReadOnly {
            path: db_path.parent().unwrap_or(db_path).to_path_buf(),
        },
        Some(ErrorCode::DiskFull) => Error::WriteFailed {
            path: db_path.to_path_buf(),
            source: crate::error::SqliteError(e),
        },
        Some(ErrorCode::SystemIoFailure)
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE) =>
        {
            Error::WriteFailed {
                path: db_path.to_path_buf(),
                source: crate::error::SqliteError(e),
            }
        }
        _ => Error::sqlite(db_path, e),
    }
}

/// Whether an error means "another connection holds the lock: try again".
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs `op` until it is not busy, sleeping with a growing backoff, until `deadline`.
pub(crate) fn retry_busy<T>(
    db_path: &Path,
    deadline: Option<Instant>,
    started: Instant,
    mut op: impl FnMut() -> rusqlite::Result<T>,
) -> Result<T> {
    retry_busy_with(deadline, started, || op().map_err(|e| map_err(db_path, e)))
}

/// [`retry_busy`] for an operation failing with dcache errors: an [`Error::Sqlite`] saying
/// busy is retried; past `deadline` it is [`Error::Timeout`].
pub(crate) fn retry_busy_with<T>(
    deadline: Option<Instant>,
    started: Instant,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut backoff = BACKOFF_START;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(Error::Sqlite { source, .. }) if source.is_busy() => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(Error::Timeout {
                        waited: now - started,
                    });
                }
                let sleep = deadline.map_or(backoff, |d| backoff.min(d - now));
                thread::sleep(sleep);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Files to remove when the transaction ends.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Files of replaced or deleted values: removed after the outermost commit.
    after_commit: Vec<(FileStore, String)>,
    /// Files written by this transaction: removed if it rolls back.
    on_rollback: Vec<(FileStore, String)>,
}

/// A write transaction in progress on this thread.
pub(crate) struct ActiveTx {
    db: usize,
    pub(crate) conn: Conn,
    pending: RefCell<Pending>,
    /// A nested call panicked and its savepoint could not be rolled back: never commit.
    poisoned: std::cell::Cell<bool>,
}

thread_local! {
    static ACTIVE: RefCell<Vec<Rc<ActiveTx>>> = const { RefCell::new(Vec::new()) };
}

/// The identity of a database in this process (its writer lock's address).
pub(crate) fn db_id(writer: &Arc<WriterLock>) -> usize {
    Arc::as_ptr(writer) as usize
}

/// The write transaction this thread has open on `db`, if any.
pub(crate) fn active(db: usize) -> Option<Rc<ActiveTx>> {
    // During thread-local teardown (a destructor doing cache work) there is no registry:
    // nothing to join.
    ACTIVE
        .try_with(|a| a.borrow().iter().find(|t| t.db == db).cloned())
        .ok()
        .flatten()
}

/// The handle given to code running inside a write transaction.
pub(crate) struct Tx<'a> {
    pub(crate) sql: &'a Connection,
    pending: &'a RefCell<Pending>,
}

impl Tx<'_> {
    /// Removes `name` once the outermost transaction commits (a replaced or deleted value).
    pub(crate) fn remove_after_commit(&self, files: &FileStore, name: String) {
        self.pending
            .borrow_mut()
            .after_commit
            .push((files.clone(), name));
    }

    /// Removes `name` if the transaction rolls back (a value file this transaction wrote).
    pub(crate) fn remove_on_rollback(&self, files: &FileStore, name: String) {
        self.pending
            .borrow_mut()
            .on_rollback
            .push((files.clone(), name));
    }
}

/// What a write needs to start a transaction.
pub(crate) struct TxContext<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) writer: &'a Arc<WriterLock>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) started: Instant,
}

/// Runs `f` in a write transaction: the one this thread already has open on the database, or
/// a new `BEGIN IMMEDIATE` one that commits if `f` succeeds and rolls back otherwise (also
/// when `f` panics).
pub(crate) fn write<T, E: From<Error>>(
    ctx: &TxContext<'_>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let db = db_id(ctx.writer);
    if let Some(tx) = active(db) {
        return joined(&ctx.pool.db_path, &tx, f);
    }
    if ctx.pool.read_only() {
        let dir = ctx.pool.db_path.parent().unwrap_or(&ctx.pool.db_path);
        return Err(Error::ReadOnly {
            path: dir.to_path_buf(),
        }
        .into());
    }
    let pid = crate::pid::current();
    let guard = ctx
        .writer
        .acquire(ctx.deadline, pid)
        .ok_or(Error::Timeout {
            waited: ctx.started.elapsed(),
        })?;
    let conn = ctx
        .pool
        .checkout(Use::Write, pid, ctx.deadline, ctx.started)?;
    let begun = retry_busy(&ctx.pool.db_path, ctx.deadline, ctx.started, || {
        conn.sql
            .prepare_cached("BEGIN IMMEDIATE")?
            .execute([])
            .map(drop)
    });
    if let Err(e) = begun {
        ctx.pool.checkin(Use::Write, conn);
        return Err(e.into());
    }
    let frame = Frame::begin(ctx.pool, db, conn, guard);
    ctx.pool.verify_files()?;
    let result = f(&frame.tx());
    match result {
        Ok(value) => {
            frame.commit()?;
            Ok(value)
        }
        Err(e) => {
            frame.rollback();
            Err(e)
        }
    }
}

/// Runs `f` inside this thread's open transaction, under a savepoint: if `f` fails, its
/// effects are undone (and the files it wrote removed) while the outer transaction goes on.
/// If `f` panics, the savepoint is rolled back while unwinding too: a caller that catches the
/// panic inside an outer `transact` must not commit half of this call's writes.
fn joined<T, E: From<Error>>(
    db_path: &Path,
    tx: &ActiveTx,
    f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let savepoint = Savepoint::begin(db_path, tx)?;
    let result = f(&Tx {
        sql: &tx.conn.sql,
        pending: &tx.pending,
    });
    match result {
        Ok(value) => {
            savepoint.release()?;
            Ok(value)
        }
        Err(e) => {
            savepoint.rollback()?;
            Err(e)
        }
    }
}

/// A `SAVEPOINT` of one joined call; rolled back when dropped unfinished (a panic unwinding
/// through the call).
struct Savepoint<'a> {
    db_path: &'a Path,
    tx: &'a ActiveTx,
    /// What `pending` held before the call: the call's own entries come after.
    committed_len: usize,
    written_len: usize,
    done: bool,
}

impl<'a> Savepoint<'a> {
    fn begin(db_path: &'a Path, tx: &'a ActiveTx) -> Result<Self> {
        exec_cached(&tx.conn.sql, "SAVEPOINT dcache_op").map_err(|e| map_err(db_path, e))?;
        let (committed_len, written_len) = {
            let p = tx.pending.borrow();
            (p.after_commit.len(), p.on_rollback.len())
        };
        Ok(Savepoint {
            db_path,
            tx,
            committed_len,
            written_len,
            done: false,
        })
    }

    fn release(mut self) -> Result<()> {
        self.done = true;
        exec_cached(&self.tx.conn.sql, "RELEASE dcache_op").map_err(|e| map_err(self.db_path, e))
    }

    fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.undo()
    }

    fn undo(&self) -> Result<()> {
        let sql = &self.tx.conn.sql;
        let undone = exec_cached(sql, "ROLLBACK TO dcache_op")
            .and_then(|()| exec_cached(sql, "RELEASE dcache_op"))
            .map_err(|e| map_err(self.db_path, e));
        let written = {
            let mut p = self.tx.pending.borrow_mut();
            // Files this call meant to remove are still referenced after the rollback.
            p.after_commit.truncate(self.committed_len);
            let from = self.written_len.min(p.on_rollback.len());
            p.on_rollback.split_off(from)
        };
        if undone.is_ok() {
            remove_files(written, "value written by a failed operation");
        } else {
            // The savepoint could not be undone: the rows may still name these files, so
            // they stay until the outer transaction's fate is known.
            self.tx.pending.borrow_mut().on_rollback.extend(written);
        }
        undone
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.undo()
        {
            // Unwinding, and the savepoint could not be undone: the outer transaction must not
            // commit this call's half-done writes, so it is poisoned (`Frame::commit` refuses).
            self.tx.poisoned.set(true);
            log::warn!("dcache: rolling back a panicked operation failed: {e}");
        }
    }
}

fn exec_cached(sql: &Connection, statement: &str) -> rusqlite::Result<()> {
    sql.prepare_cached(statement)
        .and_then(|mut s| s.execute([]))
        .map(drop)
}

/// An open `BEGIN IMMEDIATE` transaction owned by the outermost call on this thread.
struct Frame<'a> {
    pool: &'a Pool,
    tx: Option<Rc<ActiveTx>>,
    guard: Option<WriterGuard>,
}

impl<'a> Frame<'a> {
    fn begin(pool: &'a Pool, db: usize, conn: Conn, guard: WriterGuard) -> Self {
        let tx = Rc::new(ActiveTx {
            db,
            conn,
            pending: RefCell::new(Pending::default()),
            poisoned: std::cell::Cell::new(false),
        });
        // Unregistered during thread-local teardown: later calls then cannot join it.
        if ACTIVE
            .try_with(|a| a.borrow_mut().push(Rc::clone(&tx)))
            .is_err()
        {
            log::debug!("dcache: a transaction began during thread teardown");
        }
        Frame {
            pool,
            tx: Some(tx),
            guard: Some(guard),
        }
    }

    fn tx(&self) -> Tx<'_> {
        // `tx` is Some until commit or rollback consume the frame.
        let tx = self
            .tx
            .as_deref()
            .unwrap_or_else(|| unreachable!("frame already finished"));
        Tx {
            sql: &tx.conn.sql,
            pending: &tx.pending,
        }
    }

    fn commit(mut self) -> Result<()> {
        if self.tx.as_ref().is_some_and(|tx| tx.poisoned.get()) {
            let path = self.pool.db_path.clone();
            self.rollback();
            return Err(Error::TransactionAborted { path });
        }
        let committed = self
            .tx()
            .sql
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        match committed {
            Ok(_) => {
                let pending = self.end();
                remove_files(pending.after_commit, "replaced or deleted value");
                Ok(())
            }
            Err(e) => {
                let err = map_err(&self.pool.db_path, e);
                self.rollback();
                Err(err)
            }
        }
    }

    fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn rollback_in_place(&mut self) {
        if let Some(tx) = &self.tx {
            // SQLite may have rolled back already (after SQLITE_FULL, say): then ROLLBACK
            // reports "no transaction is active", which is the state we want.
            if let Err(e) = tx.conn.sql.execute_batch("ROLLBACK") {
                if tx.conn.sql.is_autocommit() {
                    log::debug!("dcache: ROLLBACK after an automatic rollback: {e}");
                } else {
                    log::warn!(
                        "dcache: ROLLBACK failed on {}: {e}",
                        self.pool.db_path.display()
                    );
                }
            }
        }
        let pending = self.end();
        remove_files(
            pending.on_rollback,
            "value written by a rolled-back transaction",
        );
    }

    /// Unregisters the transaction, returns the connection, releases the writer lock.
    fn end(&mut self) -> Pending {
        let Some(tx) = self.tx.take() else {
            return Pending::default();
        };
        if ACTIVE
            .try_with(|a| a.borrow_mut().retain(|t| !Rc::ptr_eq(t, &tx)))
            .is_err()
        {
            log::debug!("dcache: a transaction ended during thread teardown");
        }
        let pending = match Rc::try_unwrap(tx) {
            Ok(ActiveTx { conn, pending, .. }) => {
                if conn.sql.is_autocommit() {
                    self.pool.checkin(Use::Write, conn);
                }
                pending.into_inner()
            }
            // Unreachable in practice: nested calls drop their clones before returning.
            Err(tx) => std::mem::take(&mut *tx.pending.borrow_mut()),
        };
        // Released after the connection is back: the next writer finds it in the writer slot.
        self.guard = None;
        pending
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // Unwinding out of the transaction body: roll back.
            self.rollback_in_place();
        }
    }
}

/// Removes value files once their fate is sealed. A failure leaves an orphan file that
/// `check(fix)` removes; it is logged, not returned, because the transaction's outcome is
/// already decided.
fn remove_files(files: Vec<(FileStore, String)>, what: &str) {
    for (store, name) in files {
        if let Err(e) = store.remove(&name) {
            log::warn!("dcache: could not remove {what} file {name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRAGMAS: Pragmas = Pragmas {
        cache_size: 100,
        mmap_size: 0,
        synchronous: 1,
    };

    fn marked(conn: &Conn, name: &str) -> bool {
        conn.sql
            .query_row(
                "SELECT count(*) FROM temp.sqlite_master WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .is_ok_and(|n| n == 1)
    }

    fn mark(conn: &Conn, name: &str) {
        conn.sql
            .execute_batch(&format!("CREATE TEMP TABLE {name} (x)"))
            .expect("a temp table on a fresh connection");
    }

    fn checkout(pool: &Pool) -> Conn {
        pool.checkout(Use::Read, crate::pid::current(), None, Instant::now())
            .expect("checkout")
    }

    #[test]
    fn a_thread_gets_its_own_connection_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let step = std::sync::Barrier::new(2);
        let mine = checkout(&pool);
        mark(&mine, "main");
        thread::scope(|s| {
            s.spawn(|| {
                let other = checkout(&pool);
                mark(&other, "other");
                step.wait(); // both hold a connection
                step.wait(); // main returned its connection first
                pool.checkin(Use::Read, other);
                step.wait();
                let again = checkout(&pool);
                assert!(
                    marked(&again, "other"),
                    "the other thread lost its connection"
                );
                pool.checkin(Use::Read, again);
            });
            step.wait();
            pool.checkin(Use::Read, mine);
            step.wait();
            step.wait(); // the other thread returned its connection last
            let again = checkout(&pool);
            assert!(
                marked(&again, "main"),
                "this thread got another thread's connection"
            );
            pool.checkin(Use::Read, again);
        });
    }

    #[test]
    fn writes_from_any_thread_use_the_writer_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let writer = pool
            .checkout(Use::Write, crate::pid::current(), None, Instant::now())
            .expect("checkout");
        mark(&writer, "writer");
        pool.checkin(Use::Write, writer);
        let reader = checkout(&pool);
        assert!(
            !marked(&reader, "writer"),
            "a read took the writer connection"
        );
        thread::scope(|s| {
            s.spawn(|| {
                let writer = pool
                    .checkout(Use::Write, crate::pid::current(), None, Instant::now())
                    .expect("checkout");
                assert!(
                    marked(&writer, "writer"),
                    "another thread wrote on another connection"
                );
                pool.checkin(Use::Write, writer);
            });
        });
        pool.checkin(Use::Read, reader);
    }

    #[test]
    fn close_idle_closes_parked_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let conn = checkout(&pool);
        mark(&conn, "old");
        pool.checkin(Use::Read, conn);
        pool.close_idle().expect("close");
        let fresh = checkout(&pool);
        assert!(!marked(&fresh, "old"), "a closed connection came back");
    }

    #[test]
    fn new_pragmas_reach_parked_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let cache_size = |conn: &Conn| -> i64 {
            conn.sql
                .query_row("PRAGMA cache_size", [], |r| r.get(0))
                .expect("pragma")
        };
        let conn = checkout(&pool);
        assert_eq!(cache_size(&conn), 100);
        pool.checkin(Use::Read, conn);
        pool.set_pragmas(Pragmas {
            cache_size: 321,
            ..PRAGMAS
        });
        let conn = checkout(&pool);
        assert_eq!(cache_size(&conn), 321);
        pool.checkin(Use::Read, conn);
    }

    #[test]
    fn a_new_thread_reuses_a_connection_parked_by_a_finished_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        thread::scope(|s| {
            s.spawn(|| {
                let conn = checkout(&pool);
                mark(&conn, "parked");
                pool.checkin(Use::Read, conn);
            });
        });
        thread::scope(|s| {
            s.spawn(|| {
                let conn = checkout(&pool);
                assert!(
                    marked(&conn, "parked"),
                    "a new connection was opened beside an idle one"
                );
                pool.checkin(Use::Read, conn);
            });
        });
    }

    #[test]
    fn connections_beyond_the_parking_slot_are_kept_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let first = checkout(&pool);
        let second = checkout(&pool);
        mark(&first, "first");
        mark(&second, "second");
        pool.checkin(Use::Read, first);
        pool.checkin(Use::Read, second);
        let a = checkout(&pool);
        let b = checkout(&pool);
        let found = |name| marked(&a, name) || marked(&b, name);
        assert!(
            found("first") && found("second"),
            "an idle connection was dropped"
        );
    }
}
