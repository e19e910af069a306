//! One measured figure, printed as one line in the format docs/benchmarks.md describes.

use std::fmt;
use std::time::Duration;

/// What a figure measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Wall-clock microseconds per operation, over all threads (`us_per_op=`).
    UsPerOp(f64),
    /// Anonymous resident memory of the process after the run, in MiB (`heap_rss_mib=`).
    HeapRssMib(f64),
}

/// A figure: `impl=<impl> kind=<kind> op=<op> n=<n> us_per_op=<float>`.
///
/// # Examples
///
/// ```
/// use benches::Figure;
///
/// let f = Figure::time("sqlite-floor", "cache", "set", 20_000, 0.1);
/// assert_eq!(f.to_string(), "impl=sqlite-floor kind=cache op=set n=20000 us_per_op=5.000");
/// assert_eq!(Figure::parse(&f.to_string()), Some(f));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The implementation: `dcache`, `sqlite-floor`, `sqlite-format-floor`, `python-diskcache`.
    pub implementation: String,
    /// What was measured: `cache` (later `fanout`).
    pub kind: String,
    /// The operation (workload name), e.g. `get_hit`.
    pub op: String,
    /// Operations timed (for the scale runs `get_hit_10k`/`get_hit_1m`: keys in the cache).
    pub n: u64,
    /// The measurement.
    pub metric: Metric,
}

impl Figure {
    /// A timing figure: `n` operations took `seconds` of wall-clock time.
    #[must_use]
    pub fn time(implementation: &str, kind: &str, op: &str, n: u64, seconds: f64) -> Figure {
        Figure {
            implementation: implementation.to_owned(),
            kind: kind.to_owned(),
            op: op.to_owned(),
            n,
            metric: Metric::UsPerOp(seconds * 1e6 / n.max(1) as f64),
        }
    }

    /// A timing figure from a [`Duration`].
    #[must_use]
    pub fn elapsed(implementation: &str, kind: &str, op: &str, n: u64, took: Duration) -> Figure {
        Figure::time(implementation, kind, op, n, took.as_secs_f64())
    }

    /// The microseconds per operation, for a timing figure.
    #[must_use]
    pub fn us_per_op(&self) -> Option<f64> {
        match self.metric {
            Metric::UsPerOp(us) => Some(us),
            Metric::HeapRssMib(_) => None,
        }
    }

    /// Parses a line this type prints (python's script prints the same format); `None` for
    /// any other line.
    #[must_use]
    pub fn parse(line: &str) -> Option<Figure> {
        let mut fields = line.split_whitespace().map(|f| f.split_once('='));
        let mut next = |name: &str| match fields.next() {
            Some(Some((k, v))) if k == name => Some(v.to_owned()),
            _ => None,
        };
        let implementation = next("impl")?;
        let kind = next("kind")?;
        let op = next("op")?;
        let n = next("n")?.parse().ok()?;
        let metric = match fields.next()?? {
            ("us_per_op", v) => Metric::UsPerOp(v.parse().ok()?),
            ("heap_rss_mib", v) => Metric::HeapRssMib(v.parse().ok()?),
            _ => return None,
        };
        if fields.next().is_some() {
            return None;
        }
        Some(Figure {
            implementation,
            kind,
            op,
            n,
            metric,
        })
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "impl={} kind={} op={} n={} ",
            self.implementation, self.kind, self.op, self.n
        )?;
        match self.metric {
            Metric::UsPerOp(us) => write!(f, "us_per_op={us:.3}"),
            Metric::HeapRssMib(mib) => write!(f, "heap_rss_mib={mib:.1}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_junk_is_refused() {
        let rss = Figure {
            implementation: "dcache".into(),
            kind: "cache".into(),
            op: "get_hit_1m".into(),
            n: 1_000_000,
            metric: Metric::HeapRssMib(12.5),
        };
        assert_eq!(
            rss.to_string(),
            "impl=dcache kind=cache op=get_hit_1m n=1000000 heap_rss_mib=12.5"
        );
        assert_eq!(Figure::parse(&rss.to_string()), Some(rss));
        assert_eq!(Figure::parse("building..."), None);
        assert_eq!(
            Figure::parse("impl=a kind=b op=c n=1 us_per_op=x"),
            None,
            "a non-numeric figure"
        );
        assert_eq!(
            Figure::parse("impl=a kind=b op=c n=1 us_per_op=1 extra=2"),
            None
        );
    }
}
