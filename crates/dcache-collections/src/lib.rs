//! Persistent collections on a dcache [`Cache`](dcache_core::Cache): [`Deque`], a
//! double-ended queue, and [`Index`], an insertion-ordered mapping. They read and write
//! python-diskcache 5.6's `Deque` and `Index` directories, and many threads and processes can
//! use one at the same time.
//!
//! Most users want the [`dcache`](https://docs.rs/dcache) facade, which re-exports this crate
//! as `dcache::collections` and both types at its root.
//!
//! ```
//! use dcache_collections::{Deque, Index};
//!
//! let dir = tempfile::tempdir()?;
//!
//! // A work queue that survives restarts and is shared by processes.
//! let jobs: Deque<String> = Deque::open(dir.path().join("jobs"))?;
//! jobs.push_back("build")?;
//! jobs.push_back("test")?;
//! assert_eq!(jobs.pop_front()?.as_deref(), Some("build"));
//!
//! // A persistent, insertion-ordered map.
//! let users: Index<u32, String> = Index::open(dir.path().join("users"))?;
//! users.insert(&7, "ada".to_owned())?;
//! users.insert(&3, "grace".to_owned())?;
//! let names: Vec<String> = users.values().collect::<Result<_, _>>()?;
//! assert_eq!(names, ["ada", "grace"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # On disk
//!
//! Each collection is a [`Cache`](dcache_core::Cache) directory whose eviction policy is
//! `none`. A `Deque`'s elements are the entries of the cache's unprefixed queue, in key order
//! (python's integer keys from 500000000000000); an `Index`'s entries are the cache's entries,
//! in insertion (row id) order. `maxlen` is a property of a `Deque` handle and is not stored,
//! in Rust as in python.
//!
//! # Errors
//!
//! Every operation returns [`Result`]: I/O and SQLite failures and data stored with another
//! type are typed [`Error`]s. Where "nothing there" is normal (a pop from an empty deque, an
//! index past the end, a missing key) the answer is `Ok(None)`, as in `VecDeque` and
//! `HashMap`. Iterators yield `Result`s; comparisons are methods returning `Result<bool>`
//! (`eq_items`, `eq_map`, `eq_pairs`) rather than `PartialEq`, which could not report a failed
//! read.
//!
//! # Names
//!
//! The Rust names follow `VecDeque` and `HashMap`; python's names are search aliases and are
//! named in each method's docs: `append` is [`Deque::push_back`], `popleft`
//! [`Deque::pop_front`], `peekleft` [`Deque::front`], `Index.popitem(last)`
//! [`Index::pop_item`] with a [`Side`](dcache_core::Side), `Index.update`
//! [`Index::try_extend`].
//!
//! # Crate features
//!
//! - `bundled` (default): SQLite compiled from source, through dcache-core. Without it the
//!   system's libsqlite3 is linked; see dcache-core's crate docs for the versions it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod deque;
mod error;
mod index;

pub use deque::{Deque, Iter};
pub use error::{Error, Result};
pub use index::{Index, Items, Keys, Values};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + std::fmt::Debug>() {}

    #[test]
    fn collections_are_send_sync_clone_and_debug() {
        assert_send_sync_clone::<Deque<String>>();
        assert_send_sync_clone::<Deque<Vec<u8>, dcache_core::MsgpackDisk>>();
        assert_send_sync_clone::<Index<String, i64>>();
        assert_send_sync_clone::<Index<(i64, String), Vec<u8>, dcache_core::JsonDisk>>();
        // Element types that are not Send or Sync do not make the handle so.
        assert_send_sync_clone::<Deque<std::rc::Rc<String>>>();
    }
}
