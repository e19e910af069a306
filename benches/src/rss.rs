//! The process's anonymous resident memory (heap, stacks; not mapped files such as SQLite's
//! memory-mapped database), from `/proc/self/status`.

/// `RssAnon` of this process in MiB, or `None` where `/proc` has no such line (not Linux).
#[must_use]
pub fn heap_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_rss_anon(&status)
}

fn parse_rss_anon(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_anon() {
        let status = "Name:\tx\nRssAnon:\t    2048 kB\nRssFile:\t 100 kB\n";
        assert_eq!(parse_rss_anon(status), Some(2.0));
        assert_eq!(parse_rss_anon("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_heap() {
        assert!(heap_rss_mib().is_some_and(|mib| mib > 0.0));
    }
}
