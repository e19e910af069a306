//! python-diskcache's `Deque` and `Index` and dcache's read each other's directories, in
//! order; `maxlen` belongs to each handle on both sides.

mod common;

use dcache::Order;
use dcache::{Cache, Deque, EvictionPolicy, Index, QueueKey, Side};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn utf8(path: &std::path::Path) -> Result<&str, Box<dyn std::error::Error>> {
    Ok(path.to_str().ok_or("temporary path is not UTF-8")?)
}

#[test]
fn a_deque_written_by_python_reads_back_in_order() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let out = py.run(
        "import sys, json, diskcache\n\
         d = diskcache.Deque(directory=sys.argv[1])\n\
         d.extend(['c', 'd', 'e'])\n\
         d.appendleft('b')\n\
         d.appendleft('a')\n\
         d.append('x' * 50000)\n\
         d.rotate(2)\n\
         d.rotate(-3)\n\
         d[1] = 'B'\n\
         del d[-3]\n\
         sys.stdout.write(json.dumps(list(d)))",
        &[utf8(dir.path())?],
        "",
    );
    let from_python: Vec<String> = serde_json::from_str(&out)?;
    let deque: Deque<String> = Deque::open(dir.path())?;
    let ours: Vec<String> = deque.iter().collect::<Result<_, _>>()?;
    assert_eq!(ours, from_python);
    assert_eq!(
        ours.iter().map(String::len).collect::<Vec<_>>(),
        [1, 1, 1, 50_000, 1]
    );
    let rev: Vec<String> = deque.iter_rev().collect::<Result<_, _>>()?;
    assert_eq!(rev, ours.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(deque.get(-1)?.as_ref(), Some(&ours[4]));
    assert_eq!(deque.pop_front()?.as_ref(), Some(&ours[0]));
    assert_eq!(deque.pop_back()?.as_ref(), Some(&ours[4]));
    assert_eq!(deque.len()?, 3);
    Ok(())
}

#[test]
fn a_deque_written_by_rust_reads_back_in_order_in_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let deque: Deque<i64> = Deque::open(dir.path())?;
    deque.extend(0..6)?;
    deque.extend_front([-1, -2])?;
    deque.rotate(3)?;
    deque.rotate(-1)?;
    deque.reverse()?;
    deque.set(2, &20)?;
    deque.remove_at(-3)?;
    assert!(deque.remove(&0)?);
    let ours: Vec<i64> = deque.iter().collect::<Result<_, _>>()?;
    let expected = {
        let mut model: std::collections::VecDeque<i64> = (-2..6).collect();
        model.rotate_right(3);
        model.rotate_left(1);
        model.make_contiguous().reverse();
        model[2] = 20;
        let len = model.len();
        model.remove(len - 3);
        let zero = model.iter().position(|v| *v == 0).ok_or("0 is there")?;
        model.remove(zero);
        Vec::from(model)
    };
    assert_eq!(ours, expected);
    let out = py.run(
        "import sys, json, diskcache\n\
         d = diskcache.Deque(directory=sys.argv[1])\n\
         listed = list(d)\n\
         print(json.dumps(listed))\n\
         print(json.dumps([d[0], d[-1], len(d), list(reversed(d)) == listed[::-1]]))\n\
         d.appendleft('from python')\n\
         print(json.dumps(d.popleft()))\n\
         print(json.dumps(d.pop()))",
        &[utf8(dir.path())?],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(serde_json::from_str::<Vec<i64>>(lines[0])?, ours);
    assert_eq!(
        lines[1],
        format!(
            "[{}, {}, {}, true]",
            ours[0],
            ours[ours.len() - 1],
            ours.len()
        )
    );
    assert_eq!(lines[2], "\"from python\"");
    assert_eq!(lines[3], ours[ours.len() - 1].to_string());
    assert_eq!(deque.len()?, ours.len() as u64 - 1);
    Ok(())
}

#[test]
fn maxlen_belongs_to_each_handle_on_both_sides() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = utf8(dir.path())?;
    let out = py.run(
        "import sys, json, diskcache\n\
         d = diskcache.Deque(directory=sys.argv[1], maxlen=3)\n\
         d.extend(range(5))\n\
         sys.stdout.write(json.dumps(list(d)))",
        &[path],
        "",
    );
    assert_eq!(out, "[2, 3, 4]");

    // python stored no maxlen: a Rust handle is unbounded.
    let unbounded: Deque<i64> = Deque::open(dir.path())?;
    assert_eq!(unbounded.maxlen(), None);
    unbounded.extend([5, 6])?;
    assert!(unbounded.eq_items([2, 3, 4, 5, 6])?);

    // A bounded Rust handle trims; nothing of it is stored either.
    let bounded = unbounded.clone().with_maxlen(Some(2))?;
    assert!(bounded.eq_items([5, 6])?);
    bounded.push_back(&7)?;
    assert!(bounded.eq_items([6, 7])?);
    let out = py.run(
        "import sys, json, diskcache\n\
         d = diskcache.Deque(directory=sys.argv[1])\n\
         d.append(8)\n\
         print(d.maxlen)\n\
         print(json.dumps(list(d)))",
        &[path],
        "",
    );
    assert_eq!(out, "inf\n[6, 7, 8]\n");
    assert!(unbounded.eq_items([6, 7, 8])?);
    bounded.push_front(&5)?;
    assert!(
        unbounded.eq_items([5, 6])?,
        "the bounded handle trims the back"
    );
    let settings = Cache::open(dir.path())?.settings();
    assert_eq!(settings.eviction_policy, EvictionPolicy::None);
    assert!(settings.all.keys().all(|k| !k.contains("maxlen")));
    Ok(())
}

