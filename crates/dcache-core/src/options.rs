//! Options of writes and the shapes reads return.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::tag::Tag;

/// Expiry and tag for a write (`set`, `add`, `push`, `set_reader`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dcache_core::SetOptions;
///
/// let opts = SetOptions::new().expire(Duration::from_secs(60)).tag("session");
/// assert_eq!(opts.expire, Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SetOptions {
    /// Time to live from now (`None`, the default, never expires; zero is already expired).
    pub expire: Option<Duration>,
    /// The tag (`None` by default).
    pub tag: Option<Tag>,
}

impl SetOptions {
    /// No expiry, no tag.
    #[must_use]
    pub fn new() -> Self {
        SetOptions::default()
    }

    /// Expires the entry `ttl` from now.
    #[must_use]
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.expire = Some(ttl);
        self
    }

    /// Expires the entry `ttl` from now when `Some`; never when `None`.
    #[must_use]
    pub fn expire_opt(mut self, ttl: Option<Duration>) -> Self {
        self.expire = ttl;
        self
    }

    /// Tags the entry.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Tags the entry when `Some`.
    #[must_use]
    pub fn tag_opt(mut self, tag: Option<Tag>) -> Self {
        self.tag = tag;
        self
    }
}

/// A value with its expiry time and tag, as `get_entry` and `pop_entry` return it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<V> {
    /// The value.
    pub value: V,
    /// When the entry expires (`None`: never).
    pub expire_time: Option<SystemTime>,
    /// The entry's tag.
    pub tag: Option<Tag>,
}

/// A stored value opened for streaming: a value file, or an inline value's bytes.
///
/// Returned by [`Cache::read`](crate::Cache::read). Reading a value file never loads it whole.
#[derive(Debug)]
pub enum ValueReader {
    /// A value file (`MODE_BINARY` or `MODE_TEXT`).
    File {
        /// The open file.
        file: File,
        /// Its full path.
        path: PathBuf,
    },
    /// An inline value's bytes (or a text value's UTF-8).
    Inline(Cursor<Vec<u8>>),
}

impl ValueReader {
    /// The value file's full path, `None` for a value stored inline in the database (python's
    /// `reader.name`, which python has only for a file).
    ///
    /// The file belongs to the cache: it is removed when the entry is replaced or deleted.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("big", vec![1u8; 1 << 16].as_slice())?;
    /// cache.set("small", b"tiny".as_slice())?;
    /// let reader = cache.read("big")?.expect("stored");
    /// assert!(reader.path().is_some_and(|p| p.starts_with(cache.directory())));
    /// assert_eq!(cache.read("small")?.expect("stored").path(), None);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[doc(alias = "name")]
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            ValueReader::File { path, .. } => Some(path),
            ValueReader::Inline(_) => None,
        }
    }
}

impl Read for ValueReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ValueReader::File { file, .. } => file.read(buf),
            ValueReader::Inline(c) => c.read(buf),
        }
    }
}

impl Seek for ValueReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            ValueReader::File { file, .. } => file.seek(pos),
            ValueReader::Inline(c) => c.seek(pos),
        }
    }
}
