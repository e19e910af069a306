//! `cargo xtask bench [--quick] [--rounds N]`: the comparison of docs/benchmarks.md in one sitting.
//!
//! Builds the `benches` crate in release mode, runs its `compare` binary (dcache and the two SQLite
//! floors) and then `benches/python/bench_diskcache.py` (python-diskcache 5.6.3, when
//! `$DCACHE_PYTHON` or `python3` can import it), echoing their figure lines. Then it prints the
//! ratio table and the performance targets ([`targets`]), writes `target/bench/report.json`, and
//! renders the table and an SVG chart: into `docs/benchmarks.md` and `docs/benchmarks.svg` for a
//! full run, into `target/bench/` for a quick one (the docs show full runs only).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

pub(crate) const USAGE: &str = "usage: cargo xtask bench [--quick] [--rounds N]

  --quick     a smaller run (100,000 keys instead of 1,000,000 for W5, fewer operations, one
              round) that writes its table and chart to target/bench/ instead of docs/
  --rounds N  rounds per figure (the median is reported; default 3, or 1 with --quick)";

/// `writeln!` into a `String` (which cannot fail).
macro_rules! push_line {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// The implementations, in table order.
const IMPLS: [&str; 4] = [
    "dcache",
    "sqlite-floor",
    "sqlite-format-floor",
    "python-diskcache",
];

/// Where the generated part of `docs/benchmarks.md` starts and ends.
const BEGIN: &str = "<!-- xtask bench: generated from here -->";
const END: &str = "<!-- xtask bench: generated up to here -->";

#[derive(Debug, Default)]
struct Args {
    quick: bool,
    rounds: Option<u32>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--rounds" => {
                let n = it.next().ok_or("--rounds needs a number")?;
                parsed.rounds = Some(n.parse().map_err(|e| format!("--rounds {n}: {e}"))?);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// One figure line: `impl=.. kind=.. op=.. n=.. us_per_op=..` (or `heap_rss_mib=..`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) implementation: String,
    pub(crate) kind: String,
    pub(crate) op: String,
    pub(crate) n: u64,
    pub(crate) metric: String,
    pub(crate) value: f64,
}

impl Figure {
    pub(crate) fn parse(line: &str) -> Option<Figure> {
        let fields: Vec<(&str, &str)> = line
            .split_whitespace()
            .map(|f| f.split_once('='))
            .collect::<Option<_>>()?;
        match fields.as_slice() {
            [
                ("impl", implementation),
                ("kind", kind),
                ("op", op),
                ("n", n),
                (metric @ ("us_per_op" | "heap_rss_mib"), value),
            ] => Some(Figure {
                implementation: (*implementation).to_owned(),
                kind: (*kind).to_owned(),
                op: (*op).to_owned(),
                n: n.parse().ok()?,
                metric: (*metric).to_owned(),
                value: value.parse().ok().filter(|v: &f64| v.is_finite())?,
            }),
            _ => None,
        }
    }
}

/// All figures of a run, looked up by implementation, kind, op and metric.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) all: Vec<Figure>,
}

impl Figures {
    fn find(&self, implementation: &str, kind: &str, op: &str, metric: &str) -> Option<&Figure> {
        self.all.iter().find(|f| {
            f.implementation == implementation && f.kind == kind && f.op == op && f.metric == metric
        })
    }

    fn us(&self, implementation: &str, kind: &str, op: &str) -> Option<f64> {
        self.find(implementation, kind, op, "us_per_op")
            .map(|f| f.value)
    }

    fn rss(&self, implementation: &str, kind: &str, op: &str) -> Option<f64> {
        self.find(implementation, kind, op, "heap_rss_mib")
            .map(|f| f.value)
    }

    /// `(kind, op)` of every timing figure, in order of first appearance.
    fn rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = Vec::new();
        for f in &self.all {
            let row = (f.kind.clone(), f.op.clone());
            if f.metric == "us_per_op" && !rows.contains(&row) {
                rows.push(row);
            }
        }
        rows
    }
}

/// A row of the ratio table.
#[derive(Debug)]
pub(crate) struct RatioRow {
    pub(crate) kind: String,
    pub(crate) op: String,
    /// µs per op of each of [`IMPLS`].
    pub(crate) us: [Option<f64>; 4],
}

