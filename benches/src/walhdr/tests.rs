//! The header reader against real databases: commits by another connection, reads, WAL
//! restarts and python-diskcache writers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use rusqlite::Connection;

use super::{READ_LEN, ShmReader, Unknown, WalIndex, WalIndexHeader, checksum, parse};

type TestResult = crate::Result<()>;

fn wal_connection(db: &Path) -> crate::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    Ok(conn)
}

fn header(shm: &ShmReader) -> crate::Result<WalIndexHeader> {
    match shm.read()? {
        Ok(index) => Ok(index.header),
        Err(why) => Err(format!("no valid header: {why}").into()),
    }
}

/// A database with a table and one row, a reader connection and the `-shm` handle.
fn setup(dir: &Path) -> crate::Result<(PathBuf, Connection, ShmReader)> {
    let db = dir.join("cache.db");
    let conn = wal_connection(&db)?;
    conn.execute_batch(
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); INSERT INTO t VALUES (0, x'00')",
    )?;
    let shm = ShmReader::open(&db)?;
    Ok((db, conn, shm))
}

#[test]
fn every_commit_by_another_connection_changes_the_header() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (db, reader, shm) = setup(dir.path())?;
    let writer = wal_connection(&db)?;
    let mut last = header(&shm)?;
    assert_eq!(last.version, super::WAL_INDEX_VERSION);
    assert_eq!(last.page_size, 4096);
    for i in 1..=20 {
        writer.execute("INSERT INTO t VALUES (?1, x'0102')", [i])?;
        let now = header(&shm)?;
        assert_ne!(now.change, last.change, "commit {i}");
        assert!(now.max_frame > last.max_frame, "commit {i}");
        assert_ne!(now, last);
        assert_eq!(now.salt, last.salt, "no WAL restart without a checkpoint");
        last = now;
    }
    let rows: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    assert_eq!(rows, 21);
    Ok(())
}

#[test]
fn reads_and_empty_transactions_leave_the_header_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (db, reader, shm) = setup(dir.path())?;
    let other = wal_connection(&db)?;
    let before = shm.read()?.map_err(|w| w.to_string())?;
    for _ in 0..10 {
        let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        let _: Vec<u8> = other.query_row("SELECT v FROM t WHERE k = 0", [], |r| r.get(0))?;
    }
    reader.execute_batch("BEGIN; SELECT * FROM t; COMMIT")?;
    other.execute_batch("BEGIN IMMEDIATE; ROLLBACK")?;
    assert_eq!(shm.read()?.map_err(|w| w.to_string())?, before);
    Ok(())
}

#[test]
fn a_truncating_checkpoint_then_a_write_changes_the_salts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (db, reader, shm) = setup(dir.path())?;
    let writer = wal_connection(&db)?;
    let before = header(&shm)?;
    assert!(before.max_frame > 0);
    let (busy, _, _): (i64, i64, i64) =
        writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    assert_eq!(busy, 0, "the checkpoint ran to completion");
    assert_eq!(std::fs::metadata(dir.path().join("cache.db-wal"))?.len(), 0);
    writer.execute("INSERT INTO t VALUES (1, x'01')", [])?;
    let after = header(&shm)?;
    assert_ne!(after, before);
    assert_ne!(after.salt, before.salt, "the WAL restarted with new salts");
    assert!(after.max_frame > 0);
    // The same from the reader's side: a read sees the new row.
    let rows: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    assert_eq!(rows, 2);
    // And a restart that lands on the same mxFrame still differs (salts, checksums).
    writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    writer.execute("UPDATE t SET v = x'02' WHERE k = 1", [])?;
    let again = header(&shm)?;
    assert_eq!(
        again.max_frame, after.max_frame,
        "the same frame count again"
    );
    assert_ne!(again.salt, after.salt);
    assert_ne!(again, after);
    Ok(())
}

#[test]
fn a_held_read_transaction_keeps_a_truncating_checkpoint_from_finishing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (db, reader, shm) = setup(dir.path())?;
    let writer = wal_connection(&db)?;
    writer.busy_timeout(std::time::Duration::ZERO)?;
    reader.execute_batch("BEGIN")?;
    let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    writer.execute("INSERT INTO t VALUES (1, x'01')", [])?;
    let seen = header(&shm)?;
    let checkpoint = |c: &Connection| -> rusqlite::Result<i64> {
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
    };
    assert_eq!(checkpoint(&writer)?, 1, "busy while the snapshot is held");
    assert!(std::fs::metadata(dir.path().join("cache.db-wal"))?.len() > 0);
    // The held snapshot does not see the commit; the header says it happened.
    let rows: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    assert_eq!(rows, 1);
    assert_eq!(header(&shm)?, seen);
    reader.execute_batch("COMMIT")?;
    assert_eq!(checkpoint(&writer)?, 0);
    assert_eq!(std::fs::metadata(dir.path().join("cache.db-wal"))?.len(), 0);
    Ok(())
}

