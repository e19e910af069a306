//! A cache that filled its own file system frees it through its own API (the disk reserve).
//!
//! Each test mounts a small tmpfs of its own (this needs the right to mount: root, as on the
//! CI machine). Where mounting is refused the tests fail under `CI=true` and say so loudly
//! elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use dcache_core::CheckMode;
use dcache_core::{Cache, CacheBuilder, Disk, Error};

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(SmallDisk {
                    dir,
                    _parent: parent,
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "mounting a tmpfs for the disk-full tests failed under CI=true: {why}"
        );
        eprintln!(
            "\n\n*** SKIPPED A DISK-FULL TEST: mounting a tmpfs failed ({why}); run as root ***\n"
        );
        None
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn reserve(dir: &Path) -> PathBuf {
    dir.join("cache.db-reserve")
}

/// Sets `value_len`-byte values under keys 0.. until a set fails; returns how many were set
/// and the error.
fn fill(cache: &Cache, value_len: usize) -> (u64, Error) {
    for i in 0..100_000u64 {
        let value = vec![(i % 251) as u8; value_len];
        if let Err(e) = cache.set(i, value.as_slice()) {
            return (i, e);
        }
    }
    panic!("the small disk never filled");
}

fn is_full(e: &Error) -> bool {
    let text = e.to_string();
    matches!(e, Error::WriteFailed { .. })
        || text.contains("No space left")
        || text.contains("disk is full")
}

fn builder() -> CacheBuilder<Disk> {
    // No size limit: the disk fills before the cache would cull.
    Cache::builder().size_limit(u64::MAX >> 2)
}

#[test]
fn a_cache_that_filled_its_disk_with_value_files_deletes_and_clears() {
    let Some(disk) = SmallDisk::mount(4 << 20) else {
        return;
    };
    let dir = disk.cache_dir();
    let cache = builder().open(&dir).unwrap();
    assert_eq!(
        std::fs::metadata(reserve(&dir)).unwrap().len(),
        dcache_core::DEFAULT_DISK_RESERVE
    );
    let (stored, err) = fill(&cache, 100 * 1024);
    assert!(is_full(&err), "a full disk gives a typed error: {err:?}");
    assert!(stored > 5, "{stored}");
    // What was acknowledged is there.
    assert_eq!(cache.len().unwrap(), stored);
    assert!(cache.get_bytes(0u64).unwrap().is_some());

    assert!(cache.delete(0u64).unwrap());
    assert_eq!(cache.clear().unwrap(), stored - 1);
    assert_eq!(cache.len().unwrap(), 0);
    assert!(
        reserve(&dir).exists(),
        "the reserve is written again once there is room"
    );
    cache.set("after", b"works again".as_slice()).unwrap();
    assert_eq!(cache.check(CheckMode::Report).unwrap(), vec![]);
}

#[test]
fn a_cache_that_filled_its_disk_with_rows_culls_to_a_lower_limit() {
    let Some(disk) = SmallDisk::mount(12 << 20) else {
        return;
    };
    let dir = disk.cache_dir();
    let cache = builder().open(&dir).unwrap();
    let (stored, err) = fill(&cache, 2000);
    assert!(is_full(&err), "a full disk gives a typed error: {err:?}");
    assert_eq!(cache.len().unwrap(), stored);

    // The operator's way out: a lower size limit, then cull.
    cache.reset("size_limit", 2i64 << 20).unwrap();
    eprintln!(
        "rows: stored {stored}, volume before cull {}",
        cache.volume().unwrap()
    );
    let culled = cache.cull().unwrap();
    // Deleted rows leave free pages in `cache.db` (python's volume counts them), so cull
    // goes on while the file stays large, as python's does.
    assert!(culled > 0);
    eprintln!(
        "rows: stored {stored}, culled {culled}, volume {}",
        cache.volume().unwrap()
    );
    assert_eq!(cache.len().unwrap(), stored - culled);
    assert!(cache.delete(stored - 1).unwrap());
    assert_eq!(cache.check(CheckMode::Report).unwrap(), vec![]);
    drop(cache);
    // Reopened, the survivors are intact.
    let cache = builder().open(&dir).unwrap();
    assert_eq!(cache.len().unwrap(), stored - culled - 1);
}

#[test]
fn a_full_disk_never_loses_committed_entries() {
    let Some(disk) = SmallDisk::mount(3 << 20) else {
        return;
    };
    let dir = disk.cache_dir();
    let cache = builder().open(&dir).unwrap();
    let (stored, _) = fill(&cache, 40 * 1024);
    // Every further set fails cleanly, the reserve stays for the deletes.
    for i in 0..20u64 {
        assert!(cache.set(1_000_000 + i, vec![7u8; 40 * 1024]).is_err());
    }
    assert!(reserve(&dir).exists(), "sets never take the reserve's room");
    drop(cache);
    let cache = builder().open(&dir).unwrap();
    assert_eq!(cache.len().unwrap(), stored);
    for i in 0..stored {
        let bytes = cache.get_bytes(i).unwrap().expect("acknowledged entry");
        assert_eq!(bytes.len(), 40 * 1024);
        assert!(bytes.iter().all(|b| *b == (i % 251) as u8));
    }
    assert!(cache.check(CheckMode::Report).unwrap().is_empty());
}

/// The evidence for the reserve: without it, how far does a full cache get?
#[test]
fn without_a_reserve_a_full_cache_reports_what_to_do() {
    let Some(disk) = SmallDisk::mount(4 << 20) else {
        return;
    };
    let dir = disk.cache_dir();
    let cache = builder().disk_reserve(0).open(&dir).unwrap();
    assert!(!reserve(&dir).exists());
    let (_, err) = fill(&cache, 2000);
    assert!(is_full(&err), "{err:?}");
    // SQLite has no room to record a delete: this is what the reserve is for.
    let deleted = cache.delete(0u64);
    assert!(
        matches!(deleted, Err(Error::WriteFailed { .. })),
        "{deleted:?}"
    );
    let cleared = cache.clear();
    assert!(
        matches!(cleared, Err(Error::WriteFailed { .. })),
        "{cleared:?}"
    );
    let message = cleared.unwrap_err().to_string();
    assert!(message.contains("free space"), "{message}");
    // Nothing committed was lost.
    assert!(cache.get_bytes(0u64).unwrap().is_some());
}
