//! The command line: every command, option and help text (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Create, configure, inspect, watch and maintain a dcache or python-diskcache cache directory.
#[derive(Debug, Parser)]
#[command(
    name = "dcache",
    version,
    about = "Create, configure, inspect, watch and maintain a dcache or python-diskcache cache directory",
    after_help = TOP_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,

    /// How long a write waits for the cache's write lock before giving up (90, 500ms, 1m)
    #[arg(long, global = true, value_name = "DURATION", default_value = "60", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// When to draw a progress line on stderr for long operations
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub(crate) progress: When,

    /// How the cache serializes keys and values
    #[arg(long, global = true, value_enum, value_name = "DISK", default_value_t = DiskKind::Python)]
    pub(crate) disk: DiskKind,

    /// Print JSON for scripts instead of text (one object, or one per line for listings)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Show the library's log messages on stderr (-v: warnings and notes, -vv: everything)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// No progress lines
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,
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
    "  dcache init ~/.cache/myapp --size-limit 2GiB --statistics\n",
    "  dcache settings ~/.cache/myapp eviction_policy least-recently-used\n",
    "  dcache stats ~/.cache/myapp --watch\n",
    "  dcache set ~/.cache/myapp greeting hello --expire 1h30m --tag demo\n",
    "  dcache dump ~/.cache/old --json | dcache load ~/.cache/new\n",
    "  dcache check ~/.cache/myapp --fix\n",
    "\n",
    "Commands that only read open the cache read-only; only init and settings change settings.\n",
    "Long operations (check, clear, cull, dump, load, vacuum) show a progress line on stderr\n",
    "when it is a terminal (-q: never). Durations take units (90, 500ms, 1h30m), sizes too\n",
    "(4096, 10MB, 2GiB). --json prints JSON on every command; values are structured (dicts as\n",
    "objects, lists as arrays; bytes, tuples and sets tagged, e.g. {\"$bytes\": \"AAE=\"}).\n",
    "\n",
    "Exit codes:\n",
    "  0  done (for get, delete, touch, add, pull, peek, unlock: the key was there or absent as\n",
    "     needed)\n",
    "  1  a miss (get, delete, touch, pull, peek, unlock), a present key (add), findings\n",
    "     (check), entries that could not be decoded or loaded (keys, dump, load), or a declined\n",
    "     confirmation (clear, unlock)\n",
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
  dcache stats ~/.cache/myapp --watch 2s

Hits and misses are shown when the cache records statistics (the statistics setting; turn it
on with `dcache settings DIR statistics on`).

--watch redraws a screen every INTERVAL (default 1s) on a terminal: entries, volume against
the size limit, hits and misses per second (from the statistics counters, when on), entries
stored and removed (evicted, culled, expired or deleted) per second, expired entries waiting,
and the shards of a FanoutCache side by side. Into a pipe it prints one line per interval
(a JSON object with --json). Ctrl-C stops it.")]
    Stats {
        /// The cache directory
        dir: PathBuf,
        /// Refresh every INTERVAL until Ctrl-C (default 1s)
        #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s", value_parser = parse_duration)]
        watch: Option<Duration>,
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
    },

    /// Print every entry on a line: key, value, expire time and tag
    #[command(after_help = "\
Text lines are tab-separated: KEY, VALUE, EXPIRES (RFC 3339 UTC, or -), TAG (or -).
Strings are printed as they are (control characters escaped), numbers as numbers, bytes as
hex:..., structured values as python's repr; values larger than --max-size are summarized
without being read, e.g. <file 5.0 MiB bytes>.

