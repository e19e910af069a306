//! A progress line on stderr for long operations, redrawn ten times a second by a thread:
//! count, rate, time left, cut to the terminal's width.
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
use crate::units::human_duration;

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
        stderr_width(),
    );
    let mut err = std::io::stderr().lock();
    write!(err, "\r\x1b[2K{line}")
        .and_then(|()| err.flush())
        .is_ok()
}

/// The width of the terminal stderr is on (80 when unknown).
fn stderr_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
        .unwrap_or(80)
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

/// One frame, cut to `width` columns so it never wraps (a wrapped line cannot be redrawn in
/// place): `dumping [######..................]  25% 250/1000 166/s 4s left`, or without a
/// total `culling | 3700 1234/s 3.0s`. The bar shrinks first when the line is too wide.
pub(crate) fn render(
    label: &str,
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    frame: usize,
    width: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    // A rate needs a moment of history to mean anything.
    let rate = (secs >= 0.5 && done > 0).then(|| done as f64 / secs);
    let rate_text = rate.map_or_else(String::new, |r| format!(" {}/s", per_second(r)));
    let line = if let Some(total) = total {
        let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
        let left = match rate {
            Some(r) if done < total => format!(
                " {} left",
                human_duration(Duration::from_secs_f64(
                    ((total - done) as f64 / r).min(1e9)
                ))
            ),
            _ => format!(" {secs:.1}s"),
        };
        let tail = format!(
            " {:>3}% {done}/{total}{rate_text}{left}",
            (fraction * 100.0).floor() as u64
        );
        // The bar takes what is left of the width, up to BAR, at least 5, or goes.
        let room = width.saturating_sub(label.chars().count() + tail.chars().count() + 4);
        let bar = room.min(BAR);
        if bar >= 5 {
            let filled = (fraction * bar as f64).round() as usize;
            format!(
                "{label} [{}{}]{tail}",
                "#".repeat(filled),
                ".".repeat(bar - filled)
            )
        } else {
            format!("{label}{tail}")
        }
    } else {
        let spin = SPIN[frame % SPIN.len()];
        if done > 0 {
            format!("{label} {spin} {done}{rate_text} {secs:.1}s")
        } else {
            format!("{label} {spin} {secs:.1}s")
        }
    };
    // Leave the last column free: some terminals wrap when it is written.
    crate::watch::truncate(&line, width.saturating_sub(1).max(1))
}

fn per_second(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_show_a_bar_a_count_a_rate_and_the_time_left() {
        assert_eq!(
            render(
                "dumping",
                250,
                Some(1000),
                Duration::from_millis(1500),
                0,
                80
            ),
            "dumping [######..................]  25% 250/1000 167/s 4s left"
        );
        assert_eq!(
            render("dumping", 2000, Some(1000), Duration::ZERO, 0, 80),
            "dumping [########################] 100% 2000/1000 0.0s"
        );
        assert_eq!(
            render("checking", 0, None, Duration::from_secs(2), 1, 80),
            "checking / 2.0s"
        );
        assert_eq!(
            render("culling", 12, None, Duration::from_secs(2), 2, 80),
            "culling - 12 6.0/s 2.0s"
        );
    }

    #[test]
    fn frames_fit_the_width() {
        for width in [10, 20, 30, 40, 50, 60, 200] {
            for total in [None, Some(1_000_000)] {
                let line = render(
                    "loading shard 007",
                    123_456,
                    total,
                    Duration::from_secs(3),
                    0,
                    width,
                );
                assert!(line.chars().count() < width, "{width}: {line:?}");
            }
        }
        let narrow = render("dumping", 5, Some(10), Duration::from_secs(1), 0, 40);
        assert_eq!(narrow, "dumping [###..]  50% 5/10 5.0/s 1s left");
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