impl RatioRow {
    fn dcache_over(&self, floor: usize) -> Option<f64> {
        Some(self.us[0]? / self.us[floor]?)
    }

    fn python_over_dcache(&self) -> Option<f64> {
        Some(self.us[3]? / self.us[0]?)
    }
}

pub(crate) fn ratio_rows(figures: &Figures) -> Vec<RatioRow> {
    figures
        .rows()
        .into_iter()
        .map(|(kind, op)| {
            let us = IMPLS.map(|i| figures.us(i, &kind, &op));
            RatioRow { kind, op, us }
        })
        .collect()
}

/// A performance target dcache is held to, evaluated on one run.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) measured: Option<f64>,
    pub(crate) bound: String,
    pub(crate) met: Option<bool>,
    /// The same figure for `sqlite-floor` and `sqlite-format-floor`, for targets that compare
    /// an implementation with itself (scaling, size): what SQLite alone achieves.
    pub(crate) floors: [Option<f64>; 2],
}

fn at_most(name: &str, measured: Option<f64>, limit: f64, unit: &str) -> Target {
    Target {
        name: name.to_owned(),
        measured,
        bound: format!("≤ {limit}{unit}"),
        met: measured.map(|m| m <= limit),
        floors: [None, None],
    }
}

fn at_least(name: &str, measured: Option<f64>, limit: f64) -> Target {
    Target {
        name: name.to_owned(),
        measured,
        bound: format!("≥ {limit}"),
        met: measured.map(|m| m >= limit),
        floors: [None, None],
    }
}