#[test]
fn an_index_written_by_python_reads_back_in_insertion_order() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let tuples = tempfile::tempdir()?;
    let out = py.run(
        "import sys, json, diskcache\n\
         ix = diskcache.Index(sys.argv[1])\n\
         ix.update([('b', 2), ('a', 1), ('c', 3), ('d', 4)])\n\
         ix['b'] = 20\n\
         del ix['a']\n\
         ix['a'] = 10\n\
         ix.popitem(last=False)\n\
         ix.setdefault('e', 5)\n\
         ix.push(99, prefix='q')\n\
         t = diskcache.Index(sys.argv[2])\n\
         t[('k', 2)] = ['x', 'y']\n\
         t[('k', 1)] = []\n\
         sys.stdout.write(json.dumps(list(ix.items())))",
        &[utf8(dir.path())?, utf8(tuples.path())?],
        "",
    );
    assert_eq!(
        out,
        "[[\"c\", 3], [\"d\", 4], [\"a\", 10], [\"e\", 5], [\"q-500000000000000\", 99]]"
    );
    let ix: Index<String, i64> = Index::open(dir.path())?;
    let items: Vec<(String, i64)> = ix.items().collect::<Result<_, _>>()?;
    let expected: Vec<(String, i64)> = [("c", 3), ("d", 4), ("a", 10), ("e", 5)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([("q-500000000000000".to_owned(), 99)])
        .collect();
    assert_eq!(items, expected);
    let keys_rev: Vec<String> = ix.keys_rev().collect::<Result<_, _>>()?;
    assert_eq!(keys_rev[0], "q-500000000000000");
    assert_eq!(ix.get("a")?, Some(10));
    assert_eq!(ix.peek_item(Side::Front)?, Some(("c".to_owned(), 3)));
    assert_eq!(
        ix.pull(Some("q"), Side::Front)?,
        Some((QueueKey::Text("q-500000000000000".into()), 99))
    );
    assert_eq!(ix.pop_item(Side::Back)?, Some(("e".to_owned(), 5)));

    // Tuple keys are pickles: readable in order (python's pickle bytes are its own, so Rust
    // reads them but does not re-create them byte for byte).
    let t: Index<(String, i64), Vec<String>> = Index::open(tuples.path())?;
    let items: Vec<((String, i64), Vec<String>)> = t.items().collect::<Result<_, _>>()?;
    assert_eq!(
        items,
        [
            (("k".to_owned(), 2), vec!["x".to_owned(), "y".to_owned()]),
            (("k".to_owned(), 1), vec![])
        ]
    );
    Ok(())
}

#[test]
fn an_index_written_by_rust_reads_back_in_insertion_order_in_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let ix: Index<String, i64> = Index::open(dir.path())?;
    ix.try_extend([("z", 26), ("m", 13), ("a", 1), ("q", 17)].map(|(k, v)| (k.to_owned(), v)))?;
    ix.insert("m", 130)?;
    ix.remove("a")?;
    ix.insert("a", 100)?;
    assert_eq!(ix.pop_item(Side::Front)?, Some(("z".to_owned(), 26)));
    ix.push(7, Some("jobs"), Side::Back)?;
    let big = Index::<String, String>::from_cache(ix.cache().clone());
    big.insert("big", "y".repeat(40_000))?;
    let out = py.run(
        "import sys, json, diskcache\n\
         from collections import OrderedDict\n\
         ix = diskcache.Index(sys.argv[1])\n\
         items = [(k, v if k != 'big' else len(v)) for k, v in ix.items()]\n\
         print(json.dumps(items))\n\
         print(list(reversed(ix))[0])\n\
         expected = OrderedDict([('m', 130), ('q', 17), ('a', 100), ('jobs-500000000000000', 7), ('big', 'y' * 40000)])\n\
         print(ix == expected)\n\
         print(json.dumps(ix.pull(prefix='jobs')))\n\
         print(json.dumps(ix.popitem(last=False)))",
        &[utf8(dir.path())?],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "[[\"m\", 130], [\"q\", 17], [\"a\", 100], [\"jobs-500000000000000\", 7], [\"big\", 40000]]"
    );
    assert_eq!(lines[1], "big");
    assert_eq!(lines[2], "True");
    assert_eq!(lines[3], "[\"jobs-500000000000000\", 7]");
    assert_eq!(lines[4], "[\"m\", 130]");
    assert_eq!(ix.len()?, 3);
    assert_eq!(ix.peek_item(Side::Front)?, Some(("q".to_owned(), 17)));
    Ok(())
}

#[test]
fn rotating_gives_the_keys_python_gives() -> TestResult {
    let py = require_python!();
    let (ours, theirs) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let deque: Deque<i64> = Deque::open(ours.path())?;
    deque.extend(0..6)?;
    deque.push_front(&-1)?;
    for steps in [2, -5, 13, -1] {
        deque.rotate(steps)?;
    }
    let keys: Vec<i64> = deque
        .cache()
        .sorted_keys(Order::Ascending)
        .collect::<Result<_, _>>()?;
    let out = py.run(
        "import sys, json, diskcache\n\
         d = diskcache.Deque(range(6), directory=sys.argv[1])\n\
         d.appendleft(-1)\n\
         for steps in [2, -5, 13, -1]:\n    d.rotate(steps)\n\
         print(json.dumps(list(d.cache.iterkeys())))\n\
         print(json.dumps(list(d)))",
        &[utf8(theirs.path())?],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(serde_json::from_str::<Vec<i64>>(lines[0])?, keys);
    let values: Vec<i64> = deque.iter().collect::<Result<_, _>>()?;
    assert_eq!(serde_json::from_str::<Vec<i64>>(lines[1])?, values);
    Ok(())
}
