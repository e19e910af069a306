//! A lock-free look at SQLite's WAL-index header: the first 136 bytes of `<db>-shm`, read with
//! one positioned read (no memory map, no `unsafe`).
//!
//! The `-shm` file of a WAL database starts with two copies of a 48-byte header followed by
//! the checkpoint information (SQLite's "WAL-mode file format" document). Every field is in the
//! byte order of the machine that wrote it:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | `iVersion` (3007000) |
//! | 4  | 4 | unused |
//! | 8  | 4 | `iChange`: incremented by every commit |
//! | 12 | 1 | `isInit`: non-zero once the header is valid |
//! | 13 | 1 | `bigEndCksum`: WAL frame checksums are big-endian |
//! | 14 | 2 | `szPage`: page size (65536 is stored as 1) |
//! | 16 | 4 | `mxFrame`: index of the last valid commit frame in the WAL |
//! | 20 | 4 | `nPage`: database size in pages |
//! | 24 | 8 | `aFrameCksum[2]`: checksum of the last frame |
//! | 32 | 8 | `aSalt[2]`: the WAL's salts, new on every WAL restart |
//! | 40 | 8 | `aCksum[2]`: checksum of bytes 0..40 of this copy |
//!
//! then at offset 96 the checkpoint information, whose first word `nBackfill` counts the WAL
//! frames already copied into the database.
//!
//! A writer updates copy 1 first, then (after a memory barrier) copy 0; a reader takes copy 0,
//! then copy 1, and believes them only when they are byte-for-byte equal, initialised, and the
//! checksum matches. [`parse`] applies exactly that rule and answers [`Unknown`] otherwise: a
//! caller then falls back to asking SQLite (which takes its read lock and settles the header).
//! One `pread` copies the bytes in ascending address order, copy 0 before copy 1, the order
//! SQLite's reader uses, so a read racing a writer sees either an old copy 0 (the copies then
//! differ, or are both old) or a new copy 0 after a new copy 1: never a mix that passes.
//!
//! Whatever commits (this process, another, python-diskcache), the header changes: `iChange`,
//! `mxFrame` and the checksums move on every commit, and a WAL restart (after a full
//! checkpoint, `wal_checkpoint(TRUNCATE)` for instance) draws new salts. Equal headers read at two
//! moments therefore mean that nothing was committed in between — provided the `-shm` file read
//! is the one SQLite uses: the file is deleted when the last connection to the database closes,
//! so a reader keeps a connection of its own open for as long as it trusts its [`ShmReader`].
//!
//! ```
//! use benches::walhdr::ShmReader;
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("cache.db");
//! let conn = rusqlite::Connection::open(&db)?;
//! conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
//! conn.execute_batch("CREATE TABLE t (x)")?;
//! let shm = ShmReader::open(&db)?;
//! let before = shm.read()?.expect("a valid header");
//! conn.execute_batch("INSERT INTO t VALUES (1)")?;
//! let after = shm.read()?.expect("a valid header");
//! assert_ne!(before.header, after.header);
//! assert!(after.header.max_frame > before.header.max_frame);
//! # Ok::<(), benches::Error>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of one copy of the header.
pub const HEADER_LEN: usize = 48;

/// Bytes read from the start of `-shm`: both header copies and the checkpoint information.
pub const READ_LEN: usize = 136;

/// The only WAL-index version SQLite has written (since 3.7.0).
pub const WAL_INDEX_VERSION: u32 = 3_007_000;

/// Offset of the checkpoint information (`nBackfill` is its first word).
const CHECKPOINT_INFO: usize = 2 * HEADER_LEN;

/// Bytes of a copy covered by its checksum (everything before `aCksum`).
const CHECKSUMMED: usize = 40;

/// One copy of the WAL-index header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalIndexHeader {
    /// `iVersion`: [`WAL_INDEX_VERSION`].
    pub version: u32,
    /// `iChange`: counts commits (wrapping).
    pub change: u32,
    /// `bigEndCksum`: the WAL file's frame checksums are big-endian.
    pub big_endian_checksum: bool,
    /// The database page size in bytes.
    pub page_size: u32,
    /// `mxFrame`: the last valid commit frame in the WAL (0 after a restart).
    pub max_frame: u32,
    /// `nPage`: the database size in pages.
    pub pages: u32,
    /// `aFrameCksum`: the running checksum at the last frame.
    pub frame_checksum: [u32; 2],
    /// `aSalt`: the WAL's salts, drawn anew at every WAL restart.
    pub salt: [u32; 2],
    /// `aCksum`: the checksum of this copy.
    pub checksum: [u32; 2],
}

