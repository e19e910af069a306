//! The command line: every command, option and help text (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Inspect and maintain a dcache or python-diskcache cache directory.
#[derive(Debug, Parser)]
#[command(
    name = "dcache",
    version,
    about = "Inspect and maintain a dcache or python-diskcache cache directory",
    after_help = TOP_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,

    /// Seconds a write waits for the cache's write lock before giving up
    #[arg(long, global = true, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub(crate) timeout: Duration,

    /// When to draw a progress line on stderr for long operations
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub(crate) progress: When,

    /// How the cache serializes keys and values
    #[arg(long, global = true, value_enum, value_name = "DISK", default_value_t = DiskKind::Python)]
    pub(crate) disk: DiskKind,
}

const TOP_HELP: &str = concat!(
    "Every command takes the cache directory first. A directory with a cache.db is a Cache; one\n",
    "with shard directories 000, 001, ... and no cache.db of its own is a FanoutCache. Caches\n",
    "written by python-diskcache 5.6 and by dcache are the same format.\n",
    "\n",
    "Examples:\n",
    "  dcache stats ~/.cache/myapp\n",
    "  dcache keys ~/.cache/myapp --limit 20 --reverse\n",
    "  dcache dump ~/.cache/myapp --json | jq .key\n",
    "  dcache get ~/.cache/myapp thumbnail:42 > thumb.png\n",
    "  dcache set ~/.cache/myapp greeting hello --expire 3600 --tag demo\n",
    "  dcache check ~/.cache/myapp --fix\n",
    "\n",
    "Commands that only read open the cache read-only; no command changes a cache's settings.\n",
    "Long operations (check, clear, cull, dump) show a progress line on stderr when it is a\n",
    "terminal.\n",
    "\n",
    "Exit codes:\n",
    "  0  done (for get, delete, touch: the key was there)\n",
    "  1  a miss (get, delete, touch), findings (check), entries that could not be decoded (keys,\n",
    "     dump), or a declined confirmation (clear)\n",
    "  2  a usage error or an error (the message names the file and what to do)"
);

/// When to draw progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum When {
    /// When stderr is a terminal
    Auto,
    /// Also into a pipe or a file
    Always,
    /// Never
    Never,
}

/// The disk (serialization) of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiskKind {
    /// python-diskcache's Disk, the default (pickles; also reads dcache's MessagePack values)
    Python,
    /// python-diskcache's JSONDisk (zlib-compressed JSON)
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Entries, expired entries, volume, size limit, eviction policy, statistics, shards and
    /// every setting
    #[command(after_help = "\
Examples:
  dcache stats ~/.cache/myapp
  dcache stats ~/.cache/myapp --json | jq .volume

Hits and misses are shown when the cache records statistics (the statistics setting).")]
    Stats {
        /// The cache directory
        dir: PathBuf,
        /// One JSON object instead of text
        #[arg(long)]
        json: bool,
    },

    /// List keys, oldest first (expired entries included, as python's iter(cache))
    #[command(after_help = "\
Keys are printed as text: strings as they are (control characters escaped), numbers as
numbers, bytes as hex:..., other keys (tuples, ...) as python's repr. Use --json to tell
the string \"1\" from the number 1.

Examples:
  dcache keys ~/.cache/myapp
  dcache keys ~/.cache/myapp --reverse --limit 10
  dcache keys ~/.cache/myapp --tag sessions --json")]
    Keys {
        /// The cache directory
        dir: PathBuf,
        /// Print at most N keys
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<u64>,
        /// Newest first
        #[arg(long, short = 'r')]
        reverse: bool,
        /// Only entries tagged T (a string tag)
        #[arg(long, short = 't', value_name = "T")]
        tag: Option<String>,
        /// One JSON object per line, with the key and its python type
        #[arg(long)]
        json: bool,
    },

    /// Print every entry on a line: key, value, expire time and tag
    #[command(after_help = "\
Text lines are tab-separated: KEY, VALUE, EXPIRES (RFC 3339 UTC, or -), TAG (or -).
Strings are printed as they are (control characters escaped), numbers as numbers, bytes as
hex:..., structured values as python's repr; values larger than --max-size are summarized
without being read, e.g. <file 5.0 MiB bytes>.

