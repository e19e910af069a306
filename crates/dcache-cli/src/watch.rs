//! `dcache stats DIR --watch [INTERVAL]`: a live view of a cache.
//!
//! On a terminal the screen is redrawn in place (ANSI: cursor home, clear); into a pipe one
//! line is printed per interval (a JSON object with `--json`). Ctrl-C (SIGINT) or SIGTERM
//! stops the loop between frames, and the cursor is restored.
//!
//! Rates are per second over the last interval. Hits and misses come from the cache's
//! statistics counters, so they are shown only when the statistics setting is on. `stored/s`
//! counts entries stored since the last frame (new keys and rewritten ones whose row is the
//! newest); `removed/s` is what left the cache meanwhile (evicted, culled, expired or
//! deleted): entries before, plus stored, minus entries now.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dcache::cache::{EntryQuery, Summary};
use dcache::{Cache, DiskFormat};

use crate::commands::{Outcome, write_error};
use crate::error::CliError;
use crate::render;
use crate::target::{Kind, Target};

/// One shard's numbers at one instant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// Entries, expired ones included.
    pub(crate) entries: u64,
    /// Expired entries waiting for removal.
    pub(crate) expired: u64,
    /// Bytes on disk.
    pub(crate) volume: u64,
    /// The size limit.
    pub(crate) size_limit: u64,
    /// Statistics counters (0 when off).
    pub(crate) hits: u64,
    /// As `hits`.
    pub(crate) misses: u64,
    /// Whether statistics are on.
    pub(crate) statistics: bool,
}

/// Per-second rates between two samples of a shard.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    /// Hits per second.
    pub(crate) hits: f64,
    /// Misses per second.
    pub(crate) misses: f64,
    /// Entries stored per second.
    pub(crate) stored: f64,
    /// Entries removed per second.
    pub(crate) removed: f64,
}

/// The rates between `before` and `now`, `stored` entries having been written meanwhile.
pub(crate) fn rates(before: &Sample, now: &Sample, stored: u64, secs: f64) -> Rates {
    if secs <= 0.0 {
        return Rates::default();
    }
    let removed = (before.entries + stored).saturating_sub(now.entries);
    Rates {
        // Counters go back to 0 when someone resets them: no negative rates.
        hits: now.hits.saturating_sub(before.hits) as f64 / secs,
        misses: now.misses.saturating_sub(before.misses) as f64 / secs,
        stored: stored as f64 / secs,
        removed: removed as f64 / secs,
    }
}

fn sample<D: DiskFormat>(cache: &Cache<D>) -> Result<Sample, CliError> {
    let Summary {
        entries,
        expired,
        volume,
        stats,
        ..
    } = cache.summary()?;
    // Other processes change settings (statistics on or off): read them again.
    let settings = cache.reload_settings().unwrap_or_else(|_| cache.settings());
    Ok(Sample {
        entries,
        expired,
        volume,
        size_limit: settings.size_limit,
        hits: stats.hits,
        misses: stats.misses,
        statistics: settings.statistics,
    })
}

/// Entries stored after `since`: the newest rows, read back until an older one.
fn stored_since<D: DiskFormat>(cache: &Cache<D>, since: SystemTime) -> Result<u64, CliError> {
    let mut n = 0;
    for entry in cache.entries(EntryQuery::new().reverse(true).values(false))? {
        let Ok(entry) = entry else { continue };
        match entry.store_time {
            Some(t) if t > since => n += 1,
            _ => break,
        }
    }
    Ok(n)
}

/// The terminal's width in columns (80 when unknown).
pub(crate) fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
        .or_else(|| {
            rustix::termios::tcgetwinsize(std::io::stderr())
                .ok()
                .map(|w| usize::from(w.ws_col))
                .filter(|w| *w > 0)
        })
        .unwrap_or(80)
}

fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// Width of the label column of the shard table.
const LABEL: usize = 10;
/// Width of one shard's column.
const COLUMN: usize = 10;

/// How one row of the shard table shows shard `i`.
type Cell<'a> = Box<dyn Fn(usize) -> String + 'a>;