/// `target` with the same figure computed for both floors.
fn with_floors(mut target: Target, figure: impl Fn(&str) -> Option<f64>) -> Target {
    target.floors = ["sqlite-floor", "sqlite-format-floor"].map(figure);
    target
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

pub(crate) fn targets(figures: &Figures) -> Vec<Target> {
    let us = |i: &str, op: &str| figures.us(i, "cache", op);
    let mut out = Vec::new();
    for op in ["get_hit", "get_miss"] {
        out.push(at_most(
            &format!("{op}: dcache / sqlite-floor"),
            ratio(us("dcache", op), us("sqlite-floor", op)),
            1.25,
            "",
        ));
    }
    for op in ["set", "delete"] {
        out.push(at_most(
            &format!("{op}: dcache / sqlite-format-floor"),
            ratio(us("dcache", op), us("sqlite-format-floor", op)),
            1.15,
            "",
        ));
    }
    let get_speedup = |i: &str| ratio(us(i, "get_1t"), us(i, "get_2t"));
    out.push(with_floors(
        at_least(
            "get_2t throughput / get_1t throughput",
            get_speedup("dcache"),
            1.8,
        ),
        get_speedup,
    ));
    // Amdahl: the 90% reads run in parallel on 2 threads, the 10% writes serialize.
    let mix_vs_amdahl = |i: &str| {
        let amdahl_us = us(i, "set_1t")
            .zip(us(i, "get_1t"))
            .map(|(set, get)| 0.1 * set + 0.9 * get / 2.0);
        ratio(amdahl_us, us(i, "mix_2t"))
    };
    out.push(with_floors(
        at_least(
            "mix_2t throughput / Amdahl bound from get_1t, set_1t",
            mix_vs_amdahl("dcache"),
            0.9,
        ),
        mix_vs_amdahl,
    ));
    let scale = |i: &str| ratio(us(i, "get_hit_1m"), us(i, "get_hit_10k"));
    out.push(with_floors(
        at_most("get_hit_1m / get_hit_10k", scale("dcache"), 1.5, ""),
        scale,
    ));
    let rss_growth = |i: &str| {
        figures
            .rss(i, "cache", "get_hit_1m")
            .zip(figures.rss(i, "cache", "get_hit_10k"))
            .map(|(big, small)| big - small)
    };
    out.push(with_floors(
        at_most(
            "heap RSS of the 1M run − the 10k run's",
            rss_growth("dcache"),
            16.0,
            " MiB",
        ),
        rss_growth,
    ));
    out.push(at_most(
        "get_large: dcache / the floor's file read",
        ratio(us("dcache", "get_large"), us("sqlite-floor", "get_large")),
        1.5,
        "",
    ));
    out.push(at_most(
        "get_large_bytes (get_bytes): dcache / the floor's file read",
        ratio(
            us("dcache", "get_large_bytes"),
            us("sqlite-floor", "get_large"),
        ),
        1.5,
        "",
    ));
    out.push(Target {
        name: "set_8t: python-diskcache / dcache (recorded)".to_owned(),
        measured: ratio(us("python-diskcache", "set_8t"), us("dcache", "set_8t")),
        bound: "–".to_owned(),
        met: None,
        floors: [None, None],
    });
    out
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The ratio table as aligned text (for the terminal).
pub(crate) fn text_table(rows: &[RatioRow]) -> String {
    let mut out = format!(
        "{:<7} {:<16} {:>10} {:>10} {:>10} {:>10}   {:>9} {:>10} {:>9}\n",
        "kind", "op", "dcache", "sqlite", "format", "python", "dc/sqlite", "dc/format", "py/dc"
    );
    for r in rows {
        push_line!(
            out,
            "{:<7} {:<16} {:>10} {:>10} {:>10} {:>10}   {:>9} {:>10} {:>9}",
            r.kind,
            r.op,
            fmt_opt(r.us[0], 2),
            fmt_opt(r.us[1], 2),
            fmt_opt(r.us[2], 2),
            fmt_opt(r.us[3], 2),
            fmt_opt(r.dcache_over(1), 2),
            fmt_opt(r.dcache_over(2), 2),
            fmt_opt(r.python_over_dcache(), 2),
        );
    }
    out
}

fn target_lines(targets: &[Target]) -> String {
    let mut out = String::new();
    for t in targets {
        let verdict = match (t.met, t.measured) {
            (Some(true), _) => "met",
            (Some(false), _) => "MISSED",
            (None, Some(_)) => "recorded",
            (None, None) => "not measured",
        };
        let floors = if t.floors.iter().any(Option::is_some) {
            format!(
                "; floors: sqlite {}, format {}",
                fmt_opt(t.floors[0], 2),
                fmt_opt(t.floors[1], 2)
            )
        } else {
            String::new()
        };
        push_line!(
            out,
            "{verdict:>12}  {}: {} (target {}{floors})",
            t.name,
            fmt_opt(t.measured, 2),
            t.bound
        );
    }
    out
}

/// The generated section of `docs/benchmarks.md`.
pub(crate) fn markdown(
    rows: &[RatioRow],
    targets: &[Target],
    figures: &Figures,
    context: &Context,
) -> String {
    let mut out = String::new();
    push_line!(
        out,
        "Run of {} ({} mode, {} round(s), median per figure) on {}.\n",
        context.date,
        context.mode,
        context.rounds,
        context.machine_line()
    );
    out.push_str("![µs per operation, log scale](benchmarks.svg)\n\n");
    out.push_str(
        "| kind | op | dcache µs/op | sqlite-floor | sqlite-format-floor | python-diskcache | dcache / sqlite-floor | dcache / format-floor | python / dcache |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        push_line!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            r.kind,
            r.op,
            fmt_opt(r.us[0], 2),
            fmt_opt(r.us[1], 2),
            fmt_opt(r.us[2], 2),
            fmt_opt(r.us[3], 2),
            fmt_opt(r.dcache_over(1), 2),
            fmt_opt(r.dcache_over(2), 2),
            fmt_opt(r.python_over_dcache(), 2),
        );
    }
    let rss: Vec<&Figure> = figures
        .all
        .iter()
        .filter(|f| f.metric == "heap_rss_mib")
        .collect();
    if !rss.is_empty() {
        out.push_str(
            "\nHeap (anonymous) RSS of the scale runs, measured with the connection still open, MiB:\n\n",
        );
        out.push_str("| impl | op | keys | heap RSS MiB |\n|---|---|--:|--:|\n");
        for f in rss {
            push_line!(
                out,
                "| {} | `{}` | {} | {:.1} |",
                f.implementation,
                f.op,
                f.n,
                f.value
            );
        }
    }
    out.push_str(
        "\nTargets, from this run; for targets that compare an implementation with \
         itself, the floors' own figures show what SQLite alone achieves:\n\n\
         | target | dcache | bound | | sqlite-floor | sqlite-format-floor |\n\
         |---|--:|--:|---|--:|--:|\n",
    );
    for t in targets {
        let verdict = match (t.met, t.measured) {
            (Some(true), _) => "met",
            (Some(false), _) => "**missed**",
            (None, Some(_)) => "recorded",
            (None, None) => "not measured",
        };
        push_line!(
            out,
            "| {} | {} | {} | {verdict} | {} | {} |",
            t.name,
            fmt_opt(t.measured, 2),
            t.bound,
            fmt_opt(t.floors[0], 2),
            fmt_opt(t.floors[1], 2)
        );
    }
    out
}

/// Replaces the generated section between the markers of `doc`.
pub(crate) fn splice(doc: &str, generated: &str) -> Result<String, String> {
    let start = doc
        .find(BEGIN)
        .ok_or_else(|| format!("docs/benchmarks.md lacks the line `{BEGIN}`"))?;
    let end = doc
        .find(END)
        .filter(|&e| e > start)
        .ok_or_else(|| format!("docs/benchmarks.md lacks the line `{END}` after `{BEGIN}`"))?;
    Ok(format!(
        "{}{BEGIN}\n\n{}\n{}",
        &doc[..start],
        generated.trim_end(),
        &doc[end..]
    ))
}

/// Colours of [`IMPLS`] in the chart.
const COLOURS: [&str; 4] = ["#d62728", "#1f77b4", "#7fa7d0", "#ff9f1c"];

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar chart of µs per operation (log scale), one group of bars per op.
pub(crate) fn svg_chart(rows: &[RatioRow], title: &str) -> String {
    const LEFT: f64 = 150.0;
    const WIDTH: f64 = 620.0;
    const BAR: f64 = 7.0;
    const GAP: f64 = 10.0;
    const TOP: f64 = 56.0;
    let values = rows.iter().flat_map(|r| r.us.iter().flatten().copied());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi && lo > 0.0 {
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil()),
        )
    } else {
        (1.0, 10.0)
    };
    let decades = (hi / lo).log10().max(1.0);
    let scale = |v: f64| LEFT + WIDTH * (v / lo).log10() / decades;
    let group = |r: &RatioRow| r.us.iter().filter(|v| v.is_some()).count() as f64 * BAR + GAP;
    let height = TOP + rows.iter().map(group).sum::<f64>() + 40.0;
    let total_width = LEFT + WIDTH + 70.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total_width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {total_width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        xml_escape(title)
    );
    for (i, (name, colour)) in IMPLS.iter().zip(COLOURS).enumerate() {
        let lx = LEFT + i as f64 * 150.0;
        push_line!(
            svg,
            "<rect x=\"{lx:.0}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{:.0}\" y=\"35\">{name}</text>",
            lx + 14.0
        );
    }
    let bottom = height - 30.0;
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let tx = scale(tick);
        push_line!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{:.0}\" x2=\"{tx:.1}\" y2=\"{bottom:.0}\" stroke=\"#ddd\"/>\
             <text x=\"{tx:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>",
            TOP - 6.0,
            bottom + 14.0,
            format_tick(tick)
        );
        tick *= 10.0;
    }
    push_line!(
        svg,
        "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">µs per operation (log scale; shorter is faster)</text>",
        LEFT + WIDTH / 2.0,
        bottom + 28.0
    );
    let mut y = TOP;
    for row in rows {
        let block = group(row);
        push_line!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{} {}</text>",
            LEFT - 6.0,
            y + (block - GAP) / 2.0 + 4.0,
            xml_escape(&row.kind),
            xml_escape(&row.op)
        );
        for (value, colour) in row.us.iter().zip(COLOURS) {
            let Some(value) = value else { continue };
            let w = (scale(*value) - LEFT).max(1.0);
            push_line!(
                svg,
                "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\">{}</text>",
                BAR - 1.0,
                LEFT + w + 3.0,
                y + BAR - 1.5,
                format_value(*value)
            );
            y += BAR;
        }
        y += GAP;
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_tick(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Where and how a run happened.
#[derive(Debug, Default)]
pub(crate) struct Context {
    pub(crate) date: String,
    pub(crate) mode: &'static str,
    pub(crate) rounds: u32,
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory: String,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) sqlite: String,
    pub(crate) python: String,
    /// Cores kept busy by other processes during the run, on average (other work on the
    /// machine skews figures, the threaded ones most).
    pub(crate) others_busy: Option<f64>,
}

