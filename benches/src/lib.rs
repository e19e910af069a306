//! dcache's benchmarks (unpublished): the standard workloads of docs/benchmarks.md, the two SQLite
//! floors they are compared against, and the helpers the criterion micro-benches share.
//!
//! `cargo xtask bench [--quick]` builds the `compare` binary in release mode and runs it, then
//! `benches/python/bench_diskcache.py` for python-diskcache, and turns their figure lines into
//! the ratio table, `target/bench/report.json` and `docs/benchmarks.md`.
//!
//! ```
//! use benches::{Figure, targets};
//!
//! let dir = tempfile::tempdir()?;
//! let dcache = targets()[0].open(dir.path(), benches::Policy::LeastRecentlyStored)?;
//! dcache.with_ops(&mut |ops| {
//!     ops.set("key-00000001", b"value")?;
//!     assert_eq!(ops.get("key-00000001")?.as_deref(), Some(&b"value"[..]));
//!     Ok(())
//! })?;
//! let line = Figure::time("dcache", "cache", "get_hit", 20_000, 0.05).to_string();
//! assert_eq!(line, "impl=dcache kind=cache op=get_hit n=20000 us_per_op=2.500");
//! # Ok::<(), benches::Error>(())
//! ```
//!
//! # Adding an implementation
//!
//! A [`Target`] opens an implementation on a directory and hands out per-thread [`Ops`]; the
//! workloads in [`workload`] are written once against these traits. Registering a new target
//! (FanoutCache: `kind=fanout`) is one entry in [`targets`].

pub mod data;
pub mod figure;
pub mod floor;
pub mod rss;
pub mod target;
pub mod walhdr;
pub mod workload;

pub use figure::Figure;
pub use target::{Ops, Policy, Registration, Target, targets};

/// The error type of the harness: benchmarks report what failed and stop.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The result type of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;
