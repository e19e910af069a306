//! Value files: `hh/hh/<28 hex>.val` below the cache directory.
//!
//! A name read from the database is used only if it is a value file name ([`components`]);
//! on unix it is then walked from a descriptor of the cache directory without following links
//! (module `sys`), so no check can be raced by a swap before the use.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How many fresh names a write tries before giving up (python-diskcache tries 10).
const CREATE_ATTEMPTS: usize = 10;

/// Copy buffer for streamed writes: bounded memory whatever the value's size.
const STREAM_CHUNK: usize = 1 << 16;

/// The largest value file [`FileStore::read`] reads into memory by default (4 GiB); larger
/// ones are streamed with [`FileStore::open`] (`Cache::read`).
pub const DEFAULT_MAX_READ: u64 = 4 << 30;

/// The longest stored value file name accepted, in bytes (Linux's `PATH_MAX`).
const MAX_NAME_LEN: usize = 4096;

/// The most components a stored value file name may have (python writes 3).
const MAX_COMPONENTS: usize = 16;

/// The value files of one cache directory.
///
/// Names are random (`hh/hh/<28 hex>.val`, python-diskcache's layout), created exclusively so a
/// concurrent writer never shares a file. A name read back from the database is used only if
/// it is a value file name (see [`resolve`](Self::resolve)): never the database, never the top
/// level of the directory, never outside it. On unix every operation then walks the name one
/// component at a time from a descriptor of the cache directory (`openat`, `mkdirat`,
/// `unlinkat`, all with `O_NOFOLLOW`), so a symbolic link planted anywhere below the directory
/// is never followed, for creating, reading and removing alike, and no check can be raced by a
/// swap before the use. A value file that is not a regular file (a FIFO, a socket, a device, a
/// directory) is refused without being opened for reading, so it cannot block.
///
/// # Examples
///
/// ```
/// use dcache_disk::FileStore;
///
/// let dir = tempfile::tempdir()?;
/// let files = FileStore::new(dir.path());
/// let name = files.write(b"hello")?;
/// assert_eq!(name.len(), "ab/cd/".len() + 28 + ".val".len());
/// assert_eq!(files.read(&name, 5)?, b"hello");
/// files.remove(&name)?;
/// assert!(std::fs::read_dir(dir.path())?.next().is_none()); // empty hh/hh pruned
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    sync: bool,
    max_read: u64,
}