/// The screen for one frame (lines, each at most `width` characters).
pub(crate) fn screen(
    dir: &str,
    kind: Kind,
    samples: &[Sample],
    rates: &[Rates],
    interval: Duration,
    width: usize,
) -> Vec<String> {
    let total = |f: fn(&Sample) -> u64| samples.iter().map(f).fold(0u64, u64::saturating_add);
    let sum_rate = |f: fn(&Rates) -> f64| rates.iter().map(f).sum::<f64>();
    let statistics = samples.iter().any(|s| s.statistics);
    let mut lines = vec![
        format!(
            "dcache stats {dir}  every {}  (Ctrl-C to stop)",
            crate::units::human_duration(interval)
        ),
        String::new(),
        format!(
            "entries     {} ({} expired, waiting for removal)",
            total(|s| s.entries),
            total(|s| s.expired)
        ),
        {
            let volume = total(|s| s.volume);
            let limit = total(|s| s.size_limit);
            let percent = if limit > 0 {
                volume as f64 * 100.0 / limit as f64
            } else {
                0.0
            };
            format!(
                "volume      {} of {} ({percent:.1}%)",
                render::human_size(volume),
                render::human_size(limit)
            )
        },
        format!(
            "stored/s    {}   removed/s {}",
            rate(sum_rate(|r| r.stored)),
            rate(sum_rate(|r| r.removed))
        ),
        if statistics {
            format!(
                "hits/s      {}   misses/s {}   (totals: {} hits, {} misses)",
                rate(sum_rate(|r| r.hits)),
                rate(sum_rate(|r| r.misses)),
                total(|s| s.hits),
                total(|s| s.misses)
            )
        } else {
            "hits/s      -   statistics are off: hits and misses are not counted (turn them on: \
             dcache settings DIR statistics 1)"
                .to_owned()
        },
    ];
    if kind == Kind::Fanout {
        lines.push(String::new());
        // Shards side by side: one column per shard, as many as fit the width.
        let per_row = ((width.saturating_sub(LABEL)) / COLUMN).max(1);
        let rows: [(&str, Cell<'_>); 6] = [
            ("shard", Box::new(|i| format!("{i:03}"))),
            ("entries", Box::new(|i| samples[i].entries.to_string())),
            ("expired", Box::new(|i| samples[i].expired.to_string())),
            (
                "volume",
                Box::new(|i| render::human_size(samples[i].volume)),
            ),
            ("stored/s", Box::new(|i| rate(rates[i].stored))),
            (
                "hits/s",
                Box::new(|i| {
                    if samples[i].statistics {
                        rate(rates[i].hits)
                    } else {
                        "-".to_owned()
                    }
                }),
            ),
        ];
        let indexes: Vec<usize> = (0..samples.len()).collect();
        for chunk in indexes.chunks(per_row) {
            for (label, cell) in &rows {
                let mut line = format!("{label:<LABEL$}");
                for i in chunk {
                    let cell = cell(*i);
                    line.push_str(&" ".repeat(COLUMN.saturating_sub(cell.chars().count())));
                    line.push_str(&cell);
                }
                lines.push(line);
            }
        }
    }
    lines.into_iter().map(|l| truncate(&l, width)).collect()
}

/// `line` cut to `width` characters.
pub(crate) fn truncate(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_owned()
    } else {
        line.chars()
            .take(width.saturating_sub(1))
            .chain(['…'])
            .collect()
    }
}

