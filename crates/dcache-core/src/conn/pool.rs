//! The connection pool: idle connections parked per thread, the writer's connection, and the
//! [`Pooled`] guard an operation holds, which returns its connection on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::busy::{Op, map_err};
use super::files::{ConnToken, Connected, DbFiles};
use super::fork::{POOLS, close_connections_after_fork, close_inherited};
use super::{lock, try_lock};
use crate::error::Result;

/// Prepared statements kept per connection; more than dcache's fixed statements.
const STATEMENT_CACHE: usize = 128;

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
    token: ConnToken,
    pub(crate) sql: Connection,
    pub(super) pid: u32,
    generation: u64,
}

/// A connection taken from a [`Pool`] for one operation; back in the pool when dropped (as
/// rusqlite's `CachedStatement` goes back to its statement cache).
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    purpose: Use,
    /// `Some` until dropped or [`into_conn`](Self::into_conn).
    conn: Option<Conn>,
}

impl Pooled<'_> {
    /// Takes the connection out of the guard: the caller returns it with [`Pool::checkin`] (a
    /// write transaction, whose connection lives in the thread's registry of transactions).
    pub(crate) fn into_conn(mut self) -> Conn {
        match self.conn.take() {
            Some(conn) => conn,
            None => unreachable!("a pooled connection taken twice"),
        }
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // `None` only inside `into_conn` and `drop`, which consume the guard.
        match &self.conn {
            Some(conn) => &conn.sql,
            None => unreachable!("a pooled connection used after it was returned"),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.checkin(self.purpose, conn);
        }
    }
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
    /// A connection is used only by the process that opened it (`crate::pid::current()`,
    /// cached and cleared in a fork child).
    pub(crate) fn checkout(&self, purpose: Use, op: &Op<'_>) -> Result<Pooled<'_>> {
        let conn = self.take(purpose, op)?;
        Ok(Pooled {
            pool: self,
            purpose,
            conn: Some(conn),
        })
    }

    fn take(&self, purpose: Use, op: &Op<'_>) -> Result<Conn> {
        let pid = crate::pid::current();
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
                        op.retry_busy(|| apply_pragmas(&conn.sql, &pragmas))?;
                        conn.generation = generation;
                    }
                    return Ok(conn);
                }
                None => {
                    let (generation, pragmas) = *lock(&self.pragmas);
                    let Connected { sql, token } = Self::connect(&self.db_path, self.access)?;
                    op.retry_busy(|| apply_pragmas(&sql, &pragmas))?;
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

    /// Returns a connection for reuse (a [`Pooled`] guard does it when dropped): parked in this thread's slot (or the writer's) if free.
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
pub(super) struct Parked {
    /// One slot per thread number (modulo [`SLOTS`]) for read connections.
    slots: Box<[Slot]>,
    /// The write connection.
    writer: Slot,
    /// Connections that found their slot taken.
    pub(super) idle: Mutex<Vec<Conn>>,
}

impl Parked {
    /// Takes every parked connection. With `wait` false, a slot whose lock is held is skipped:
    /// in the child of a fork, a lock held at the fork belongs to a thread that does not exist
    /// there and is never released.
    pub(super) fn take_all(&self, wait: bool) -> Vec<Conn> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const PRAGMAS: Pragmas = Pragmas {
        cache_size: 100,
        mmap_size: 0,
        synchronous: 1,
    };

    fn marked(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM temp.sqlite_master WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 1)
    }

    fn mark(conn: &Connection, name: &str) {
        conn.execute_batch(&format!("CREATE TEMP TABLE {name} (x)"))
            .expect("a temp table on a fresh connection");
    }

    fn checkout(pool: &Pool) -> Pooled<'_> {
        pool.checkout(Use::Read, &Op::new(&pool.db_path, None))
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
                drop(other);
                step.wait();
                let again = checkout(&pool);
                assert!(
                    marked(&again, "other"),
                    "the other thread lost its connection"
                );
                drop(again);
            });
            step.wait();
            drop(mine);
            step.wait();
            step.wait(); // the other thread returned its connection last
            let again = checkout(&pool);
            assert!(
                marked(&again, "main"),
                "this thread got another thread's connection"
            );
            drop(again);
        });
    }

    #[test]
    fn writes_from_any_thread_use_the_writer_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let writer = pool
            .checkout(Use::Write, &Op::new(&pool.db_path, None))
            .expect("checkout");
        mark(&writer, "writer");
        drop(writer);
        let reader = checkout(&pool);
        assert!(
            !marked(&reader, "writer"),
            "a read took the writer connection"
        );
        thread::scope(|s| {
            s.spawn(|| {
                let writer = pool
                    .checkout(Use::Write, &Op::new(&pool.db_path, None))
                    .expect("checkout");
                assert!(
                    marked(&writer, "writer"),
                    "another thread wrote on another connection"
                );
                drop(writer);
            });
        });
        drop(reader);
    }

    #[test]
    fn close_idle_closes_parked_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let conn = checkout(&pool);
        mark(&conn, "old");
        drop(conn);
        pool.close_idle().expect("close");
        let fresh = checkout(&pool);
        assert!(!marked(&fresh, "old"), "a closed connection came back");
    }

    #[test]
    fn new_pragmas_reach_parked_connections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        let cache_size = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA cache_size", [], |r| r.get(0))
                .expect("pragma")
        };
        let conn = checkout(&pool);
        assert_eq!(cache_size(&conn), 100);
        drop(conn);
        pool.set_pragmas(Pragmas {
            cache_size: 321,
            ..PRAGMAS
        });
        let conn = checkout(&pool);
        assert_eq!(cache_size(&conn), 321);
        drop(conn);
    }

    #[test]
    fn a_new_thread_reuses_a_connection_parked_by_a_finished_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Pool::new(dir.path().join("cache.db"), Access::ReadWrite, PRAGMAS);
        thread::scope(|s| {
            s.spawn(|| {
                let conn = checkout(&pool);
                mark(&conn, "parked");
                drop(conn);
            });
        });
        thread::scope(|s| {
            s.spawn(|| {
                let conn = checkout(&pool);
                assert!(
                    marked(&conn, "parked"),
                    "a new connection was opened beside an idle one"
                );
                drop(conn);
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
        drop(first);
        drop(second);
        let a = checkout(&pool);
        let b = checkout(&pool);
        let found = |name| marked(&a, name) || marked(&b, name);
        assert!(
            found("first") && found("second"),
            "an idle connection was dropped"
        );
    }
}