--json prints one JSON object per entry with every column: key, key_type, value,
value_type, value_size, mode, filename, store_time, expire_time, access_time (Unix
seconds), access_count, tag, tag_type, expired. Bytes are base64; tuples, lists, dicts and
sets are their python repr (ast.literal_eval reads them back); a value larger than
--max-size has \"value\": null and a \"summary\"; an entry that cannot be decoded has
\"key_error\" or \"value_error\".

Examples:
  dcache dump ~/.cache/myapp
  dcache dump ~/.cache/myapp --json | jq 'select(.expired)'
  dcache dump ~/.cache/myapp --tag sessions --max-size 0")]
    Dump {
        /// The cache directory
        dir: PathBuf,
        /// JSON lines for scripts
        #[arg(long)]
        json: bool,
        /// Summarize values larger than this many bytes instead of reading them
        #[arg(long, value_name = "BYTES", default_value_t = 4096)]
        max_size: u64,
        /// Print at most N entries
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<u64>,
        /// Newest first
        #[arg(long, short = 'r')]
        reverse: bool,
        /// Only entries tagged T (a string tag)
        #[arg(long, short = 't', value_name = "T")]
        tag: Option<String>,
    },

    /// Print the value of KEY (exit 1 if it has no live entry)
    #[command(after_help = "\
A bytes value is written raw, so it pipes (on a terminal it is shown as python's repr, and
a large one is refused); text is written as it is; other values as python's repr. Text and
repr end with a newline unless -n. Reading never records a hit or an access.

Examples:
  dcache get ~/.cache/myapp greeting
  dcache get ~/.cache/myapp --int 42
  dcache get ~/.cache/myapp thumbnail:42 > thumb.png")]
    Get {
        /// The cache directory
        dir: PathBuf,
        /// The key (a string unless --int, --float or --bytes-hex)
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
        /// No newline after text and repr output
        #[arg(long, short = 'n')]
        no_newline: bool,
    },

    /// Store VALUE under KEY
    #[command(after_help = "\
KEY and VALUE are strings unless typed: --int, --float, --bytes-hex type the key;
--value-int, --value-float, --value-bytes-hex the value; --stdin stores the bytes read
from standard input (streamed into a value file, as python's set(..., read=True)).

Examples:
  dcache set ~/.cache/myapp greeting hello
  dcache set ~/.cache/myapp session:1 ada --expire 3600 --tag sessions
  dcache set ~/.cache/myapp --int 42 --value-float 1.5
  dcache set ~/.cache/myapp thumbnail:42 --stdin < thumb.png")]
    Set {
        /// The cache directory
        dir: PathBuf,
        /// The key
        #[arg(allow_negative_numbers = true)]
        key: String,
        /// The value (omit with --stdin)
        #[arg(allow_negative_numbers = true, required_unless_present = "stdin")]
        value: Option<String>,
        #[command(flatten)]
        key_type: KeyType,
        #[command(flatten)]
        value_type: ValueType,
        /// Expire after SECS seconds (0: already expired)
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        expire: Option<Duration>,
        /// Tag the entry with T (a string)
        #[arg(long, short = 't', value_name = "T")]
        tag: Option<String>,
    },

    /// Remove the live entry of KEY (exit 1 if there is none)
    #[command(after_help = "\
Examples:
  dcache delete ~/.cache/myapp greeting
  dcache delete ~/.cache/myapp --int 42")]
    Delete {
        /// The cache directory
        dir: PathBuf,
        /// The key
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
    },

    /// Set the expiry of KEY's live entry (exit 1 if there is none)
    #[command(after_help = "\
Without --expire the entry never expires.

Examples:
  dcache touch ~/.cache/myapp session:1 --expire 3600
  dcache touch ~/.cache/myapp session:1")]
    Touch {
        /// The cache directory
        dir: PathBuf,
        /// The key
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
        /// Expire SECS seconds from now (default: never)
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        expire: Option<Duration>,
    },

    /// Add to the integer under KEY (a missing key starts at 0) and print the result
    #[command(after_help = "\
Examples:
  dcache incr ~/.cache/myapp visits
  dcache incr ~/.cache/myapp visits --delta -5")]
    Incr {
        /// The cache directory
        dir: PathBuf,
        /// The key
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
        /// The amount to add (negative to subtract)
        #[arg(
            long,
            short = 'd',
            value_name = "N",
            default_value_t = 1,
            allow_negative_numbers = true
        )]
        delta: i64,
    },

    /// Remove expired entries
    #[command(after_help = "\
