//! Value files: `hh/hh/<28 hex>.val` below the cache directory.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
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

/// The value files of one cache directory.
///
/// Names are random (`hh/hh/<28 hex>.val`, python-diskcache's layout), created exclusively so a
/// concurrent writer never shares a file, and paths read back from the database are checked to
/// stay inside the directory before any file is opened or removed.
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
}

impl FileStore {
    /// Value files below `root` (the cache directory).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore {
            root: root.into(),
            sync: false,
        }
    }

    /// Whether written files and their directories are fsynced before [`write`](Self::write)
    /// returns (default false). With it, a value file survives power loss once its row commits.
    #[must_use]
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The cache directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a stored relative path, refusing anything that would leave the directory.
    ///
    /// Accepts `/` and `\` as separators (python on Windows stores backslashes).
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] for an empty or absolute path or one with `..`.
    pub fn resolve(&self, relpath: &str) -> Result<PathBuf> {
        let unsafe_path = || Error::UnsafePath {
            path: relpath.to_owned(),
        };
        if relpath.is_empty() || relpath.starts_with(['/', '\\']) {
            return Err(unsafe_path());
        }
        let mut path = self.root.clone();
        for part in relpath.split(['/', '\\']) {
            let mut components = Path::new(part).components();
            match (components.next(), components.next()) {
                (Some(Component::Normal(name)), None) => path.push(name),
                (Some(Component::CurDir), None) => {}
                _ => return Err(unsafe_path()),
            }
        }
        if path == self.root {
            return Err(unsafe_path());
        }
        Ok(path)
    }

    /// [`resolve`](Self::resolve) for a path about to be opened or removed: also refuses a
    /// path through a directory below the root that is a symbolic link, which could lead
    /// outside the cache directory.
    fn resolve_on_disk(&self, relpath: &str) -> Result<PathBuf> {
        let path = self.resolve(relpath)?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root {
                break;
            }
            if fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::UnsafePath {
                    path: relpath.to_owned(),
                });
            }
            dir = d.parent();
        }
        Ok(path)
    }

    /// Writes `bytes` to a new value file and returns its relative path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory or file cannot be created or written.
    pub fn write(&self, bytes: &[u8]) -> Result<String> {
        let (name, path, mut file) = self.create()?;
        let written = file
            .write_all(bytes)
            .and_then(|()| self.finish(&file, &path));
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
        let (name, path, mut file) = self.create()?;
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
            self.finish(&file, &path)
        })();
        self.cleanup_on_error(copied, &name, &path)?;
        Ok((name, total))
    }

    /// Opens a value file for reading, checking that it holds `expected_size` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] (also for a path through, or to, a symbolic link),
    /// [`Error::MissingFile`], [`Error::SizeMismatch`] or [`Error::Io`].
    pub fn open(&self, relpath: &str, expected_size: u64) -> Result<File> {
        let path = self.resolve_on_disk(relpath)?;
        let missing = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => Error::MissingFile { path: path.clone() },
            _ => Error::io(&path, e),
        };
        let unsafe_path = || Error::UnsafePath {
            path: relpath.to_owned(),
        };
        // The file opened must be the one at the path itself, not the target of a symbolic
        // link (which could be anywhere): look at the path first, then check that the file
        // opened is that one. (Not the other way round: a writer may unlink the file once it
        // is open, which must not fail the read.)
        let at_path = fs::symlink_metadata(&path).map_err(missing)?;
        if at_path.file_type().is_symlink() {
            return Err(unsafe_path());
        }
        let file = File::open(&path).map_err(missing)?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !same_file(&at_path, &meta) {
            return Err(unsafe_path());
        }
        if !meta.is_file() {
            return Err(Error::io(
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "value file is not a regular file",
                ),
            ));
        }
        if meta.len() != expected_size {
            return Err(Error::SizeMismatch {
                path,
                expected: expected_size,
                actual: meta.len(),
            });
        }
        Ok(file)
    }

    /// Reads a whole value file, checking its size first.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), plus [`Error::Io`] on a read error.
    pub fn read(&self, relpath: &str, expected_size: u64) -> Result<Vec<u8>> {
        let mut file = self.open(relpath, expected_size)?;
        let capacity = usize::try_from(expected_size).unwrap_or(usize::MAX);
        let mut buf = Vec::with_capacity(capacity);
        file.read_to_end(&mut buf)
            .map_err(|e| Error::io(self.root.join(relpath), e))?;
        if buf.len() as u64 != expected_size {
            // Changed between the size check and the read.
            return Err(Error::SizeMismatch {
                path: self.root.join(relpath),
                expected: expected_size,
                actual: buf.len() as u64,
            });
        }
        Ok(buf)
    }

    /// Maps a value file into memory, checking its size first.
    ///
    /// Use this only for files no process truncates while the map lives: reading a mapped page
    /// past the end of a truncated file kills the process with `SIGBUS`. dcache never truncates a
    /// value file (a replaced value gets a new file), but another program could.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), plus [`Error::Io`] if mapping fails.
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
    /// itself, never its target.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafePath`] (also for a path through a symbolic link to a directory), or
    /// [`Error::Io`] when the file exists but cannot be removed.
    pub fn remove(&self, relpath: &str) -> Result<()> {
        let path = self.resolve_on_disk(relpath)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        self.prune(&path);
        Ok(())
    }

    /// Removes empty directories from `path`'s parent up to (not including) the root. Stops at
    /// the first directory that cannot be removed: it is not empty, which is the normal case.
    fn prune(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Creates a new, exclusively owned file with a random name.
    fn create(&self) -> Result<(String, PathBuf, File)> {
        let mut last_err = None;
        for _ in 0..CREATE_ATTEMPTS {
            let name = random_name();
            let path = self.root.join(&name);
            let dir = path.parent().unwrap_or(&self.root);
            if let Err(e) = fs::create_dir_all(dir) {
                last_err = Some(Error::io(dir, e));
                continue;
            }
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((name, path, file)),
                // A name collision, or the directory was pruned by another process between
                // create_dir_all and open: try a fresh name.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
                    ) =>
                {
                    last_err = Some(Error::io(&path, e));
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::io(
                &self.root,
                io::Error::other("could not create a value file"),
            )
        }))
    }

    fn finish(&self, file: &File, path: &Path) -> io::Result<()> {
        if self.sync {
            file.sync_all()?;
            // The new directory entries (file, hh/hh, hh) must reach the disk too.
            let mut dir = path.parent();
            while let Some(d) = dir {
                File::open(d)?.sync_all()?;
                if d == self.root {
                    break;
                }
                dir = d.parent();
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

/// Whether `opened` (the metadata of a file just opened) is the file `at_path` (the metadata
/// of its path, read just before opening). Names are never reused, so they differ only when
/// the path was swapped in between (for a link, say).
fn same_file(at_path: &fs::Metadata, opened: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (at_path.dev(), at_path.ino()) == (opened.dev(), opened.ino())
    }
    #[cfg(not(unix))]
    {
        at_path.is_file() == opened.is_file()
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
        for bad in [
            "",
            "/etc/passwd",
            "\\x",
            "../x",
            "ab/../../x",
            "ab/..",
            ".",
            "./",
            "a//b/..",
        ] {
            assert!(
                matches!(files.resolve(bad), Err(Error::UnsafePath { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn write_read_remove_round_trip() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path()).with_sync(true);
        let a = files.write(b"aaa")?;
        let (b, n) = files.write_from(&mut &b"streamed"[..])?;
        assert_eq!(n, 8);
        assert_eq!(files.read(&a, 3)?, b"aaa");
        assert_eq!(&files.map(&b, 8)?[..], b"streamed");
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
        assert!(matches!(files.read(&name, 1), Err(Error::Io { .. })));
        Ok(())
    }
}