impl FileStore {
    /// Value files below `root` (the cache directory).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore {
            root: root.into(),
            sync: false,
            max_read: DEFAULT_MAX_READ,
        }
    }

    /// Whether written files and their directories are fsynced before [`write`](Self::write)
    /// returns (default false). With it, a value file survives power loss once its row commits.
    #[must_use]
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The largest value file [`read`](Self::read) reads into memory, in bytes (default
    /// [`DEFAULT_MAX_READ`], 4 GiB). A larger file is an [`Error::TooLarge`] before anything is
    /// allocated; [`open`](Self::open) streams files of any size.
    #[must_use]
    pub fn with_max_read(mut self, max_read: u64) -> Self {
        self.max_read = max_read;
        self
    }

    /// The cache directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a stored value file name to its absolute path, refusing anything that is not a
    /// value file name.
    ///
    /// A value file name is a relative path of 2 to 16 components (python writes
    /// `hh/hh/<32 hex>.val`; a python `Disk` subclass may pick other names below the
    /// directory), each a plain name: not empty, not `.` or `..`, no NUL, and none starting
    /// with `cache.db` (the database and its `-wal`/`-shm`/`-journal`). `/` and `\` both
    /// separate components (python on Windows stores backslashes). Nothing at the top level
    /// of the cache directory is ever a value file: the database lives there.
    ///
    /// This checks the name only; [`open`](Self::open) and [`remove`](Self::remove) also
    /// refuse links on the way.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] for an absolute path or one with `..` (it would leave the
    /// directory); [`Error::NotAValueFile`] for any other name that is not a value file name.
    pub fn resolve(&self, relpath: &str) -> Result<PathBuf> {
        let parts = components(relpath)?;
        let mut path = self.root.clone();
        path.extend(&parts);
        Ok(path)
    }

    /// Writes `bytes` to a new value file and returns its relative path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory or file cannot be created or written.
    pub fn write(&self, bytes: &[u8]) -> Result<String> {
        let (name, path, mut file, dirs) = self.create()?;
        let written = file
            .write_all(bytes)
            .and_then(|()| self.finish(&file, &dirs));
        self.cleanup_on_error(written, &name, &path)?;
        Ok(name)
    }

    /// Copies `reader` to a new value file in bounded memory; returns the relative path and the
    /// number of bytes written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when reading `reader` or writing the file fails; the partial file is removed.
    pub fn write_from(&self, reader: &mut dyn Read) -> Result<(String, u64)> {
        let (name, path, mut file, dirs) = self.create()?;
        let mut buf = vec![0u8; STREAM_CHUNK];
        let mut total = 0u64;
        let copied = (|| {
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                file.write_all(&buf[..n])?;
                total += n as u64;
            }
            self.finish(&file, &dirs)
        })();
        self.cleanup_on_error(copied, &name, &path)?;
        Ok((name, total))
    }

    /// Opens a value file for reading, checking that it is a regular file holding
    /// `expected_size` bytes.
    ///
    /// A FIFO, socket or device is refused without being opened for reading; the file is
    /// opened non-blocking and checked again once open, so a swap in between cannot block
    /// either. No symbolic link is followed, in the file's place or on the way to it.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] (also for a path through, or to, a symbolic link),
    /// [`Error::NotAValueFile`], [`Error::NotAFile`], [`Error::MissingFile`],
    /// [`Error::SizeMismatch`] or [`Error::Io`].
    pub fn open(&self, relpath: &str, expected_size: u64) -> Result<File> {
        let parts = components(relpath)?;
        let path = self.join(&parts);
        let (file, size) = sys::open_read(&self.root, relpath, &parts, &path)?;
        if size != expected_size {
            return Err(Error::SizeMismatch {
                path,
                expected: expected_size,
                actual: size,
            });
        }
        Ok(file)
    }

    /// Reads a whole value file, checking its kind and size first.
    ///
    /// Memory is allocated for what the file holds (its row and the file system agree on it),
    /// up to [`with_max_read`](Self::with_max_read); a larger file, or one whose buffer the
    /// allocator refuses, is an error rather than an abort.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), plus [`Error::TooLarge`] and [`Error::Io`] on a read error.
    pub fn read(&self, relpath: &str, expected_size: u64) -> Result<Vec<u8>> {
        let path = || self.root.join(relpath);
        let file = self.open(relpath, expected_size)?;
        let too_large = || Error::TooLarge {
            path: path(),
            size: expected_size,
            limit: self.max_read,
        };
        if expected_size > self.max_read {
            return Err(too_large());
        }
        let capacity = usize::try_from(expected_size).map_err(|_| too_large())?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(capacity).map_err(|_| too_large())?;
        // One byte more than expected tells a file that grew since it was checked.
        file.take(expected_size.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path(), e))?;
        if buf.len() as u64 != expected_size {
            // Changed between the size check and the read.
            return Err(Error::SizeMismatch {
                path: path(),
                expected: expected_size,
                actual: buf.len() as u64,
            });
        }
        Ok(buf)
    }

    /// Maps a value file into memory, checking its size first.
    ///
    /// Needs the `mmap` feature.
    ///
    /// Use this only for files no process truncates while the map lives: reading a mapped page
    /// past the end of a truncated file kills the process with `SIGBUS`. dcache never truncates a
    /// value file (a replaced value gets a new file), but another program could.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), plus [`Error::Io`] if mapping fails.
    #[cfg(feature = "mmap")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mmap")))]
    pub fn map(&self, relpath: &str, expected_size: u64) -> Result<memmap2::Mmap> {
        let file = self.open(relpath, expected_size)?;
        // SAFETY: the map is read-only and the caller is told (above) that truncating the
        // file while the map lives is undefined; dcache itself only ever unlinks value files,
        // which keeps mapped pages valid.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) };
        map.map_err(|e| Error::io(self.root.join(relpath), e))
    }

    /// Removes a value file (a missing one is fine) and prunes its empty parent directories,
    /// never the cache directory itself. A symbolic link in place of the file is removed
    /// itself, never its target; a directory in its place is not removed.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] (also for a path through a symbolic link to a directory),
    /// [`Error::NotAValueFile`], or [`Error::Io`] when the file exists but cannot be removed.
    pub fn remove(&self, relpath: &str) -> Result<()> {
        let parts = components(relpath)?;
        let path = self.join(&parts);
        sys::remove(&self.root, relpath, &parts, &path)
    }

    /// The absolute path of validated components.
    fn join(&self, parts: &[&str]) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(parts);
        path
    }

    /// Creates a new, exclusively owned file with a random name; also returns the directories
    /// it is in (for `fsync`), innermost first.
    fn create(&self) -> Result<(String, PathBuf, File, Vec<File>)> {
        let mut last_err = None;
        for _ in 0..CREATE_ATTEMPTS {
            let name = random_name();
            let parts: Vec<&str> = name.split('/').collect();
            let path = self.join(&parts);
            match sys::create(&self.root, &name, &parts, &path) {
                Ok((file, dirs)) => return Ok((name, path, file, dirs)),
                // A name collision, the directory pruned by another process in between, or
                // a link planted in place of a directory: try a fresh name.
                Err(Retry::Again(e)) => last_err = Some(e),
                Err(Retry::Fail(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::io(
                &self.root,
                io::Error::other("could not create a value file"),
            )
        }))
    }

    fn finish(&self, file: &File, dirs: &[File]) -> io::Result<()> {
        if self.sync {
            file.sync_all()?;
            // The new directory entries (file, hh/hh, hh) must reach the disk too.
            for dir in dirs {
                dir.sync_all()?;
            }
        }
        Ok(())
    }

    fn cleanup_on_error(&self, result: io::Result<()>, name: &str, path: &Path) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Keep the original error; a failure to remove the partial file leaves an
                // orphan that `check` reports and removes.
                if let Err(remove_err) = self.remove(name) {
                    return Err(Error::io(
                        path,
                        io::Error::new(
                            e.kind(),
                            format!("{e} (and removing the partial file failed: {remove_err})"),
                        ),
                    ));
                }
                Err(Error::io(path, e))
            }
        }
    }
}