#[test]
fn torn_uninitialised_and_corrupt_headers_are_unknown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_db, _conn, shm) = setup(dir.path())?;
    let mut bytes = [0u8; READ_LEN];
    std::fs::File::open(dir.path().join("cache.db-shm"))
        .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut bytes, 0))?;
    let good: WalIndex = parse(&bytes).map_err(|w| w.to_string())?;
    assert_eq!(Ok(good), shm.read()?);
    assert_eq!(checksum(&bytes[..40]), good.header.checksum);

    let mut torn = bytes;
    torn[48 + 16] ^= 1; // copy 1's mxFrame, as a writer between the two copies leaves it
    assert_eq!(parse(&torn), Err(Unknown::Torn));

    let mut uninit = bytes;
    uninit[12] = 0;
    uninit[48 + 12] = 0;
    assert_eq!(parse(&uninit), Err(Unknown::NotInitialized));

    let mut corrupt = bytes;
    corrupt[20] ^= 1;
    corrupt[48 + 20] ^= 1;
    assert_eq!(parse(&corrupt), Err(Unknown::BadChecksum));

    assert_eq!(parse(&[0u8; READ_LEN]), Err(Unknown::NotInitialized));
    Ok(())
}

#[test]
fn a_short_or_missing_shm_falls_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let short = dir.path().join("short.db");
    std::fs::write(dir.path().join("short.db-shm"), [0u8; 100])?;
    assert_eq!(ShmReader::open(&short)?.read()?, Err(Unknown::Short));

    // A rollback-journal database has no -shm at all.
    let db = dir.path().join("rollback.db");
    let conn = Connection::open(&db)?;
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)")?;
    let err = ShmReader::open(&db).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("WAL mode"), "{err}");
    Ok(())
}

/// The interpreter with python-diskcache, from `DCACHE_PYTHON` (default `python3`); `None`
/// with a loud message outside CI, a failure in CI (`CI=true`).
fn python() -> Option<PathBuf> {
    let exe =
        std::env::var_os("DCACHE_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let ok = Command::new(&exe)
        .args(["-c", "import diskcache"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(exe);
    }
    let why = format!("{} cannot import diskcache", exe.display());
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "python-diskcache is required in CI: {why}"
    );
    eprintln!(
        "!!!!!!!! SKIPPING a python-diskcache test: {why}; install it with: python3 -m venv .venv \
         && .venv/bin/pip install diskcache==5.6.3 && export DCACHE_PYTHON=$PWD/.venv/bin/python"
    );
    None
}

/// A python-diskcache process on `dir` that runs one statement per line sent and answers
/// each with a line once it is done, so the header can be read between its steps.
struct PythonCache {
    child: Child,
    answers: BufReader<ChildStdout>,
}

impl PythonCache {
    fn open(python: &Path, dir: &Path) -> crate::Result<Self> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(
                "import diskcache, sys\n\
                 c = diskcache.Cache(sys.argv[1])\n\
                 print('open', flush=True)\n\
                 for line in sys.stdin:\n    \
                     exec(line)\n    \
                     print('ok', flush=True)\n",
            )
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let answers = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut cache = PythonCache { child, answers };
        cache.expect("open")?;
        Ok(cache)
    }

    fn expect(&mut self, what: &str) -> TestResult {
        let mut line = String::new();
        self.answers.read_line(&mut line)?;
        if line.trim_end() == what {
            Ok(())
        } else {
            Err(format!("python answered {line:?}, not {what:?} (see its stderr)").into())
        }
    }

    fn run(&mut self, statement: &str) -> TestResult {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{statement}")?;
        stdin.flush()?;
        self.expect("ok")
    }

    fn close(mut self) -> TestResult {
        self.run("c.close()")?;
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("python exited with {status}").into())
        }
    }
}

#[test]
fn python_diskcache_writes_change_the_header() -> TestResult {
    let Some(python) = python() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let cache = dcache::Cache::open(dir.path())?;
    cache.set("rust-key", &b"rust"[..])?;
    // A connection of our own keeps the -shm file (and our handle on it) alive.
    let db = dir.path().join("cache.db");
    let conn = wal_connection(&db)?;
    let shm = ShmReader::open(&db)?;
    // Opening a python-diskcache Cache commits (settings, triggers): read after it.
    let mut py = PythonCache::open(&python, dir.path())?;
    let before = header(&shm)?;

    py.run("assert c.get('rust-key') == b'rust'")?;
    assert_eq!(header(&shm)?, before, "a python read commits nothing");

    py.run("c.set('py-key', b'python')")?;
    let after_set = header(&shm)?;
    assert_ne!(after_set, before);
    assert!(after_set.max_frame > before.max_frame);
    assert_eq!(
        cache.get::<Vec<u8>>("py-key")?.as_deref(),
        Some(&b"python"[..])
    );

    py.run("assert c.delete('rust-key')")?;
    let after_delete = header(&shm)?;
    assert_ne!(after_delete, after_set);

    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    py.run("c.set('py-key', b'again')")?;
    let after_restart = header(&shm)?;
    assert_ne!(after_restart, after_delete);
    assert_ne!(after_restart.salt, after_delete.salt);
    assert_eq!(
        cache.get::<Vec<u8>>("py-key")?.as_deref(),
        Some(&b"again"[..])
    );
    py.close()
}
