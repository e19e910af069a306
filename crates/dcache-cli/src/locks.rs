//! `locks` (list lock, rlock and semaphore keys) and `unlock` (release a lock a crashed
//! process left).
//!
//! A lock is only a key; it is recognized by what the lock recipes store under it:
//! python's `Lock` stores `None`; dcache's `Lock` a token `"<owner id>-<n>"`; python's and
//! dcache's `RLock` `('<owner id>', depth)`, the owner id being `<pid>-<thread>` (python's) or
//! `<pid>-<32 hex digits>-<thread>` (dcache's); a `BoundedSemaphore` an integer, the free
//! permits (listed only when asked, as any counter is an integer too).

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use dcache::cache::{EntryInfo, EntryQuery, unix_seconds};
use dcache::{Cache, DiskFormat, Value};

use crate::commands::{Outcome, confirm, found, print_json, stdout, write_error};
use crate::error::CliError;
use crate::jsonvalue;
use crate::render;
use crate::target::Target;

/// What a key holds, as a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// python's `Lock`: `None`, no holder recorded.
    PythonLock,
    /// dcache's `Lock`: the holder's token.
    Lock {
        /// The holder's process id.
        pid: u32,
        /// The whole token.
        token: String,
    },
    /// An `RLock`: owner `"<pid>-<thread>"` (python) or `"<pid>-<nonce>-<thread>"` (dcache)
    /// and depth (0: free).
    RLock {
        /// The owner's process id.
        pid: Option<u32>,
        /// The owner id.
        owner: String,
        /// How many times it is held.
        depth: i64,
    },
    /// A `BoundedSemaphore`: free permits.
    Semaphore {
        /// The free permits.
        free: i64,
    },
}

impl LockKind {
    /// Recognizes a lock by its value (`semaphores`: integers too).
    pub(crate) fn of(value: &Value, semaphores: bool) -> Option<LockKind> {
        match value {
            Value::None => Some(LockKind::PythonLock),
            Value::Str(token) => {
                let parts: Vec<&str> = token.split('-').collect();
                let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
                // "<pid>-<thread>-<n>" (dcache before owner ids were unique across machines)
                // or "<pid>-<32 hex digits>-<thread>-<n>" (`dcache::sync::owner_id` + counter).
                let numeric = match parts.as_slice() {
                    [_, _, _] => parts.iter().all(|p| digits(p)),
                    [pid, nonce, thread, n] => {
                        [pid, thread, n].iter().all(|p| digits(p))
                            && nonce.len() == 32
                            && nonce.bytes().all(|b| b.is_ascii_hexdigit())
                    }
                    _ => false,
                };
                let pid = parts.first().and_then(|p| p.parse().ok());
                match (numeric, pid) {
                    (true, Some(pid)) => Some(LockKind::Lock {
                        pid,
                        token: token.clone(),
                    }),
                    _ => None,
                }
            }
            Value::Tuple(items) | Value::List(items) => match items.as_slice() {
                [Value::Str(owner), Value::Int(depth)] if owner.contains('-') => {
                    Some(LockKind::RLock {
                        pid: owner.split('-').next().and_then(|p| p.parse().ok()),
                        owner: owner.clone(),
                        depth: *depth,
                    })
                }
                _ => None,
            },
            Value::Int(free) if semaphores => Some(LockKind::Semaphore { free: *free }),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            LockKind::PythonLock | LockKind::Lock { .. } => "lock",
            LockKind::RLock { .. } => "rlock",
            LockKind::Semaphore { .. } => "semaphore",
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            LockKind::Lock { pid, .. } => Some(*pid),
            LockKind::RLock { pid, depth, .. } if *depth > 0 => *pid,
            _ => None,
        }
    }