/// A failed attempt to create a value file: worth another name, or not.
enum Retry {
    /// Try a fresh name.
    Again(Error),
    /// Give up.
    Fail(Error),
}

/// Splits and checks a stored value file name (see [`FileStore::resolve`]).
fn components(relpath: &str) -> Result<Vec<&str>> {
    let refuse = |reason: &'static str| Error::NotAValueFile {
        path: relpath.to_owned(),
        reason,
    };
    if relpath.is_empty() {
        return Err(refuse("it is empty"));
    }
    let parts: Vec<&str> = relpath.split(['/', '\\']).collect();
    if relpath.starts_with(['/', '\\']) || parts.contains(&"..") {
        return Err(Error::UnsafePath {
            path: relpath.to_owned(),
        });
    }
    if relpath.len() > MAX_NAME_LEN {
        return Err(refuse("it is longer than 4096 bytes"));
    }
    if relpath.contains('\0') {
        return Err(refuse("it holds a NUL byte"));
    }
    for part in &parts {
        if part.is_empty() || *part == "." {
            return Err(refuse("it has an empty or `.` component"));
        }
        // A drive or UNC prefix (on Windows) is not a plain name either.
        let mut std_parts = Path::new(part).components();
        if !matches!(
            (std_parts.next(), std_parts.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(Error::UnsafePath {
                path: relpath.to_owned(),
            });
        }
        if part.starts_with("cache.db") {
            return Err(refuse(
                "it names the database or one of its journal files (`cache.db*`)",
            ));
        }
    }
    if parts.len() < 2 {
        return Err(refuse(
            "it names the top level of the cache directory, where the database lives",
        ));
    }
    if parts.len() > MAX_COMPONENTS {
        return Err(refuse("it is nested deeper than 16 levels"));
    }
    Ok(parts)
}

