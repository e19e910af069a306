//! Several processes on one deque: the test binary re-runs itself as the children (an
//! environment variable tells a child what to do).

use std::collections::BTreeSet;
use std::process::{Child, Command};

use dcache_collections::Deque;
use dcache_core::CheckMode;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PER_CHILD: u32 = 400;

/// Re-runs this test binary's test `name` as a child with `env` set.
fn spawn_child(name: &str, env: &[(&str, &str)]) -> std::io::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

const APPEND_DIR: &str = "DCACHE_TEST_DEQUE_APPEND_DIR";
const APPEND_ID: &str = "DCACHE_TEST_DEQUE_APPEND_ID";

#[test]
fn two_processes_appending_to_one_deque_lose_no_element() -> TestResult {
    if let (Ok(dir), Ok(id)) = (std::env::var(APPEND_DIR), std::env::var(APPEND_ID)) {
        let deque: Deque<String> = Deque::open(&dir)?;
        for n in 0..PER_CHILD {
            // Both ends and both forms, so every write path races the other process.
            match n % 4 {
                0 | 1 => deque.push_back(format!("{id}-{n:04}").as_str())?,
                2 => deque.extend([format!("{id}-{n:04}")])?,
                _ => deque.push_front(format!("{id}-{n:04}").as_str())?,
            }
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temporary path is not UTF-8")?;
    let name = "two_processes_appending_to_one_deque_lose_no_element";
    let children = ["a", "b"]
        .into_iter()
        .map(|id| spawn_child(name, &[(APPEND_DIR, path), (APPEND_ID, id)]))
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a child failed");
    }
    let deque: Deque<String> = Deque::open(dir.path())?;
    let all: Vec<String> = deque.iter().collect::<Result<_, _>>()?;
    assert_eq!(all.len(), 2 * PER_CHILD as usize);
    assert_eq!(deque.len()?, 2 * u64::from(PER_CHILD));
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no element written twice");
    for id in ["a", "b"] {
        let numbers: Vec<u32> = all
            .iter()
            .filter_map(|s| s.strip_prefix(id)?.strip_prefix('-')?.parse().ok())
            .collect();
        assert_eq!(
            numbers.len(),
            PER_CHILD as usize,
            "child {id} lost elements"
        );
        // A child's back pushes appear in its order, its front pushes in reverse order.
        let back: Vec<u32> = numbers.iter().copied().filter(|n| n % 4 != 3).collect();
        assert!(back.windows(2).all(|w| w[0] < w[1]), "child {id}: {back:?}");
        let front: Vec<u32> = numbers.iter().copied().filter(|n| n % 4 == 3).collect();
        assert!(
            front.windows(2).all(|w| w[0] > w[1]),
            "child {id}: {front:?}"
        );
    }
    assert!(deque.cache().check(CheckMode::Report)?.is_empty());
    Ok(())
}

const CONSUME_DIR: &str = "DCACHE_TEST_DEQUE_CONSUME_DIR";

#[test]
fn two_processes_consuming_one_deque_take_each_element_once() -> TestResult {
    if let Ok(dir) = std::env::var(CONSUME_DIR) {
        let deque: Deque<u32> = Deque::open(&dir)?;
        let results: Deque<u32> = Deque::open(format!("{dir}-taken"))?;
        loop {
            match deque.pop_front()? {
                Some(n) => results.push_back(&n)?,
                None => return Ok(()),
            }
        }
    }
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("jobs");
    let deque: Deque<u32> = Deque::open(&dir)?;
    deque.extend(0..2 * PER_CHILD)?;
    let path = dir.to_str().ok_or("temporary path is not UTF-8")?;
    let name = "two_processes_consuming_one_deque_take_each_element_once";
    let children = (0..2)
        .map(|_| spawn_child(name, &[(CONSUME_DIR, path)]))
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a child failed");
    }
    assert!(deque.is_empty()?);
    let taken: Deque<u32> = Deque::open(parent.path().join("jobs-taken"))?;
    let mut all: Vec<u32> = taken.iter().collect::<Result<_, _>>()?;
    all.sort_unstable();
    assert_eq!(all, (0..2 * PER_CHILD).collect::<Vec<_>>());
    Ok(())
}
