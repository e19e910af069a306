//! A progress line on stderr for long operations, redrawn ten times a second by a thread.
//!
//! Hand-written rather than indicatif: one line with a bar, a count and the elapsed time is
//! all the command needs, and indicatif would add five crates (`console`, `unicode-width`,
//! `number_prefix`, `portable-atomic`, `web-time`) to a tree that is otherwise dcache, clap
//! and serde.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cli::When;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// Width of the bar in characters.
const BAR: usize = 24;

/// The spinner's frames, when there is no total.
const SPIN: [char; 4] = ['|', '/', '-', '\\'];

/// A function the drawing thread calls each tick for the current count (a poll of the
/// cache, for operations the library runs in one call).
pub(crate) type Poll = Box<dyn Fn() -> Option<u64> + Send>;

struct Shared {
    label: Mutex<String>,
    done: AtomicU64,
    /// 0 when unknown.
    total: AtomicU64,
    finished: Mutex<bool>,
    wake: Condvar,
}

/// A running progress line; draws nothing when disabled. Cleared by
/// [`finish`](Self::finish) or on drop.
#[must_use = "the progress line disappears when dropped"]
pub(crate) struct Progress {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts a progress line for `label`, out of `total` when known, if `when` says so.
    pub(crate) fn start(when: When, label: &str, total: Option<u64>, poll: Option<Poll>) -> Self {
        let shared = Arc::new(Shared {
            label: Mutex::new(label.to_owned()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(0)),
            finished: Mutex::new(false),
            wake: Condvar::new(),
        });
        let enabled = match when {
            When::Always => true,
            When::Never => false,
            When::Auto => std::io::stderr().is_terminal(),
        };
        let thread = enabled.then(|| {
            // The first frame is drawn at once, so even a short operation shows what it did.
            let started = Instant::now();
            let drawn = draw(&shared, started, 0);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                if drawn {
                    draw_loop(&shared, started, poll.as_deref());
                }
            })
        });
        Progress { shared, thread }
    }

    /// Sets the count done so far.
    pub(crate) fn set(&self, done: u64) {
        self.shared.done.store(done, Ordering::Relaxed);
    }

    /// Adds one to the count.
    pub(crate) fn inc(&self) {
        self.shared.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes the label (`checking shard 3/8`).
    pub(crate) fn label(&self, label: &str) {
        label.clone_into(
            &mut self
                .shared
                .label
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Stops drawing and clears the line.
    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        *self
            .shared
            .finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            // The drawing thread panicked: nothing is left to clean up but the line.
            clear_line();
        }
    }
}

impl Drop for Progress {
    /// Stops the drawing thread and clears the line (also when a command fails midway).
    fn drop(&mut self) {
        self.stop();
    }
}

/// Draws one frame; false when stderr cannot be written (drawing then stops; the operation
/// goes on, and there is nowhere else to report it).
fn draw(shared: &Shared, started: Instant, frame: usize) -> bool {
    let label = shared
        .label
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let total = shared.total.load(Ordering::Relaxed);
    let line = render(
        &label,
        shared.done.load(Ordering::Relaxed),
        (total > 0).then_some(total),
        started.elapsed(),
        frame,
    );
    let mut err = std::io::stderr().lock();
    write!(err, "\r\x1b[2K{line}")
        .and_then(|()| err.flush())
        .is_ok()
}

fn draw_loop(shared: &Shared, started: Instant, poll: Option<&(dyn Fn() -> Option<u64> + Send)>) {
    let mut frame = 1usize;
    let mut finished = shared
        .finished
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    loop {
        finished = shared
            .wake
            .wait_timeout(finished, TICK)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *finished {
            break;
        }
        if let Some(done) = poll.and_then(|p| p()) {
            shared.done.store(done, Ordering::Relaxed);
        }
        if !draw(shared, started, frame) {
            break;
        }
        frame += 1;
    }
    drop(finished);
    clear_line();
}

fn clear_line() {
    let mut err = std::io::stderr().lock();
    if write!(err, "\r\x1b[2K").and_then(|()| err.flush()).is_err() {
        // Nothing to clear on a closed stderr.
    }
}

/// One frame: `dumping [#########...............]  37% 3700/10000 1.2s`, or without a total
/// `checking | 3700 1.2s`.
pub(crate) fn render(
    label: &str,
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    frame: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    if let Some(total) = total {
        let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
        let filled = (fraction * BAR as f64).round() as usize;
        format!(
            "{label} [{}{}] {:>3}% {done}/{total} {secs:.1}s",
            "#".repeat(filled),
            ".".repeat(BAR - filled),
            (fraction * 100.0).floor() as u64,
        )
    } else {
        let spin = SPIN[frame % SPIN.len()];
        if done > 0 {
            format!("{label} {spin} {done} {secs:.1}s")
        } else {
            format!("{label} {spin} {secs:.1}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_show_a_bar_a_count_and_the_time() {
        assert_eq!(
            render("dumping", 250, Some(1000), Duration::from_millis(1500), 0),
            "dumping [######..................]  25% 250/1000 1.5s"
        );
        assert_eq!(
            render("dumping", 2000, Some(1000), Duration::ZERO, 0),
            "dumping [########################] 100% 2000/1000 0.0s"
        );
        assert_eq!(
            render("checking", 0, None, Duration::from_secs(2), 1),
            "checking / 2.0s"
        );
        assert_eq!(
            render("culling", 12, None, Duration::from_secs(2), 2),
            "culling - 12 2.0s"
        );
    }

    #[test]
    fn a_disabled_line_draws_nothing_and_finishes() {
        let p = Progress::start(When::Never, "x", Some(3), None);
        p.inc();
        p.set(2);
        p.label("y");
        assert!(p.thread.is_none());
        p.finish();
    }
}