/// File operations relative to a descriptor of the cache directory, never following a link.
#[cfg(unix)]
mod sys {
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;

    use super::Retry;
    use crate::error::{Error, Result};

    /// Flags for every directory opened below the root: never a link, never blocking, never
    /// inherited.
    fn dir_flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
    }

    /// The outcome of opening the directories of a name.
    enum Walk {
        /// All directories, the root first.
        Found(Vec<OwnedFd>),
        /// A directory on the way does not exist.
        Missing,
    }

    /// The name of a file kind, for [`Error::NotAFile`]; `None` for a regular file.
    fn kind_name(kind: FileType) -> Option<&'static str> {
        match kind {
            FileType::RegularFile => None,
            FileType::Directory => Some("directory"),
            FileType::Symlink => Some("symbolic link"),
            FileType::Fifo => Some("FIFO"),
            FileType::Socket => Some("socket"),
            FileType::CharacterDevice => Some("character device"),
            FileType::BlockDevice => Some("block device"),
            FileType::Unknown => Some("special file"),
        }
    }

    fn unsafe_path(relpath: &str) -> Error {
        Error::UnsafePath {
            path: relpath.to_owned(),
        }
    }

    /// Opens the cache directory itself. Its own path may go through links: it is the
    /// caller's choice, not data read from the database.
    fn open_root(root: &Path) -> Result<OwnedFd> {
        rfs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Error::io(root, e.into()))
    }

    /// Opens the directories of `parts` (all but the last), never following a link; with
    /// `create`, makes the missing ones (mode 0o777 less the umask, as python's `makedirs`).
    fn walk(root: &Path, relpath: &str, parts: &[&str], create: bool) -> Result<Walk, Retry> {
        let (_, dirs) = parts
            .split_last()
            .ok_or_else(|| Retry::Fail(unsafe_path(relpath)))?;
        let root_fd = match open_root(root) {
            // The cache directory itself is made like `create_dir_all` (its path is trusted).
            Err(Error::Io { source, .. })
                if create && source.kind() == std::io::ErrorKind::NotFound =>
            {
                std::fs::create_dir_all(root).map_err(|e| Retry::Fail(Error::io(root, e)))?;
                open_root(root).map_err(Retry::Fail)?
            }
            opened => opened.map_err(Retry::Fail)?,
        };
        let mut fds = vec![root_fd];
        let mut at = root.to_path_buf();
        for name in dirs {
            at.push(name);
            let parent = fds
                .last()
                .ok_or_else(|| Retry::Fail(unsafe_path(relpath)))?;
            let mut made = false;
            let fd = loop {
                match rfs::openat(parent, *name, dir_flags(), Mode::empty()) {
                    Ok(fd) => break fd,
                    Err(Errno::NOENT) if create && !made => {
                        match rfs::mkdirat(parent, *name, Mode::from_raw_mode(0o777)) {
                            Ok(()) | Err(Errno::EXIST) => made = true,
                            Err(e) => return Err(Retry::Fail(Error::io(&at, e.into()))),
                        }
                    }
                    // Pruned by another process right after it was made: a fresh name.
                    Err(Errno::NOENT) if create => {
                        return Err(Retry::Again(Error::io(&at, Errno::NOENT.into())));
                    }
                    Err(Errno::NOENT) => return Ok(Walk::Missing),
                    Err(Errno::LOOP) => return Err(Retry::Again(unsafe_path(relpath))),
                    // Linux reports a link opened with O_DIRECTORY | O_NOFOLLOW as ENOTDIR.
                    // A link, or a directory again (a link swapped in and out), is refused as
                    // a link; anything else is named.
                    Err(Errno::NOTDIR) => {
                        let kind = rfs::statat(parent, *name, AtFlags::SYMLINK_NOFOLLOW)
                            .map(|st| FileType::from_raw_mode(st.st_mode));
                        return Err(Retry::Again(match kind {
                            Ok(FileType::Symlink | FileType::Directory) | Err(_) => {
                                unsafe_path(relpath)
                            }
                            Ok(kind) => Error::io(
                                &at,
                                std::io::Error::other(format!(
                                    "a directory of value files is a {}",
                                    kind_name(kind).unwrap_or("regular file")
                                )),
                            ),
                        }));
                    }
                    Err(e) => return Err(Retry::Fail(Error::io(&at, e.into()))),
                }
            };
            fds.push(fd);
        }
        Ok(Walk::Found(fds))
    }

    /// `walk` for reading and removing, where every error is final.
    fn walk_existing(root: &Path, relpath: &str, parts: &[&str]) -> Result<Walk> {
        walk(root, relpath, parts, false).map_err(|e| match e {
            Retry::Again(e) | Retry::Fail(e) => e,
        })
    }

    /// Opens a value file for reading; returns it and its size.
    pub(super) fn open_read(
        root: &Path,
        relpath: &str,
        parts: &[&str],
        path: &Path,
    ) -> Result<(File, u64)> {
        let missing = || Error::MissingFile {
            path: path.to_path_buf(),
        };
        let Walk::Found(dirs) = walk_existing(root, relpath, parts)? else {
            return Err(missing());
        };
        let (Some(dir), Some(name)) = (dirs.last(), parts.last()) else {
            return Err(unsafe_path(relpath));
        };
        let fail = |e: Errno| match e {
            Errno::NOENT => missing(),
            Errno::LOOP => unsafe_path(relpath),
            Errno::NXIO => Error::NotAFile {
                path: path.to_path_buf(),
                kind: "socket",
            },
            e => Error::io(path, e.into()),
        };
        let check_kind = |mode| match FileType::from_raw_mode(mode) {
            FileType::Symlink => Err(unsafe_path(relpath)),
            kind => match kind_name(kind) {
                None => Ok(()),
                Some(kind) => Err(Error::NotAFile {
                    path: path.to_path_buf(),
                    kind,
                }),
            },
        };
        // The kind first, without opening: a FIFO or device is never opened at all.
        let st = rfs::statat(dir, *name, AtFlags::SYMLINK_NOFOLLOW).map_err(fail)?;
        check_kind(st.st_mode)?;
        // Non-blocking, so that a FIFO swapped in after the check cannot block the open; the
        // kind is checked again on what was opened.
        let fd = rfs::openat(
            dir,
            *name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(fail)?;
        let st = rfs::fstat(&fd).map_err(fail)?;
        check_kind(st.st_mode)?;
        let flags = rfs::fcntl_getfl(&fd).map_err(fail)?;
        rfs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK).map_err(fail)?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        Ok((File::from(fd), size))
    }

    /// Creates a value file exclusively; returns it and its directories, innermost first.
    pub(super) fn create(
        root: &Path,
        relpath: &str,
        parts: &[&str],
        path: &Path,
    ) -> Result<(File, Vec<File>), Retry> {
        let Walk::Found(dirs) = walk(root, relpath, parts, true)? else {
            return Err(Retry::Again(Error::MissingFile {
                path: path.to_path_buf(),
            }));
        };
        let (Some(dir), Some(name)) = (dirs.last(), parts.last()) else {
            return Err(Retry::Fail(unsafe_path(relpath)));
        };
        let file = match rfs::openat(
            dir,
            *name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) => File::from(fd),
            Err(e @ (Errno::EXIST | Errno::NOENT | Errno::LOOP)) => {
                return Err(Retry::Again(Error::io(path, e.into())));
            }
            Err(e) => return Err(Retry::Fail(Error::io(path, e.into()))),
        };
        Ok((file, dirs.into_iter().rev().map(File::from).collect()))
    }

    /// Unlinks a value file in its directory and prunes the directories it leaves empty.
    pub(super) fn remove(root: &Path, relpath: &str, parts: &[&str], path: &Path) -> Result<()> {
        let Walk::Found(dirs) = walk_existing(root, relpath, parts)? else {
            return Ok(());
        };
        let (Some(dir), Some(name)) = (dirs.last(), parts.last()) else {
            return Err(unsafe_path(relpath));
        };
        match rfs::unlinkat(dir, *name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::ISDIR) => {
                return Err(Error::NotAFile {
                    path: path.to_path_buf(),
                    kind: "directory",
                });
            }
            Err(e) => return Err(Error::io(path, e.into())),
        }
        // Prune: each directory below the root, innermost first, until one is not empty.
        let parents = dirs.split_last().map_or(&[][..], |(_, parents)| parents);
        for (parent, name) in parents.iter().zip(parts).rev() {
            if rfs::unlinkat(parent, *name, AtFlags::REMOVEDIR).is_err() {
                break;
            }
        }
        Ok(())
    }
}
/// File operations by path on systems without `openat`: links are checked before use (a
/// swap in between is not excluded there).
#[cfg(not(unix))]
mod sys {
    use std::fs::{self, File, OpenOptions};
    use std::io;
    use std::path::Path;

