//! `dcache stats --watch` on a pseudo-terminal and in a pipe: frames redrawn in place, the
//! counters moving while another process writes, a clean stop on Ctrl-C (SIGINT).

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{arg, dcache};
use dcache::{Cache, FanoutCache};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A pseudo-terminal: the master side to read what the program draws, the slave side's path.
struct Pty {
    master: File,
    slave: File,
}

fn pty(cols: u16) -> Result<Pty, Box<dyn std::error::Error>> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str()?)?;
    rustix::termios::tcsetwinsize(
        &slave,
        rustix::termios::Winsize {
            ws_row: 40,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(Pty {
        master: File::from(master),
        slave,
    })
}

/// Collects everything read from `reader` in the background.
fn collect(mut reader: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // A pty's master reports EIO once the last slave is closed: the end.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    seen
}

/// What the program drew, with the terminal's newline translation (ONLCR turns the
/// program's `\r\n` into `\r\r\n`) undone.
fn text(seen: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&seen.lock().expect("lock")).replace("\r\r\n", "\r\n")
}

/// Sends SIGINT (what Ctrl-C sends) and waits for the exit code.
fn interrupt(child: &mut Child) -> Result<i32, Box<dyn std::error::Error>> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id())?).ok_or("a pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().ok_or("exited by a signal, not cleanly")?);
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill()?;
            return Err("--watch did not stop on SIGINT".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The frames drawn so far (each starts with cursor-home and clear-screen).
fn frames(out: &str) -> Vec<String> {
    out.split("\x1b[H\x1b[2J")
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The number after `label` on a frame's line that starts with it.
fn number(frame: &str, label: &str) -> Option<f64> {
    frame
        .split("\r\n")
        .find(|l| l.starts_with(label))
        .and_then(|l| l[label.len()..].split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Waits until `cond` holds of the output, or `timeout` passes.
fn wait_until(seen: &Arc<Mutex<Vec<u8>>>, timeout: Duration, cond: impl Fn(&str) -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if cond(&text(seen)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn watch_redraws_on_a_terminal_as_another_process_writes_and_stops_on_ctrl_c() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().statistics(true).open(dir.path())?;
    cache.set("seed", 0)?;
    let pty = pty(72)?;
    let mut child = dcache()
        .args(["stats", arg(dir.path()), "--watch", "200ms"])
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave.try_clone()?))
        .spawn()?;
    drop(pty.slave);
    let seen = collect(pty.master);
    assert!(
        wait_until(&seen, Duration::from_secs(10), |t| frames(t).len() >= 2),
        "two frames: {:?}",
        text(&seen)
    );

    // This process writes and reads while the command watches.
    let writing = Instant::now();
    let mut n = 0u64;
    while writing.elapsed() < Duration::from_millis(1200) {
        cache.set(format!("key-{n}"), n)?;
        cache.get::<u64>(format!("key-{}", n / 2))?;
        cache.get::<u64>("missing")?;
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        wait_until(&seen, Duration::from_secs(10), |t| {
            frames(t)
                .last()
                .and_then(|f| number(f, "entries"))
                .is_some_and(|e| e >= (n + 1) as f64)
        }),
        "the entry count reaches {}: {:?}",
        n + 1,
        frames(&text(&seen)).last()
    );
    let code = interrupt(&mut child)?;
    assert_eq!(code, 0, "Ctrl-C is a clean stop");
    std::thread::sleep(Duration::from_millis(100));
    let out = text(&seen);
    let frames = frames(&out);
    let entries: Vec<f64> = frames.iter().filter_map(|f| number(f, "entries")).collect();
    assert!(entries.first() == Some(&1.0), "{entries:?}");
    assert!(entries.windows(2).any(|w| w[1] > w[0]), "{entries:?}");
    let stored: Vec<f64> = frames
        .iter()
        .filter_map(|f| number(f, "stored/s"))
        .collect();
    let hits: Vec<f64> = frames.iter().filter_map(|f| number(f, "hits/s")).collect();
    assert!(
        stored.iter().any(|r| *r > 10.0),
        "stored/s moved: {stored:?}"
    );
    assert!(hits.iter().any(|r| *r > 10.0), "hits/s moved: {hits:?}");
    for frame in &frames {
        for line in frame.split("\r\n") {
            assert!(line.chars().count() <= 72, "fits 72 columns: {line:?}");
        }
    }
    assert!(
        out.ends_with("\x1b[?25h\r\n"),
        "the cursor is shown again: {out:?}"
    );
    Ok(())
}

#[test]
fn watch_shows_fanout_shards_side_by_side_and_says_statistics_are_off() -> TestResult {
    let dir = tempfile::tempdir()?;
    let fanout = FanoutCache::builder().shards(3).open(dir.path())?;
    for n in 0..30 {
        fanout.set(n, n)?;
    }
    let pty = pty(100)?;
    let mut child = dcache()
        .args(["stats", arg(dir.path()), "--watch"])
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave.try_clone()?))
        .spawn()?;
    drop(pty.slave);
    let seen = collect(pty.master);
    assert!(
        wait_until(&seen, Duration::from_secs(10), |t| !frames(t).is_empty()
            && t.contains("hits/s")),
        "a frame: {:?}",
        text(&seen)
    );
    assert_eq!(interrupt(&mut child)?, 0);
    let frame = frames(&text(&seen)).last().cloned().ok_or("a frame")?;
    assert!(frame.contains("statistics are off"), "{frame}");
    let shard_row = frame
        .split("\r\n")
        .find(|l| l.starts_with("shard"))
        .ok_or("a shard row")?;
    assert_eq!(
        shard_row.split_whitespace().collect::<Vec<_>>(),
        ["shard", "000", "001", "002"]
    );
    let entries_row = frame
        .split("\r\n")
        .find(|l| l.starts_with("entries   ") && !l.contains('('))
        .ok_or("an entries row")?;
    let per_shard: u64 = entries_row
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(per_shard, 30, "{entries_row}");
    Ok(())
}

#[test]
fn watch_prints_one_line_per_interval_into_a_pipe() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("k", "v")?;
    for json in [false, true] {
        let mut args = vec!["stats", arg(dir.path()), "--watch", "100ms"];
        if json {
            args.push("--json");
        }
        let mut child = dcache()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().ok_or("a line")??;
        let second = lines.next().ok_or("a second line")??;
        assert_eq!(interrupt(&mut child)?, 0);
        for line in [&first, &second] {
            assert!(!line.contains('\x1b'), "no ANSI in a pipe: {line:?}");
            if json {
                let doc: serde_json::Value = serde_json::from_str(line)?;
                assert_eq!(doc["entries"], 1);
                assert_eq!(doc["statistics"], false);
            } else {
                assert!(line.contains(" entries=1 "), "{line}");
                assert!(line.contains("(statistics off)"), "{line}");
            }
        }
    }
    Ok(())
}

#[test]
fn unlock_asks_on_a_terminal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    for answer in ["n", "y"] {
        cache.set("job-lock", dcache::Value::None)?;
        let pty = pty(80)?;
        let mut child = dcache()
            .args(["unlock", arg(dir.path()), "job-lock"])
            .stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave.try_clone()?))
            .stderr(Stdio::from(pty.slave.try_clone()?))
            .spawn()?;
        drop(pty.slave);
        let mut master = pty.master.try_clone()?;
        let seen = collect(pty.master);
        assert!(
            wait_until(&seen, Duration::from_secs(10), |t| t.contains("[y/N] ")),
            "a question: {:?}",
            text(&seen)
        );
        assert!(text(&seen).starts_with("Release lock 'job-lock' held by a python process"));
        std::io::Write::write_all(&mut master, format!("{answer}\n").as_bytes())?;
        let status = child.wait()?;
        if answer == "y" {
            assert_eq!(status.code(), Some(0));
            assert!(!cache.contains("job-lock")?);
        } else {
            assert_eq!(status.code(), Some(1));
            assert!(cache.contains("job-lock")?);
            cache.delete("job-lock")?;
        }
    }
    Ok(())
}