impl Context {
    fn machine_line(&self) -> String {
        let mut line = format!(
            "{}, {} cores, {} RAM, Linux {}; {}; SQLite {} (bundled)",
            self.cpu, self.cores, self.memory, self.kernel, self.rustc, self.sqlite
        );
        if !self.python.is_empty() {
            line.push_str("; ");
            line.push_str(&self.python);
        }
        if let Some(busy) = self.others_busy {
            line = format!(
                "{line}; other processes kept {busy:.2} of the {} cores busy on average during the run",
                self.cores
            );
        }
        line
    }
}

fn first_line_of(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Civil date (UTC) of a Unix time, `YYYY-MM-DD HH:MM UTC` (Howard Hinnant's algorithm).
pub(crate) fn utc_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60
    )
}

/// The interpreter to run python-diskcache with, and its versions, if it can import it.
fn find_python() -> Result<(String, String), String> {
    let python = std::env::var("DCACHE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = "import diskcache, platform, sqlite3; \
                 print(f'python {platform.python_version()}, python-diskcache {diskcache.__version__}, SQLite {sqlite3.sqlite_version}')";
    match Command::new(&python).args(["-c", probe]).output() {
        Ok(out) if out.status.success() => Ok((
            python,
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )),
        Ok(out) => Err(format!(
            "`{python}` cannot import diskcache: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `{python}`: {e}")),
    }
}

/// Runs a harness, echoing its stdout, and returns its figure lines and `# sqlite` note.
fn run_harness(mut cmd: Command, what: &str) -> Result<(Vec<Figure>, Option<String>), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{what}: no stdout"))?;
    let mut figures = Vec::new();
    let mut sqlite = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{what}: reading its output: {e}"))?;
        println!("{line}");
        if let Some(f) = Figure::parse(&line) {
            figures.push(f);
        } else if let Some(v) = line.strip_prefix("# sqlite ") {
            sqlite = Some(v.trim().to_owned());
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("{what}: waiting for it: {e}"))?;
    if !status.success() {
        return Err(format!("{what} failed ({status})"));
    }
    Ok((figures, sqlite))
}