Examples:
  dcache expire ~/.cache/myapp")]
    Expire {
        /// The cache directory
        dir: PathBuf,
    },

    /// Remove every entry tagged TAG
    #[command(after_help = "\
TAG is a string unless --int, --float or --bytes-hex says otherwise.

Examples:
  dcache evict ~/.cache/myapp sessions
  dcache evict ~/.cache/myapp --int 7")]
    Evict {
        /// The cache directory
        dir: PathBuf,
        /// The tag
        #[arg(allow_negative_numbers = true)]
        tag: String,
        #[command(flatten)]
        tag_type: KeyType,
    },

    /// Remove expired entries, then entries by the eviction policy until the volume is
    /// within the size limit
    #[command(after_help = "\
Examples:
  dcache cull ~/.cache/myapp")]
    Cull {
        /// The cache directory
        dir: PathBuf,
    },

    /// Remove every entry (asks first on a terminal; needs --yes otherwise)
    #[command(after_help = "\
Examples:
  dcache clear ~/.cache/myapp
  dcache clear ~/.cache/myapp --yes")]
    Clear {
        /// The cache directory
        dir: PathBuf,
        /// Do not ask
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Check the database and value files against each other (exit 1 on findings)
    #[command(after_help = "\
Reports integrity problems, missing value files and files of the wrong size, unknown
files, empty directories, and counters that disagree with the rows. --fix repairs them
(VACUUM, rows without files removed, sizes and counters corrected, unknown files older
than 60 s and empty directories removed), checks again and exits 0 when nothing is left.

Examples:
  dcache check ~/.cache/myapp
  dcache check ~/.cache/myapp --fix")]
    Check {
        /// The cache directory
        dir: PathBuf,
        /// Repair what is found
        #[arg(long)]
        fix: bool,
    },

    /// Compact the database (SQLite VACUUM) and truncate its write-ahead log
    #[command(after_help = "\
Needs free disk space of about twice the database's size; value files are not touched.
Readers go on meanwhile; writers wait.

Examples:
  dcache vacuum ~/.cache/myapp")]
    Vacuum {
        /// The cache directory
        dir: PathBuf,
    },
}

impl Command {
    /// The cache directory the command works on.
    pub(crate) fn dir(&self) -> &std::path::Path {
        match self {
            Command::Stats { dir, .. }
            | Command::Keys { dir, .. }
            | Command::Dump { dir, .. }
            | Command::Get { dir, .. }
            | Command::Set { dir, .. }
            | Command::Delete { dir, .. }
            | Command::Touch { dir, .. }
            | Command::Incr { dir, .. }
            | Command::Expire { dir }
            | Command::Evict { dir, .. }
            | Command::Cull { dir }
            | Command::Clear { dir, .. }
            | Command::Check { dir, .. }
            | Command::Vacuum { dir } => dir,
        }
    }
}

/// The type of a key (or of evict's tag): a string unless one of these is given.
#[derive(Debug, Clone, Copy, Default, Args)]
#[group(multiple = false)]
pub(crate) struct KeyType {
    /// The key is an integer
    #[arg(long)]
    pub(crate) int: bool,
    /// The key is a float
    #[arg(long)]
    pub(crate) float: bool,
    /// The key is bytes, given in hex
    #[arg(long)]
    pub(crate) bytes_hex: bool,
}

/// The type of `set`'s value: a string unless one of these is given.
#[derive(Debug, Clone, Copy, Default, Args)]
#[group(multiple = false)]
#[allow(clippy::struct_excessive_bools)] // clap flags, at most one of them set
pub(crate) struct ValueType {
    /// The value is an integer
    #[arg(long)]
    pub(crate) value_int: bool,
    /// The value is a float
    #[arg(long)]
    pub(crate) value_float: bool,
    /// The value is bytes, given in hex
    #[arg(long)]
    pub(crate) value_bytes_hex: bool,
    /// Store the bytes read from standard input
    #[arg(long, conflicts_with = "value")]
    pub(crate) stdin: bool,
}

/// Parses a non-negative number of seconds.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{s:?}: seconds must be a non-negative finite number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("inf").is_err());
    }
}