    /// Who holds it, for people: `pid 123 (gone), owner 123-140566816295808, depth 1`.
    fn holder(&self) -> String {
        match self {
            LockKind::PythonLock => "a python process (python's Lock records no holder)".to_owned(),
            LockKind::Lock { pid, token } => format!("pid {pid}{}, token {token}", alive(*pid)),
            LockKind::RLock { depth, .. } if *depth <= 0 => "nobody (free)".to_owned(),
            LockKind::RLock { owner, depth, pid } => match pid {
                Some(pid) => format!("pid {pid}{}, owner {owner}, depth {depth}", alive(*pid)),
                None => format!("owner {owner}, depth {depth}"),
            },
            LockKind::Semaphore { free } => format!("{free} permits free"),
        }
    }
}

/// Whether process `pid` runs on this machine: ` (alive)` or ` (gone)`.
fn alive(pid: u32) -> String {
    match process_state(pid) {
        Some(true) => " (alive)".to_owned(),
        Some(false) => " (gone)".to_owned(),
        None => String::new(),
    }
}

/// `Some(true)` when `pid` runs here, `Some(false)` when no such process exists.
fn process_state(pid: u32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    match rustix::process::test_kill_process(pid) {
        // EPERM: it exists but belongs to someone else.
        Ok(()) | Err(rustix::io::Errno::PERM) => Some(true),
        Err(rustix::io::Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// One lock found in the cache.
struct Found {
    shard: Option<usize>,
    key: Value,
    kind: LockKind,
    expire_time: Option<SystemTime>,
    expired: bool,
}

fn scan<D: DiskFormat>(target: &Target<D>, semaphores: bool) -> Result<Vec<Found>, CliError> {
    let now = SystemTime::now();
    let mut found = Vec::new();
    for (i, cache) in target.shards.iter().enumerate() {
        for entry in cache.entries(EntryQuery::new().values(true))? {
            let Ok(entry) = entry else { continue };
            if let Some(f) = classify(cache, &entry, semaphores, now) {
                found.push(Found {
                    shard: target.shard_number(i),
                    ..f
                });
            }
        }
    }
    Ok(found)
}

fn classify<D: DiskFormat>(
    cache: &Cache<D>,
    entry: &EntryInfo,
    semaphores: bool,
    now: SystemTime,
) -> Option<Found> {
    // Lock values are small and inline; a value file is never a lock.
    if entry.in_file() {
        return None;
    }
    let key = entry.key.as_ref().ok()?.clone();
    // A lock's fencing counter `(key, "dcache-fence")` is an integer, not a semaphore.
    if let Value::Tuple(parts) = &key
        && matches!(parts.as_slice(), [_, Value::Str(s)] if s == dcache::sync::FENCE_SUFFIX)
    {
        return None;
    }
    let value = cache.decode_value(entry).ok()?;
    let kind = LockKind::of(&value, semaphores)?;
    Some(Found {
        shard: None,
        key,
        kind,
        expire_time: entry.expire_time,
        expired: entry.is_expired_at(now),
    })
}

fn expires_text(f: &Found) -> String {
    match f.expire_time {
        None => "never".to_owned(),
        Some(t) if f.expired => format!("{} (expired: free)", render::rfc3339(t)),
        Some(t) => {
            let left = t.duration_since(SystemTime::now()).unwrap_or_default();
            format!(
                "{} (in {})",
                render::rfc3339(t),
                crate::units::human_duration(left)
            )
        }
    }
}

fn found_json(f: &Found) -> serde_json::Value {
    let (holder, pid, depth, free) = match &f.kind {
        LockKind::PythonLock => (None, None, None, None),
        LockKind::Lock { pid, token } => (Some(token.clone()), Some(*pid), None, None),
        LockKind::RLock { pid, owner, depth } => (Some(owner.clone()), *pid, Some(*depth), None),
        LockKind::Semaphore { free } => (None, None, None, Some(*free)),
    };
    serde_json::json!({
        "shard": f.shard,
        "key": jsonvalue::to_json(&f.key),
        "type": f.kind.name(),
        "python_lock": f.kind == LockKind::PythonLock,
        "holder": holder,
        "pid": pid,
        "alive": f.kind.pid().and_then(process_state),
        "depth": depth,
        "free": free,
        "expire_time": f.expire_time.map(unix_seconds),
        "expired": f.expired,
    })
}

/// `dcache locks DIR`.
pub(crate) fn list<D: DiskFormat>(
    target: &Target<D>,
    semaphores: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let found = scan(target, semaphores)?;
    let mut out = stdout();
    if json {
        for f in &found {
            writeln!(out, "{}", found_json(f)).map_err(write_error)?;
        }
        out.flush().map_err(write_error)?;
        return Ok(Outcome::Done);
    }
    if found.is_empty() {
        writeln!(
            out,
            "no locks in {}{}",
            target.dir.display(),
            if semaphores {
                ""
            } else {
                " (semaphores are listed with --semaphores)"
            }
        )
        .map_err(write_error)?;
    }
    for f in &found {
        writeln!(
            out,
            "{}{}\t{}\theld by {}\texpires {}",
            f.shard
                .map_or_else(String::new, |s| format!("shard {s:03}: ")),
            render::text(&f.key),
            f.kind.name(),
            f.kind.holder(),
            expires_text(f)
        )
        .map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(Outcome::Done)
}

/// `dcache unlock DIR KEY`: removes the lock's key after asking (or with `yes`).
pub(crate) fn unlock<D: DiskFormat>(
    target: &Target<D>,
    key: &Value,
    yes: bool,
    json: bool,
) -> Result<Outcome, CliError> {
    let (_, cache) = target.cache_for(key)?;
    let Some(entry) = cache.get_value(key)? else {
        return Ok(found(false, key, target));
    };
    let Some(kind) = LockKind::of(&entry.value, true) else {
        return Err(CliError::Refused(format!(
            "key {key} in {} holds {}, not a lock, rlock or semaphore; remove it with `dcache \
             delete` if that is what you want",
            target.dir.display(),
            render::text(&entry.value)
        )));
    };
    if !yes {
        let question = format!(
            "Release {} {key} held by {} in {}?",
            kind.name(),
            kind.holder(),
            target.dir.display()
        );
        if !confirm(
            &question,
            std::io::stdin().is_terminal(),
            &mut std::io::stdin().lock(),
            &mut std::io::stderr(),
        )? {
            eprintln!("dcache: not released");
            return Ok(Outcome::NotDone);
        }
    }
    let removed = cache.delete(key)?;
    if json {
        print_json(&serde_json::json!({
            "key": jsonvalue::to_json(key),
            "type": kind.name(),
            "released": removed,
            "pid": kind.pid(),
        }))?;
    } else {
        let mut out = stdout();
        writeln!(
            out,
            "released {} {key} (was held by {})",
            kind.name(),
            kind.holder()
        )
        .and_then(|()| out.flush())
        .map_err(write_error)?;
    }
    Ok(if removed {
        Outcome::Done
    } else {
        Outcome::NotDone
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_recognized_by_their_values() {
        assert_eq!(
            LockKind::of(&Value::None, false),
            Some(LockKind::PythonLock)
        );
        assert!(matches!(
            LockKind::of(&Value::from("123-4-5"), false),
            Some(LockKind::Lock { pid: 123, .. })
        ));
        // Today's tokens: the owner id (unique across machines) and a counter.
        let token = format!("{}-0", dcache::sync::owner_id());
        assert!(matches!(
            LockKind::of(&Value::from(token.as_str()), false),
            Some(LockKind::Lock { pid, .. }) if pid == std::process::id()
        ));
        assert_eq!(LockKind::of(&Value::from("hello-world-x"), false), None);
        assert_eq!(LockKind::of(&Value::from("1-nothex-2-3"), false), None);
        assert!(matches!(
            LockKind::of(
                &Value::Tuple(vec![Value::from("77-140000"), Value::Int(2)]),
                false
            ),
            Some(LockKind::RLock {
                pid: Some(77),
                depth: 2,
                ..
            })
        ));
        assert_eq!(LockKind::of(&Value::Int(3), false), None);
        assert_eq!(
            LockKind::of(&Value::Int(3), true),
            Some(LockKind::Semaphore { free: 3 })
        );
        assert_eq!(process_state(std::process::id()), Some(true));
    }
}