fn target_dir(root: &Path) -> Result<PathBuf, String> {
    let meta = crate::tidy::metadata(root)?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".to_owned())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

/// CPU time of the whole machine, busy and total, in clock ticks (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal ...
    let idle = ticks.get(3)? + ticks.get(4)?;
    let total: u64 = ticks.iter().take(8).sum();
    Some((total - idle, total))
}

/// CPU time of this process and its waited-for children, in clock ticks (`/proc/self/stat`).
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    Some(fields.iter().sum())
}

/// Cores kept busy by other processes between two samples of ([`machine_ticks`], [`own_ticks`]).
fn others_busy(
    before: Option<((u64, u64), u64)>,
    after: Option<((u64, u64), u64)>,
    cores: usize,
) -> Option<f64> {
    let (((busy0, total0), own0), ((busy1, total1), own1)) = (before?, after?);
    let elapsed = (total1 - total0) as f64 / cores.max(1) as f64;
    let others = (busy1 - busy0).saturating_sub(own1 - own0) as f64;
    (elapsed > 0.0).then(|| others / elapsed)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let ticks_before = machine_ticks().zip(own_ticks());
    let root = crate::tidy::workspace_root();
    let target = target_dir(&root)?;
    let out_dir = target.join("bench");
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("== building the benches crate (release)");
    let built = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "benches",
            "--bin",
            "compare",
            "--bin",
            "handoff",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !built.success() {
        return Err("building the benches crate failed".to_owned());
    }

    // Measured from here: the build is not part of the run.
    let ticks_before = machine_ticks().zip(own_ticks()).or(ticks_before);
    eprintln!("== dcache and the SQLite floors");
    let mut compare = Command::new(target.join("release").join("compare"));
    compare
        .arg("--work")
        .arg(out_dir.join("work-rust"))
        .args(["--rounds", &rounds.to_string()]);
    if args.quick {
        compare.arg("--quick");
    }
    let (mut all, sqlite) = run_harness(compare, "the compare harness")?;
    eprintln!("== Lock hand-off between processes and between threads");
    let mut handoff = Command::new(target.join("release").join("handoff"));
    handoff.args(["--handoffs", if args.quick { "100" } else { "300" }]);
    all.extend(run_harness(handoff, "the hand-off measurement")?.0);

    let mut python_line = String::new();
    match find_python() {
        Ok((python, versions)) => {
            eprintln!("== python-diskcache ({versions})");
            if !versions.contains("python-diskcache 5.6.3") {
                eprintln!("warning: the comparison is meant for python-diskcache 5.6.3");
            }
            let mut cmd = Command::new(&python);
            cmd.arg(root.join("benches/python/bench_diskcache.py"))
                .arg("--work")
                .arg(out_dir.join("work-python"))
                .args(["--rounds", &rounds.to_string()]);
            if args.quick {
                cmd.arg("--quick");
            }
            all.extend(run_harness(cmd, "the python-diskcache script")?.0);
            python_line = versions;
        }
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            return Err(format!(
                "python-diskcache is required in CI: {why} (set DCACHE_PYTHON)"
            ));
        }
        Err(why) => {
            eprintln!(
                "\n!!! python-diskcache NOT measured: {why}.\n!!! Set DCACHE_PYTHON to a python that can `import diskcache` (5.6.3).\n"
            );
        }
    }

    let figures = Figures { all };
    let rows = ratio_rows(&figures);
    let targets = targets(&figures);
    println!("\n{}", text_table(&rows));
    println!("targets:\n{}", target_lines(&targets));

    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let context = Context {
        date: utc_date(unix),
        mode: if args.quick { "quick" } else { "full" },
        rounds,
        cpu: first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into()),
        cores,
        memory: first_line_of("/proc/meminfo", "MemTotal").map_or_else(
            || "? ".into(),
            |kb| {
                let kib: f64 = kb.trim_end_matches("kB").trim().parse().unwrap_or(0.0);
                format!("{:.0} GiB", kib / 1024.0 / 1024.0)
            },
        ),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "?".into(), |s| s.trim().to_owned()),
        rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into()),
        sqlite: sqlite.unwrap_or_else(|| "?".into()),
        python: python_line,
        others_busy: others_busy(ticks_before, machine_ticks().zip(own_ticks()), cores),
    };

    let report = json!({
        "date": context.date,
        "mode": context.mode,
        "rounds": rounds,
        "machine": {
            "cpu": context.cpu,
            "cores": context.cores,
            "memory": context.memory,
            "kernel": context.kernel,
            "rustc": context.rustc,
            "sqlite": context.sqlite,
            "python": context.python,
            "other_processes_busy_cores": context.others_busy,
        },
        "figures": figures.all.iter().map(|f| json!({
            "impl": f.implementation, "kind": f.kind, "op": f.op, "n": f.n, f.metric.clone(): f.value,
        })).collect::<Vec<_>>(),
        "ratios": rows.iter().map(|r| json!({
            "kind": r.kind, "op": r.op,
            "dcache_over_sqlite_floor": r.dcache_over(1),
            "dcache_over_sqlite_format_floor": r.dcache_over(2),
            "python_over_dcache": r.python_over_dcache(),
        })).collect::<Vec<_>>(),
        "targets": targets.iter().map(|t| json!({
            "target": t.name, "measured": t.measured, "bound": t.bound, "met": t.met,
            "sqlite_floor": t.floors[0], "sqlite_format_floor": t.floors[1],
        })).collect::<Vec<_>>(),
    });
    let report_path = out_dir.join("report.json");
    let pretty = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    write(&report_path, &(pretty + "\n"))?;

    let title = format!("dcache benchmarks ({} run, {})", context.mode, context.date);
    let chart = svg_chart(&rows, &title);
    let section = markdown(&rows, &targets, &figures, &context);
    let (chart_path, doc_path) = if args.quick {
        let section_path = out_dir.join("benchmarks.md");
        write(&section_path, &section)?;
        (out_dir.join("benchmarks.svg"), section_path)
    } else {
        let doc_path = root.join("docs/benchmarks.md");
        let doc = std::fs::read_to_string(&doc_path)
            .map_err(|e| format!("{}: {e}", doc_path.display()))?;
        write(&doc_path, &splice(&doc, &section)?)?;
        (root.join("docs/benchmarks.svg"), doc_path)
    };
    write(&chart_path, &chart)?;
    eprintln!(
        "wrote {}, {} and {} ({:.0} s)",
        report_path.display(),
        doc_path.display(),
        chart_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(i: &str, op: &str, us: f64) -> Figure {
        Figure {
            implementation: i.into(),
            kind: "cache".into(),
            op: op.into(),
            n: 1,
            metric: "us_per_op".into(),
            value: us,
        }
    }

    #[test]
    fn figure_lines_parse_and_others_do_not() {
        let f = Figure::parse("impl=dcache kind=cache op=set n=20000 us_per_op=12.500")
            .expect("a figure");
        assert_eq!((f.op.as_str(), f.n, f.value), ("set", 20_000, 12.5));
        let rss = Figure::parse("impl=dcache kind=cache op=get_hit_1m n=9 heap_rss_mib=3.0")
            .expect("an RSS figure");
        assert_eq!(rss.metric, "heap_rss_mib");
        for junk in [
            "# sqlite 3.45.0",
            "impl=dcache kind=cache op=set n=x us_per_op=1",
            "impl=dcache op=set n=1 us_per_op=1",
            "impl=dcache kind=cache op=set n=1 us_per_op=NaN",
            "impl=dcache kind=cache op=set n=1 speed=1",
        ] {
            assert_eq!(Figure::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn targets_are_judged_on_the_same_run() {
        let figures = Figures {
            all: vec![
                fig("dcache", "get_hit", 3.0),
                fig("sqlite-floor", "get_hit", 2.5),
                fig("dcache", "get_miss", 4.0),
                fig("sqlite-floor", "get_miss", 2.0),
                fig("dcache", "get_1t", 3.0),
                fig("dcache", "get_2t", 1.6),
                fig("dcache", "set_1t", 40.0),
                fig("dcache", "mix_2t", 5.0),
                fig("sqlite-format-floor", "get_1t", 3.0),
                fig("sqlite-format-floor", "get_2t", 1.5),
            ],
        };
        let t = targets(&figures);
        let get = |name: &str| t.iter().find(|t| t.name.starts_with(name)).expect(name);
        assert_eq!(get("get_hit:").met, Some(true));
        assert_eq!(get("get_miss:").met, Some(false));
        assert_eq!(get("set:").met, None, "no format floor figure");
        assert_eq!(
            get("get_2t").floors,
            [None, Some(2.0)],
            "the format floor's own speed-up"
        );
        assert!((get("get_2t").measured.expect("measured") - 1.875).abs() < 1e-9);
        assert_eq!(get("get_2t").met, Some(true));
        // Amdahl: 0.1 * 40 + 0.9 * 3 / 2 = 5.35 µs per op; 5.35 / 5.0 = 1.07 ≥ 0.9.
        assert!((get("mix_2t").measured.expect("measured") - 1.07).abs() < 1e-9);
    }

    #[test]
    fn the_table_has_every_op_once_and_python_over_dcache() {
        let figures = Figures {
            all: vec![
                fig("dcache", "set", 10.0),
                fig("python-diskcache", "set", 40.0),
                fig("dcache", "get_hit", 2.0),
                fig("dcache", "set", 99.0),
            ],
        };
        let rows = ratio_rows(&figures);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].python_over_dcache(), Some(4.0));
        assert_eq!(rows[1].python_over_dcache(), None);
        let text = text_table(&rows);
        assert!(text.contains("4.00"), "{text}");
        let svg = svg_chart(&rows, "t <1>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(
            svg.matches("height=\"6.0\"").count(),
            3,
            "one bar per figure"
        );
    }

    #[test]
    fn splice_replaces_only_the_generated_section() {
        let doc = format!("# Title\n\nprose\n\n{BEGIN}\n\nold table\n{END}\n\nmore prose\n");
        let new = splice(&doc, "new table\n").expect("markers present");
        assert_eq!(
            new,
            format!("# Title\n\nprose\n\n{BEGIN}\n\nnew table\n{END}\n\nmore prose\n")
        );
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn other_work_is_what_the_machine_did_beyond_ours() {
        // 2 cores, 1000 ticks each elapsed; the machine was busy 1500, we used 1000.
        let before = Some(((100, 1000), 50));
        let after = Some(((1600, 3000), 1050));
        assert_eq!(others_busy(before, after, 2), Some(0.5));
        assert_eq!(others_busy(None, after, 2), None);
        assert!(machine_ticks().is_some_and(|(busy, total)| busy <= total));
        assert!(own_ticks().is_some());
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn the_docs_have_the_markers() {
        let doc = std::fs::read_to_string(crate::tidy::workspace_root().join("docs/benchmarks.md"))
            .expect("docs/benchmarks.md");
        assert!(splice(&doc, "x").is_ok());
    }
}
