//! `-v`/`--verbose`: the library's `log` messages on stderr.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Writes records at or above the chosen level to stderr, one line each.
struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let mut err = std::io::stderr().lock();
        // A message the library already prefixes with `dcache:` is not prefixed twice.
        let text = record.args().to_string();
        let text = text.strip_prefix("dcache: ").unwrap_or(&text);
        if writeln!(err, "dcache: {level}: {text} [{}]", record.target()).is_err() {
            // Nowhere left to report to.
        }
    }

    fn flush(&self) {
        if std::io::stderr().flush().is_err() {
            // As above.
        }
    }
}

static LOGGER: Stderr = Stderr;

/// The level `-v` given `count` times shows: nothing without `-v`, warnings and notes with
/// one, everything with two or more.
pub(crate) fn level(count: u8) -> LevelFilter {
    match count {
        0 => LevelFilter::Off,
        1 => LevelFilter::Info,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger for `-v` given `count` times.
pub(crate) fn install(count: u8) {
    let level = level(count);
    if level != LevelFilter::Off && log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_levels() {
        assert_eq!(level(0), LevelFilter::Off);
        assert_eq!(level(1), LevelFilter::Info);
        assert_eq!(level(3), LevelFilter::Trace);
    }
}