    use super::Retry;
    use crate::error::{Error, Result};

    fn unsafe_path(relpath: &str) -> Error {
        Error::UnsafePath {
            path: relpath.to_owned(),
        }
    }

    /// Refuses a path through a directory below the root that is a symbolic link.
    fn check_dirs(root: &Path, relpath: &str, path: &Path) -> Result<()> {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root {
                break;
            }
            if fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(unsafe_path(relpath));
            }
            dir = d.parent();
        }
        Ok(())
    }

    pub(super) fn open_read(
        root: &Path,
        relpath: &str,
        _parts: &[&str],
        path: &Path,
    ) -> Result<(File, u64)> {
        check_dirs(root, relpath, path)?;
        let fail = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => Error::MissingFile {
                path: path.to_path_buf(),
            },
            _ => Error::io(path, e),
        };
        let at_path = fs::symlink_metadata(path).map_err(fail)?;
        if at_path.file_type().is_symlink() {
            return Err(unsafe_path(relpath));
        }
        if !at_path.is_file() {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: if at_path.is_dir() {
                    "directory"
                } else {
                    "special file"
                },
            });
        }
        let file = File::open(path).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if !meta.is_file() {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: "special file",
            });
        }
        Ok((file, meta.len()))
    }

    pub(super) fn create(
        root: &Path,
        relpath: &str,
        _parts: &[&str],
        path: &Path,
    ) -> Result<(File, Vec<File>), Retry> {
        let dir = path.parent().unwrap_or(root);
        // Before creating directories (none through a planted link) and after (one swapped in).
        check_dirs(root, relpath, path).map_err(Retry::Again)?;
        if let Err(e) = fs::create_dir_all(dir) {
            return Err(Retry::Again(Error::io(dir, e)));
        }
        check_dirs(root, relpath, path).map_err(Retry::Again)?;
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => Ok((file, Vec::new())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
                ) =>
            {
                Err(Retry::Again(Error::io(path, e)))
            }
            Err(e) => Err(Retry::Fail(Error::io(path, e))),
        }
    }

    pub(super) fn remove(root: &Path, relpath: &str, _parts: &[&str], path: &Path) -> Result<()> {
        check_dirs(root, relpath, path)?;
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

/// 128 random bits as 32 lowercase hex digits, laid out as python's `Disk.filename` does:
/// `hh/hh/<28 hex>.val`.
fn random_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bits = [0u64; 2];
    for (i, word) in bits.iter_mut().enumerate() {
        // `RandomState` is seeded from the OS once per thread and perturbed per instance; mixing
        // in a process-wide counter, the time and the pid makes names unique even if two
        // processes ever shared seeds. Collisions are still handled by `create_new`.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        h.write_u32(std::process::id());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        *word = h.finish();
    }
    let hex = format!("{:016x}{:016x}", bits[0], bits[1]);
    format!("{}/{}/{}.val", &hex[0..2], &hex[2..4], &hex[4..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn names_have_pythons_layout_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let name = random_name();
            let bytes = name.as_bytes();
            assert_eq!(bytes.len(), 38);
            assert_eq!((bytes[2], bytes[5]), (b'/', b'/'));
            assert_eq!(Path::new(&name).extension(), Some("val".as_ref()));
            assert!(
                name[..34]
                    .chars()
                    .all(|c| c == '/' || c.is_ascii_hexdigit())
            );
            assert!(seen.insert(name));
        }
    }

    #[test]
    fn resolve_refuses_paths_outside_the_directory() {
        let files = FileStore::new("/cache");
        assert_eq!(
            files.resolve("ab/cd/x.val").unwrap(),
            Path::new("/cache/ab/cd/x.val")
        );
        assert_eq!(
            files.resolve("ab\\cd\\x.val").unwrap(),
            Path::new("/cache/ab/cd/x.val")
        );
        assert_eq!(
            files.resolve("values/my name.bin").unwrap(),
            Path::new("/cache/values/my name.bin")
        );
        for bad in [
            "/etc/passwd",
            "\\x",
            "../x",
            "ab/../../x",
            "ab/..",
            "a//b/..",
        ] {
            assert!(
                matches!(files.resolve(bad), Err(Error::UnsafePath { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn resolve_refuses_names_that_are_not_value_files() {
        let files = FileStore::new("/cache");
        let deep = vec!["d"; MAX_COMPONENTS + 1].join("/");
        let long = format!("ab/{}", "x".repeat(MAX_NAME_LEN));
        for bad in [
            "",
            ".",
            "./",
            "x.val",
            "cache.db",
            "cache.db-wal",
            "cache.db-shm",
            "cache.db-journal",
            "./cache.db",
            "ab/cache.db",
            "ab//x.val",
            "ab/./x.val",
            "ab/cd/",
            "ab/c\0d",
            &deep,
            &long,
        ] {
            assert!(
                matches!(files.resolve(bad), Err(Error::NotAValueFile { .. })),
                "{bad:?}: {:?}",
                files.resolve(bad)
            );
        }
    }

    proptest::proptest! {
        /// Any accepted name resolves strictly below the root, at least one directory down,
        /// through plain components only, and never to the database.
        #[test]
        fn accepted_names_stay_in_the_value_file_namespace(
            name in "([a-z./\\\\]|cache\\.db|\\.\\.|\\x00){0,12}"
        ) {
            if let Ok(path) = FileStore::new("/cache").resolve(&name) {
                let rel = path.strip_prefix("/cache").unwrap();
                let parts: Vec<_> = rel.components().collect();
                proptest::prop_assert!(parts.len() >= 2, "{name:?}");
                for part in parts {
                    let Component::Normal(part) = part else {
                        return Err(proptest::test_runner::TestCaseError::fail(format!("{name:?}")));
                    };
                    proptest::prop_assert!(!part.to_string_lossy().starts_with("cache.db"));
                }
            }
        }
    }

    #[test]
    fn names_a_python_disk_subclass_may_pick_are_read_and_removed() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        fs::create_dir_all(dir.path().join("values/sub")).unwrap();
        fs::write(dir.path().join("values/sub/my value.bin"), b"abc").unwrap();
        assert_eq!(files.read("values/sub/my value.bin", 3)?, b"abc");
        assert_eq!(files.read("values\\sub\\my value.bin", 3)?, b"abc");
        files.remove("values/sub/my value.bin")?;
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        Ok(())
    }

    #[test]
    fn write_read_remove_round_trip() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path()).with_sync(true);
        let a = files.write(b"aaa")?;
        let (b, n) = files.write_from(&mut &b"streamed"[..])?;
        assert_eq!(n, 8);
        assert_eq!(files.read(&a, 3)?, b"aaa");
        #[cfg(feature = "mmap")]
        assert_eq!(&files.map(&b, 8)?[..], b"streamed");
        assert_eq!(files.read(&b, 8)?, b"streamed");
        assert!(matches!(
            files.read(&a, 4),
            Err(Error::SizeMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        files.remove(&a)?;
        files.remove(&a)?; // already gone: fine
        assert!(matches!(files.read(&a, 3), Err(Error::MissingFile { .. })));
        files.remove(&b)?;
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        Ok(())
    }

    #[test]
    fn failed_stream_leaves_no_file() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("source broke"))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        assert!(matches!(
            files.write_from(&mut Failing),
            Err(Error::Io { .. })
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_below_the_root_are_refused() -> Result<()> {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("cache");
        let outside = parent.path().join("outside");
        let files = FileStore::new(&root);
        let name = files.write(b"in")?;
        // A link in place of the first directory level, to a directory holding the rest.
        let victim = outside.join(&name[3..]);
        fs::create_dir_all(victim.parent().unwrap()).unwrap();
        fs::write(&victim, b"out").unwrap();
        fs::remove_dir_all(root.join(&name[..2])).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(&name[..2])).unwrap();
        assert!(matches!(
            files.read(&name, 3),
            Err(Error::UnsafePath { .. })
        ));
        assert!(matches!(files.remove(&name), Err(Error::UnsafePath { .. })));
        assert_eq!(fs::read(&victim).unwrap(), b"out");
        // A link in place of the file itself: never read; removing removes only the link.
        let name = files.write(b"in")?;
        let secret = parent.path().join("secret");
        fs::write(&secret, b"abc").unwrap();
        fs::remove_file(root.join(&name)).unwrap();
        std::os::unix::fs::symlink(&secret, root.join(&name)).unwrap();
        assert!(matches!(
            files.read(&name, 3),
            Err(Error::UnsafePath { .. })
        ));
        files.remove(&name)?;
        assert_eq!(fs::read(&secret).unwrap(), b"abc");
        Ok(())
    }

    #[test]
    fn a_directory_in_place_of_a_file_is_an_error() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        let name = files.write(b"x")?;
        let path = files.resolve(&name)?;
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(matches!(
            files.read(&name, 1),
            Err(Error::NotAFile {
                kind: "directory",
                ..
            })
        ));
        // Removing does not remove the directory.
        assert!(files.remove(&name).is_err());
        assert!(path.is_dir());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_a_file_is_refused_without_blocking() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        let name = files.write(b"x")?;
        let path = files.resolve(&name)?;
        fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            files.read(&name, 1),
            Err(Error::NotAFile { kind: "FIFO", .. })
        ));
        assert!(matches!(
            files.open(&name, 0),
            Err(Error::NotAFile { kind: "FIFO", .. })
        ));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn creation_never_goes_through_a_planted_link() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("cache");
        let outside = parent.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // Every first-level directory a name could use is a link to `outside`.
        for i in 0..=255u8 {
            std::os::unix::fs::symlink(&outside, root.join(format!("{i:02x}"))).unwrap();
        }
        let files = FileStore::new(&root);
        assert!(matches!(files.write(b"x"), Err(Error::UnsafePath { .. })));
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn oversized_files_are_refused_before_allocating() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path()).with_max_read(4);
        let name = files.write(b"12345")?;
        assert!(matches!(
            files.read(&name, 5),
            Err(Error::TooLarge {
                size: 5,
                limit: 4,
                ..
            })
        ));
        // Streaming has no limit.
        let mut back = Vec::new();
        files.open(&name, 5)?.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"12345");
        Ok(())
    }
}
