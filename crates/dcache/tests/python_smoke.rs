//! The python harness works: python-diskcache reads what dcache wrote and the reverse.

mod common;

use dcache::Cache;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn python_and_rust_read_each_others_entries() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    Cache::open(dir.path())?.set("from-rust", "hello")?;
    let out = py.run(
        "import sys, diskcache\n\
         c = diskcache.Cache(sys.argv[1])\n\
         c['from-python'] = (1, 'x')\n\
         sys.stdout.write(repr(c['from-rust']))",
        &[path],
        "",
    );
    assert_eq!(out, "'hello'");
    let back: (i64, String) = Cache::open(dir.path())?
        .get("from-python")?
        .expect("python wrote it");
    assert_eq!(back, (1, "x".to_owned()));
    Ok(())
}