/// Runs the watch loop until SIGINT or SIGTERM.
pub(crate) fn watch<D: DiskFormat>(
    target: &Target<D>,
    interval: Duration,
    json: bool,
) -> Result<Outcome, CliError> {
    if interval < Duration::from_millis(50) {
        return Err(CliError::Usage(
            "--watch INTERVAL must be at least 50ms".to_owned(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| CliError::Io {
            what: "installing the Ctrl-C handler",
            source: e,
        })?;
    }
    let tty = std::io::stdout().is_terminal() && !json;
    let dir = target.dir.display().to_string();
    let mut out = std::io::stdout().lock();
    if tty {
        // Hide the cursor while drawing.
        write!(out, "\x1b[?25l").map_err(write_error)?;
    }
    let result = (|| -> Result<(), CliError> {
        let mut before: Vec<Sample> = target.shards.iter().map(sample).collect::<Result<_, _>>()?;
        let mut at = Instant::now();
        let mut since = SystemTime::now();
        let mut current_rates = vec![Rates::default(); before.len()];
        loop {
            let samples: Vec<Sample> = if current_rates.iter().all(|r| *r == Rates::default())
                && at.elapsed() < Duration::from_millis(5)
            {
                before.clone()
            } else {
                let now = SystemTime::now();
                let secs = at.elapsed().as_secs_f64();
                let samples: Vec<Sample> =
                    target.shards.iter().map(sample).collect::<Result<_, _>>()?;
                current_rates = target
                    .shards
                    .iter()
                    .zip(before.iter().zip(&samples))
                    .map(|(shard, (b, s))| Ok(rates(b, s, stored_since(shard, since)?, secs)))
                    .collect::<Result<_, CliError>>()?;
                at = Instant::now();
                since = now;
                samples
            };
            if tty {
                let lines = screen(
                    &dir,
                    target.kind,
                    &samples,
                    &current_rates,
                    interval,
                    terminal_width(),
                );
                write!(out, "\x1b[H\x1b[2J{}", lines.join("\r\n")).map_err(write_error)?;
            } else if json {
                let doc = serde_json::json!({
                    "time": crate::render::rfc3339(SystemTime::now()),
                    "entries": samples.iter().map(|s| s.entries).sum::<u64>(),
                    "expired": samples.iter().map(|s| s.expired).sum::<u64>(),
                    "volume": samples.iter().map(|s| s.volume).sum::<u64>(),
                    "size_limit": samples.iter().map(|s| s.size_limit).sum::<u64>(),
                    "statistics": samples.iter().any(|s| s.statistics),
                    "hits": samples.iter().map(|s| s.hits).sum::<u64>(),
                    "misses": samples.iter().map(|s| s.misses).sum::<u64>(),
                    "hits_per_second": current_rates.iter().map(|r| r.hits).sum::<f64>(),
                    "misses_per_second": current_rates.iter().map(|r| r.misses).sum::<f64>(),
                    "stored_per_second": current_rates.iter().map(|r| r.stored).sum::<f64>(),
                    "removed_per_second": current_rates.iter().map(|r| r.removed).sum::<f64>(),
                });
                writeln!(out, "{doc}").map_err(write_error)?;
            } else {
                let total = |f: fn(&Sample) -> u64| samples.iter().map(f).sum::<u64>();
                let sum = |f: fn(&Rates) -> f64| current_rates.iter().map(f).sum::<f64>();
                let hits = if samples.iter().any(|s| s.statistics) {
                    format!(
                        "hits/s={} misses/s={}",
                        rate(sum(|r| r.hits)),
                        rate(sum(|r| r.misses))
                    )
                } else {
                    "hits/s=- misses/s=- (statistics off)".to_owned()
                };
                writeln!(
                    out,
                    "{} entries={} expired={} volume={} limit={} stored/s={} removed/s={} {hits}",
                    crate::render::rfc3339(SystemTime::now()),
                    total(|s| s.entries),
                    total(|s| s.expired),
                    total(|s| s.volume),
                    total(|s| s.size_limit),
                    rate(sum(|r| r.stored)),
                    rate(sum(|r| r.removed)),
                )
                .map_err(write_error)?;
            }
            out.flush().map_err(write_error)?;
            before = samples;
            let deadline = Instant::now() + interval;
            while Instant::now() < deadline {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20).min(interval));
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    })();
    if tty {
        // Show the cursor again, below the last frame.
        write!(out, "\x1b[?25h\r\n")
            .and_then(|()| out.flush())
            .map_err(write_error)?;
    }
    result.map(|()| Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_and_never_negative() {
        let before = Sample {
            entries: 10,
            hits: 5,
            misses: 1,
            ..Sample::default()
        };
        let now = Sample {
            entries: 12,
            hits: 9,
            misses: 0,
            ..Sample::default()
        };
        let r = rates(&before, &now, 4, 2.0);
        assert_eq!(
            r,
            Rates {
                hits: 2.0,
                misses: 0.0,
                stored: 2.0,
                removed: 1.0
            }
        );
        assert_eq!(rates(&before, &now, 4, 0.0), Rates::default());
    }

    #[test]
    fn the_screen_fits_the_width_and_says_when_statistics_are_off() {
        let samples = vec![
            Sample {
                entries: 3,
                volume: 2048,
                size_limit: 1 << 30,
                ..Sample::default()
            };
            12
        ];
        let rates = vec![Rates::default(); 12];
        let lines = screen(
            "/c",
            Kind::Fanout,
            &samples,
            &rates,
            Duration::from_secs(1),
            60,
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("statistics are off")));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("entries     36 (0 expired"))
        );
        // 12 shards in columns of 10 characters after a 10-character label: 5 per row.
        assert_eq!(lines.iter().filter(|l| l.starts_with("shard")).count(), 3);
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