/// A valid read of the first [`READ_LEN`] bytes of `-shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalIndex {
    /// The header both copies agree on: compare it to learn whether anything was committed.
    pub header: WalIndexHeader,
    /// `nBackfill`: WAL frames already copied into the database. It moves on checkpoints,
    /// which change no content, so it is not part of the comparison.
    pub backfilled: u32,
}

/// Why the bytes read do not give a header to trust: the caller falls back to SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// The file holds fewer than [`READ_LEN`] bytes (no connection has set it up yet).
    Short,
    /// The two copies differ: a writer was between them, or recovery is under way.
    Torn,
    /// `isInit` is zero: the header was never written, or recovery reset it.
    NotInitialized,
    /// The copies agree but their checksum does not match their content.
    BadChecksum,
    /// A version other than [`WAL_INDEX_VERSION`].
    Version(u32),
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Short => write!(f, "the -shm file is shorter than {READ_LEN} bytes"),
            Unknown::Torn => write!(f, "the two copies of the WAL-index header differ"),
            Unknown::NotInitialized => write!(f, "the WAL-index header is not initialised"),
            Unknown::BadChecksum => write!(f, "the WAL-index header checksum does not match"),
            Unknown::Version(v) => write!(
                f,
                "unknown WAL-index version {v} (expected {WAL_INDEX_VERSION})"
            ),
        }
    }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// SQLite's WAL checksum over native-order words, as the header uses it (`walChecksumBytes`
/// with native order and no seed): pairs of words feed two running sums.
#[must_use]
pub fn checksum(bytes: &[u8]) -> [u32; 2] {
    let (mut s1, mut s2) = (0u32, 0u32);
    for pair in bytes.chunks_exact(8) {
        s1 = s1.wrapping_add(word(pair, 0)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(pair, 4)).wrapping_add(s1);
    }
    [s1, s2]
}

/// Decodes the first [`READ_LEN`] bytes of `-shm` with SQLite's reader rule: both copies
/// byte-for-byte equal, `isInit` set, checksum matching.
///
/// # Errors
///
/// [`Unknown`] when the bytes cannot be trusted; the caller falls back to SQLite.
pub fn parse(bytes: &[u8; READ_LEN]) -> Result<WalIndex, Unknown> {
    let (copy0, rest) = bytes.split_at(HEADER_LEN);
    let copy1 = &rest[..HEADER_LEN];
    if copy0 != copy1 {
        return Err(Unknown::Torn);
    }
    if copy0[12] == 0 {
        return Err(Unknown::NotInitialized);
    }
    let stored = [word(copy0, 40), word(copy0, 44)];
    if checksum(&copy0[..CHECKSUMMED]) != stored {
        return Err(Unknown::BadChecksum);
    }
    let version = word(copy0, 0);
    if version != WAL_INDEX_VERSION {
        return Err(Unknown::Version(version));
    }
    let stored_page_size = u16::from_ne_bytes([copy0[14], copy0[15]]);
    let page_size = if stored_page_size == 1 {
        65_536
    } else {
        u32::from(stored_page_size)
    };
    Ok(WalIndex {
        header: WalIndexHeader {
            version,
            change: word(copy0, 8),
            big_endian_checksum: copy0[13] != 0,
            page_size,
            max_frame: word(copy0, 16),
            pages: word(copy0, 20),
            frame_checksum: [word(copy0, 24), word(copy0, 28)],
            salt: [word(copy0, 32), word(copy0, 36)],
            checksum: stored,
        },
        backfilled: word(bytes, CHECKPOINT_INFO),
    })
}

/// The `-shm` path SQLite uses for the database at `db`.
#[must_use]
pub fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// An open, read-only handle on a database's `-shm` file.
#[derive(Debug)]
pub struct ShmReader {
    file: File,
}

impl ShmReader {
    /// Opens `<db>-shm` for reading.
    ///
    /// # Errors
    ///
    /// The I/O error when the file cannot be opened: it is missing when the database is not in
    /// WAL mode or no connection has it open (fall back to SQLite then).
    pub fn open(db: &Path) -> io::Result<Self> {
        let path = shm_path(db);
        let file = File::open(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot open {} (is the database in WAL mode and open?): {e}",
                    path.display()
                ),
            )
        })?;
        Ok(ShmReader { file })
    }

    /// Reads and decodes the header with one positioned read.
    ///
    /// # Errors
    ///
    /// The outer error is an I/O failure of the read; the inner one says why the bytes read
    /// cannot be trusted (a file shorter than [`READ_LEN`] is [`Unknown::Short`]).
    pub fn read(&self) -> io::Result<Result<WalIndex, Unknown>> {
        let mut bytes = [0u8; READ_LEN];
        match self.file.read_exact_at(&mut bytes, 0) {
            Ok(()) => Ok(parse(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Err(Unknown::Short)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