--json prints one JSON object per entry with every column: key, key_type, value,
value_type, value_size, mode, filename, store_time, expire_time, access_time (Unix
seconds), access_count, tag, tag_type, expired. Values are structured JSON: dicts with
string keys are objects, lists arrays, and bytes, tuples, sets, frozensets, big integers
and non-finite floats are tagged ({\"$bytes\": \"<base64>\"}, {\"$tuple\": [...]}, ...),
so `dcache load` reads them back with their types. With --json every value is read unless
--max-size is given; a value larger than --max-size has \"value\": null and a
\"summary\"; an entry that cannot be decoded has \"key_error\" or \"value_error\".

Examples:
  dcache dump ~/.cache/myapp
  dcache dump ~/.cache/myapp --json | jq 'select(.expired)'
  dcache dump ~/.cache/myapp --json | jq .value.name
  dcache dump ~/.cache/old --json | dcache load ~/.cache/new
  dcache dump ~/.cache/myapp --tag sessions --max-size 0")]
    Dump {
        /// The cache directory
        dir: PathBuf,
        /// Summarize values larger than SIZE instead of reading them (default 4096 for text,
        /// no limit with --json)
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
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
--value-int, --value-float, --value-bytes-hex, --value-json the value; --stdin stores the
bytes read from standard input (streamed into a value file, as python's set(..., read=True)).
--value-json takes structured JSON as `dump --json` prints it ({\"$tuple\": [1, 2]} is a
tuple).

Examples:
  dcache set ~/.cache/myapp greeting hello
  dcache set ~/.cache/myapp session:1 ada --expire 1h30m --tag sessions
  dcache set ~/.cache/myapp --int 42 --value-float 1.5
  dcache set ~/.cache/myapp user:1 --value-json '{\"name\": \"ada\", \"langs\": [\"en\"]}'
  dcache set ~/.cache/myapp thumbnail:42 --stdin < thumb.png")]
    Set(Store),

    /// Store VALUE under KEY only if KEY has no live entry (exit 1 if it has one)
    #[command(after_help = "\
As set, but an existing live entry is kept (python's add).

Examples:
  dcache add ~/.cache/myapp greeting hello
  dcache add ~/.cache/myapp job:7 running --expire 10m")]
    Add(Store),

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
  dcache touch ~/.cache/myapp session:1 --expire 1h
  dcache touch ~/.cache/myapp session:1")]
    Touch {
        /// The cache directory
        dir: PathBuf,
        /// The key
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
        /// Expire DURATION from now (default: never)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
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

    /// Create a cache (or a FanoutCache with --shards) with the given settings
    #[command(after_help = "\
Every python-diskcache setting has an option; the rest keep python's defaults. --disk json
makes a cache for python's JSONDisk. --setting NAME=VALUE stores any other setting (e.g.
disk_compress_level=6). A directory that already holds a cache is refused: change its
settings with `dcache settings`. With --shards, --size-limit is the total across the shards
(python's FanoutCache(size_limit=...) passes its own on every open, 1 GiB unless given).

Examples:
  dcache init ~/.cache/myapp
  dcache init ~/.cache/myapp --size-limit 2GiB --eviction-policy least-recently-used --statistics
  dcache init ~/.cache/shared --shards 8 --disk json")]
    Init {
        /// The directory to create the cache in (created if missing)
        dir: PathBuf,
        /// A FanoutCache of N shards (python's FanoutCache(directory, shards=N))
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=999))]
        shards: Option<u16>,
        #[command(flatten)]
        settings: InitSettings,
    },

    /// Show every setting, one setting, or change one (as python's cache.reset(NAME, VALUE))
    #[command(after_help = "\
Settings are python-diskcache's: statistics, tag_index, eviction_policy, size_limit,
cull_limit, sqlite_auto_vacuum, sqlite_cache_size, sqlite_journal_mode, sqlite_mmap_size,
sqlite_synchronous, disk_min_file_size, disk_pickle_protocol (and disk_compress_level for
JSONDisk). VALUE is checked as python would: booleans take 0/1/true/false/on/off, sizes take
units (2GiB), eviction_policy and sqlite_journal_mode take their names. Processes that have
the cache open see a change when they reopen it (python: cache.reset(NAME)).

On a FanoutCache every shard is changed; size_limit is the total, split evenly across the
shards as init does. python's FanoutCache passes its own size_limit (1 GiB in all unless
given) to its shards each time it opens the directory, so there set size_limit in python.

Examples:
  dcache settings ~/.cache/myapp
  dcache settings ~/.cache/myapp size_limit
  dcache settings ~/.cache/myapp size_limit 4GiB
  dcache settings ~/.cache/myapp statistics on")]
    Settings {
        /// The cache directory
        dir: PathBuf,
        /// The setting to show or change
        name: Option<String>,
        /// Its new value
        #[arg(allow_negative_numbers = true)]
        value: Option<String>,
    },

    /// Push VALUE onto a queue (python's cache.push) and print its key
    #[command(after_help = "\
Without --prefix the queue's keys are integers; with --prefix P they are strings
\"P-500000000000000\", .... Values are typed as for set.

Examples:
  dcache push ~/.cache/myapp hello
  dcache push ~/.cache/myapp --prefix jobs --value-json '{\"id\": 7}'
  dcache push ~/.cache/myapp urgent --prefix jobs --front")]
    Push {
        /// The cache directory
        dir: PathBuf,
        /// The value (omit with --stdin)
        #[arg(allow_negative_numbers = true, required_unless_present = "stdin")]
        value: Option<String>,
        #[command(flatten)]
        value_type: ValueType,
        #[command(flatten)]
        queue: Queue,
        /// Push to the front instead of the back
        #[arg(long)]
        front: bool,
        /// Expire after DURATION
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expire: Option<Duration>,
        /// Tag the entry with T (a string)
        #[arg(long, short = 't', value_name = "T")]
        tag: Option<String>,
    },

    /// Remove the value at the front of a queue and print it (exit 1 if the queue is empty)
    #[command(after_help = "\
Printed as get prints values; --json prints {\"key\": ..., \"value\": ...}.

Examples:
  dcache pull ~/.cache/myapp
  dcache pull ~/.cache/myapp --prefix jobs --json | jq .value.id")]
    Pull {
        /// The cache directory
        dir: PathBuf,
        #[command(flatten)]
        queue: Queue,
        /// Take from the back instead of the front
        #[arg(long)]
        back: bool,
    },

    /// Print the value at the front of a queue without removing it (exit 1 if empty)
    #[command(after_help = "\
Examples:
  dcache peek ~/.cache/myapp
  dcache peek ~/.cache/myapp --prefix jobs --back")]
    Peek {
        /// The cache directory
        dir: PathBuf,
        #[command(flatten)]
        queue: Queue,
        /// Look at the back instead of the front
        #[arg(long)]
        back: bool,
    },

    /// List the lock, rlock and semaphore keys with their holder and expiry
    #[command(after_help = "\
Locks are recognized by what python-diskcache and dcache store under a lock's key: None
(python's Lock), a \"<pid>-<32 hex>-<thread>-<n>\" token (dcache's Lock; earlier versions
wrote \"<pid>-<thread>-<n>\"), an ('<owner>', depth) pair whose owner starts with the pid
(RLock, both). A holder's process is reported alive or gone when it runs on
this machine. Semaphores store only an integer (the free permits), so integer values are
listed with --semaphores.

Examples:
  dcache locks ~/.cache/myapp
  dcache locks ~/.cache/myapp --semaphores --json")]
    Locks {
        /// The cache directory
        dir: PathBuf,
        /// Also list integer values as semaphores
        #[arg(long)]
        semaphores: bool,
    },

    /// Release the lock KEY left by a crashed process (asks first on a terminal)
    #[command(after_help = "\
Removes the lock's key (for a semaphore: all permits are free again). A live holder loses
its lock: dcache's Lock then reports the loss when it releases. Exit 1 if KEY holds no lock.

Examples:
  dcache unlock ~/.cache/myapp report-lock
  dcache unlock ~/.cache/myapp report-lock --yes")]
    Unlock {
        /// The cache directory
        dir: PathBuf,
        /// The lock's key
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        key_type: KeyType,
        /// Do not ask
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Store the entries `dcache dump --json` printed (JSON lines from FILE or stdin)
    #[command(after_help = "\
Each line's key, value, tag and expire_time are stored (types preserved: see dump --help);
expired entries are skipped, and so are lines whose value was summarized (dump with a larger
--max-size). Existing keys are overwritten. The target may be a Cache or a FanoutCache,
python's or dcache's; create it first with `dcache init`.

Examples:
  dcache dump ~/.cache/old --json | dcache load ~/.cache/new
  dcache load ~/.cache/new entries.jsonl")]
    Load {
        /// The cache directory
        dir: PathBuf,
        /// The file of JSON lines (default: standard input)
        file: Option<PathBuf>,
    },

    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "\
Examples:
  dcache completions bash > ~/.local/share/bash-completion/completions/dcache
  dcache completions zsh > ~/.zfunc/_dcache
  dcache completions fish > ~/.config/fish/completions/dcache.fish")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff), generated from the same definitions as --help
    #[command(after_help = "\
`dcache man COMMAND` prints the page dcache-COMMAND(1); --out-dir writes dcache.1 and a
dcache-COMMAND.1 for every command.

Examples:
  dcache man | man -l -
  dcache man stats | man -l -
  dcache man --out-dir ~/.local/share/man/man1")]
    Man {
        /// The command whose page to print (default: the main page)
        #[arg(conflicts_with = "out_dir")]
        command: Option<String>,
        /// Write every page into DIR instead
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

impl Command {
    /// The cache directory the command works on (`None` for completions and man).
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        match self {
            Command::Stats { dir, .. }
            | Command::Keys { dir, .. }
            | Command::Dump { dir, .. }
            | Command::Get { dir, .. }
            | Command::Set(Store { dir, .. })
            | Command::Add(Store { dir, .. })
            | Command::Delete { dir, .. }
            | Command::Touch { dir, .. }
            | Command::Incr { dir, .. }
            | Command::Expire { dir }
            | Command::Evict { dir, .. }
            | Command::Cull { dir }
            | Command::Clear { dir, .. }
            | Command::Check { dir, .. }
            | Command::Vacuum { dir }
            | Command::Init { dir, .. }
            | Command::Settings { dir, .. }
            | Command::Push { dir, .. }
            | Command::Pull { dir, .. }
            | Command::Peek { dir, .. }
            | Command::Locks { dir, .. }
            | Command::Unlock { dir, .. }
            | Command::Load { dir, .. } => Some(dir),
            Command::Completions { .. } | Command::Man { .. } => None,
        }
    }
}

/// What `set` and `add` store.
#[derive(Debug, Args)]
pub(crate) struct Store {
    /// The cache directory
    pub(crate) dir: PathBuf,
    /// The key
    #[arg(allow_negative_numbers = true)]
    pub(crate) key: String,
    /// The value (omit with --stdin)
    #[arg(allow_negative_numbers = true, required_unless_present = "stdin")]
    pub(crate) value: Option<String>,
    #[command(flatten)]
    pub(crate) key_type: KeyType,
    #[command(flatten)]
    pub(crate) value_type: ValueType,
    /// Expire after DURATION (90, 500ms, 1h30m; 0: already expired)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) expire: Option<Duration>,
    /// Tag the entry with T (a string)
    #[arg(long, short = 't', value_name = "T")]
    pub(crate) tag: Option<String>,
}

/// Which queue `push`, `pull` and `peek` work on.
#[derive(Debug, Clone, Args)]
pub(crate) struct Queue {
    /// The queue's prefix (keys "P-500000000000000", ...); without it, integer keys
    #[arg(long, short = 'p', value_name = "P")]
    pub(crate) prefix: Option<String>,
}

/// `init`'s settings: one option per python-diskcache setting.
#[derive(Debug, Clone, Default, Args)]
#[allow(clippy::struct_excessive_bools)] // clap flags
pub(crate) struct InitSettings {
    /// Count hits and misses (`statistics=1`)
    #[arg(long)]
    pub(crate) statistics: bool,
    /// Index tags so evicting by tag is fast (`tag_index=1`)
    #[arg(long)]
    pub(crate) tag_index: bool,
    /// Which entries culling removes first
    #[arg(long, value_name = "POLICY", value_parser = ["none", "least-recently-stored", "least-recently-used", "least-frequently-used"])]
    pub(crate) eviction_policy: Option<String>,
    /// The size the cache aims to stay under (default 1GiB; the total with --shards)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) size_limit: Option<u64>,
    /// Most entries one write culls (default 10; 0: no culling on writes)
    #[arg(long, value_name = "N")]
    pub(crate) cull_limit: Option<u64>,
    /// SQLite `auto_vacuum`: 0 none, 1 full (default), 2 incremental
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=2))]
    pub(crate) sqlite_auto_vacuum: Option<i64>,
    /// SQLite `cache_size` in pages (default 8192)
    #[arg(long, value_name = "PAGES", allow_negative_numbers = true)]
    pub(crate) sqlite_cache_size: Option<i64>,
    /// SQLite `journal_mode` (default wal)
    #[arg(long, value_name = "MODE", value_parser = ["delete", "truncate", "persist", "memory", "wal", "off"])]
    pub(crate) sqlite_journal_mode: Option<String>,
    /// SQLite `mmap_size` (default 64MiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) sqlite_mmap_size: Option<u64>,
    /// SQLite synchronous: 0 off, 1 normal (default), 2 full, 3 extra
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=3))]
    pub(crate) sqlite_synchronous: Option<i64>,
    /// Values at least this large go to files (default 32KiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) disk_min_file_size: Option<u64>,
    /// The pickle protocol values are written with (default 5)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=5))]
    pub(crate) disk_pickle_protocol: Option<u8>,
    /// Any other setting, as NAME=VALUE (repeatable)
    #[arg(long = "setting", value_name = "NAME=VALUE")]
    pub(crate) extra: Vec<String>,
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
    /// The value is structured JSON (as `dump --json` prints values)
    #[arg(long)]
    pub(crate) value_json: bool,
    /// Store the bytes read from standard input
    #[arg(long, conflicts_with = "value")]
    pub(crate) stdin: bool,
}

/// Parses a duration (`90`, `1.5`, `500ms`, `1h30m`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::units::parse_duration(s)
}

/// Parses a size (`4096`, `10MB`, `2GiB`).
fn parse_size(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
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
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    }
}
