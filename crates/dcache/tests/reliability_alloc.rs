//! Decoders never allocate far more than their input: a counting global allocator (this test
//! binary only) measures the peak memory each decode of random and adversarial input holds
//! — huge declared lengths, memo bombs, deep nesting, many tiny objects, zlib bombs — and
//! asserts a bound linear in the input:
//!
//! - pickle and MessagePack: peak ≤ 64 × input + 64 KiB, and no single allocation larger
//!   than 48 × input + 64 KiB (a declared length is never trusted: lengths are checked against
//!   the bytes that follow, capacities are capped);
//! - JSON+zlib (`JsonDisk`): the JSON text is what zlib inflates, at most ~1032 bytes per
//!   compressed byte (deflate's limit, inherent to the format python writes); decoding it
//!   then holds at most 48 × the JSON text + 64 KiB, so ≤ ~50,000 × the stored bytes.
//!
//! The pickle memo bombs are refused by the decoder's copy budget; deep nesting by depth
//! limits (256 for pickle, 1024 for MessagePack, 128 for JSON). `DCACHE_ALLOC_CASES` sets the
//! number of random inputs per decoder (default 2,000; `cargo xtask soak` runs 50,000).
#![allow(unsafe_code)] // the counting allocator, and nothing else

mod reliability;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use dcache::disk::{DiskFormat, FileStore, Mode, SqlRef, StoredRef, Value, pickle};
use dcache::{JsonDisk, MsgpackDisk};
use reliability::{Rng, env_count, figure};

// ----- the counting allocator -----

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn grew(size: usize) {
    // `try_with`: never fails for these const, destructor-free cells, but an allocator must
    // not panic.
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    });
}

fn shrank(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only thread-local cells and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`, and the caller's contract for `realloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if old and new blocks coexisted for a moment (they may).
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Memory a call held at its peak beyond what was live before it, and its largest single
/// allocation (what it returns counts: it was allocated by the call).
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    peak: usize,
    largest: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    LARGEST.with(|l| l.set(0));
    let out = f();
    let usage = Usage {
        peak: PEAK.with(Cell::get) - base,
        largest: LARGEST.with(Cell::get),
    };
    (out, usage)
}

// ----- the decoders -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Pickle,
    Msgpack,
    JsonZlib,
}

fn no_files() -> FileStore {
    FileStore::new("/nonexistent-dcache-test-directory")
}

/// Decodes `input` the way a cache reads a stored value; returns the usage and whether it
/// decoded.
fn decode(decoder: Decoder, input: &[u8]) -> (bool, Usage) {
    let files = no_files();
    let stored = |mode| StoredRef {
        size: 0,
        mode,
        filename: None,
        value: SqlRef::Blob(input),
    };
    let (ok, usage) = measure(|| match decoder {
        Decoder::Pickle => {
            let value = pickle::value_from_slice(input);
            let ok = value.is_ok();
            drop(value);
            // The path a pickled key takes, and a typed read.
            drop(dcache::Disk::default().get_value(SqlRef::Blob(input), false));
            drop(pickle::from_slice::<Vec<(String, i64)>>(input));
            ok
        }
        Decoder::Msgpack => {
            let disk = MsgpackDisk::default();
            let value = disk.fetch_value(stored(Mode::MSGPACK), &files);
            let ok = value.is_ok();
            drop(value);
            drop(disk.fetch::<Vec<(String, i64)>>(stored(Mode::MSGPACK), &files));
            ok
        }
        Decoder::JsonZlib => {
            let disk = JsonDisk::default();
            let value = disk.fetch_value(stored(Mode::RAW), &files);
            let ok = value.is_ok();
            drop(value);
            drop(disk.get_value(SqlRef::Blob(input), true));
            ok
        }
    });
    (ok, usage)
}

/// How many bytes zlib inflates `input` to (0 if it is not a zlib stream).
fn inflated_len(input: &[u8]) -> usize {
    let mut out = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(input), &mut out) {
        Ok(n) => n,
        Err(_) => out.len(),
    }
}

/// Memory any decode may hold whatever its input: serde preallocates up to 1 MiB for a
/// sequence whose length the input declares (its `size_hint::cautious`), zlib keeps a 32 KiB
/// window and flate2 a 32 KiB buffer.
const SLACK: usize = (1 << 20) + (128 << 10);

/// Bytes of memory per input byte. A pickle may expand to 16 decoded objects per input byte
/// (its decoder's copy budget for memoized objects, which python writes for shared
/// references), each a 32-byte `Value`, plus the growth of the vectors holding them.
const PICKLE_FACTOR: usize = 1024;
/// ... or, when that is more, to the decoder's floor of 8 Mi units (an object, or 32 bytes of
/// a string's payload, each; about 256 MiB), so that ordinary shared values python reads (a
/// list of one 100 KB string a thousand times) are read too; 1/8 more for allocator rounding.
const PICKLE_FLOOR: usize = (256 << 20) + (32 << 20);
/// One byte of MessagePack can be one `Value` (32 bytes); a growing vector briefly holds its
/// old and new buffers (up to 3 × the final size).
const MSGPACK_FACTOR: usize = 128;
/// Per byte of inflated JSON text: the text itself, plus the values parsed from it (a 2-byte
/// `0,` is a 32-byte `Value`), plus vector growth.
const JSON_FACTOR: usize = 64;

/// Checks the bound for one input; returns (peak / input) for the report.
fn check(decoder: Decoder, what: &str, input: &[u8], stats: &mut Stats) {
    let (ok, usage) = decode(decoder, input);
    let n = input.len();
    let basis = match decoder {
        Decoder::JsonZlib => inflated_len(input).max(n),
        _ => n,
    };
    let (peak_factor, largest_factor) = match decoder {
        Decoder::Pickle => (PICKLE_FACTOR, PICKLE_FACTOR),
        Decoder::Msgpack => (MSGPACK_FACTOR, MSGPACK_FACTOR),
        Decoder::JsonZlib => (JSON_FACTOR, JSON_FACTOR),
    };
    let floor = match decoder {
        Decoder::Pickle => PICKLE_FLOOR,
        Decoder::Msgpack | Decoder::JsonZlib => 0,
    };
    assert!(
        usage.peak <= (peak_factor * basis).max(floor) + SLACK,
        "{decoder:?} {what}: {} bytes of input (basis {basis}) held {} bytes at the peak",
        n,
        usage.peak
    );
    assert!(
        usage.largest <= (largest_factor * basis).max(floor) + SLACK,
        "{decoder:?} {what}: {} bytes of input made a {}-byte allocation",
        n,
        usage.largest
    );
    stats.record(what, n, basis, usage, ok);
}

#[derive(Debug, Default)]
struct Stats {
    inputs: u64,
    decoded: u64,
    bytes: u64,
    /// Worst peak per input byte where the peak is well above [`SLACK`] (where the linear
    /// part of the bound is what matters).
    worst_ratio: f64,
    worst_what: String,
    /// Worst peak per inflated byte (JSON), same condition.
    worst_basis_ratio: f64,
    /// The largest peak of any input under 4 KiB (the constant part of the bound).
    small_peak: usize,
}

impl Stats {
    fn record(&mut self, what: &str, n: usize, basis: usize, usage: Usage, ok: bool) {
        self.inputs += 1;
        self.decoded += u64::from(ok);
        self.bytes += n as u64;
        if n < 4096 {
            self.small_peak = self.small_peak.max(usage.peak);
        }
        if usage.peak > 2 * SLACK {
            let ratio = usage.peak as f64 / n as f64;
            if ratio > self.worst_ratio {
                self.worst_ratio = ratio;
                what.clone_into(&mut self.worst_what);
            }
            let basis_ratio = usage.peak as f64 / basis as f64;
            self.worst_basis_ratio = self.worst_basis_ratio.max(basis_ratio);
        }
    }

    fn report(&self, decoder: Decoder) {
        let suite = format!("alloc-{decoder:?}").to_lowercase();
        figure(&suite, "inputs", self.inputs);
        figure(&suite, "decoded_ok", self.decoded);
        figure(&suite, "input_bytes", self.bytes);
        figure(
            &suite,
            "worst_peak_per_input_byte",
            format!("{:.1} ({})", self.worst_ratio, self.worst_what),
        );
        if decoder == Decoder::JsonZlib {
            figure(
                &suite,
                "worst_peak_per_inflated_byte",
                format!("{:.1}", self.worst_basis_ratio),
            );
        }
        figure(&suite, "largest_peak_under_4_KiB_of_input", self.small_peak);
    }
}

// ----- inputs -----

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::None,
        1 => Value::Int(rng.next_u64() as i64 >> rng.below(64)),
        2 => Value::Str("é".repeat(rng.below(20) as usize)),
        3 => Value::Bytes(reliability::payload(rng.below(64) as usize, rng.next_u64())),
        4 => Value::Bool(rng.chance(1, 2)),
        5 => Value::List(
            (0..rng.below(6))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 => Value::Tuple(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Dict(
            (0..rng.below(4))
                .map(|i| (Value::Int(i as i64), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// A valid encoding of a random value.
fn valid(decoder: Decoder, rng: &mut Rng) -> Vec<u8> {
    let value = random_value(rng, 0);
    match decoder {
        Decoder::Pickle => {
            pickle::value_to_vec(&value, rng.range(2, 6) as u8).expect("pickling a Value")
        }
        Decoder::Msgpack => rmp_encode(&value),
        Decoder::JsonZlib => zlib(&json_of(&value)),
    }
}

fn rmp_encode(value: &Value) -> Vec<u8> {
    // In a list, so that the disk stores it as MessagePack (a lone number or string would be
    // stored raw); small values are stored inline, so no file is written.
    let stored = MsgpackDisk::default()
        .store(&Value::List(vec![value.clone()]), &no_files())
        .expect("MessagePack encoding");
    match stored.value {
        dcache::disk::SqlValue::Blob(b) => b,
        other => panic!("small values are stored inline: {other:?}"),
    }
}

/// JSON text for a value (bytes as arrays of numbers, tuples as arrays), as python would
/// write it for the equivalent data.
fn json_of(value: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::None => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Str(s) => out.push_str(&serde_json::to_string(s).expect("a string")),
            Value::Bytes(b) => {
                let items: Vec<String> = b.iter().map(u8::to_string).collect();
                out.push('[');
                out.push_str(&items.join(", "));
                out.push(']');
            }
            Value::List(items) | Value::Tuple(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Dict(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push('"');
                    write(k, out);
                    out.push_str("\": ");
                    write(v, out);
                }
                out.push('}');
            }
            other => {
                out.push('"');
                out.push_str(other.type_name());
                out.push('"');
            }
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out.into_bytes()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(bytes).expect("compressing to memory");
    z.finish().expect("compressing to memory")
}

/// Flips, inserts, deletes or duplicates bytes of `input`.
fn mutate(rng: &mut Rng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.range(1, 6) {
        let len = input.len().max(1);
        let at = rng.below(len as u64) as usize;
        match rng.below(5) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 => input.insert(at.min(input.len()), rng.next_u64() as u8),
            2 if !input.is_empty() => {
                input.remove(at.min(input.len() - 1));
            }
            3 => {
                let end = (at + rng.below(16) as usize).min(input.len());
                let chunk = input[at.min(end)..end].to_vec();
                input.splice(at.min(input.len())..at.min(input.len()), chunk);
            }
            _ => input.truncate(at),
        }
    }
    input
}

/// Random sequences of the format's structural bytes (opcodes, markers, brackets), each
/// followed by a length field that is small or huge at random.
fn tokens(decoder: Decoder, rng: &mut Rng) -> Vec<u8> {
    const PICKLE: &[u8] = b"()]}lte.NIJKLMGFSVXBCTUhjqrgpa2u0sdb\x80\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x94\x95\x96";
    const MSGPACK: &[u8] = &[
        0x90, 0x91, 0x9f, 0x80, 0x81, 0x8f, 0xa1, 0xbf, 0xc0, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xd0, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0x00, 0x7f, 0xe0, 0xff,
    ];
    const JSON: &[u8] = b"[]{},:0123456789\"a -.eE";
    let alphabet = match decoder {
        Decoder::Pickle => PICKLE,
        Decoder::Msgpack => MSGPACK,
        Decoder::JsonZlib => JSON,
    };
    let mut out = match decoder {
        Decoder::Pickle => vec![0x80, rng.range(0, 6) as u8],
        _ => Vec::new(),
    };
    for _ in 0..rng.below(600) {
        out.push(alphabet[rng.below(alphabet.len() as u64) as usize]);
        if decoder != Decoder::JsonZlib && rng.chance(1, 3) {
            let field = if rng.chance(1, 2) {
                rng.below(8)
            } else {
                u64::MAX >> rng.below(48)
            };
            out.extend_from_slice(&field.to_le_bytes()[..[1, 2, 4, 8][rng.below(4) as usize]]);
        }
    }
    match decoder {
        Decoder::JsonZlib => zlib(&out),
        _ => out,
    }
}

/// Inputs built to make a careless decoder allocate: declared lengths, memo bombs, nesting,
/// floods of tiny objects.
fn adversarial(decoder: Decoder) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, bytes: Vec<u8>| out.push((what.to_owned(), bytes));
    match decoder {
        Decoder::Pickle => {
            let p4 = |body: &[u8]| [&[0x80, 4][..], body].concat();
            for (op, name, width) in [
                (0x8e_u8, "BINBYTES8", 8),
                (0x8d, "BINUNICODE8", 8),
                (0x96, "BYTEARRAY8", 8),
                (b'B', "BINBYTES", 4),
                (b'X', "BINUNICODE", 4),
                (b'T', "BINSTRING", 4),
                (0x8b, "LONG4", 4),
                (0x95, "FRAME", 8),
            ] {
                for len in [u64::MAX, 1 << 40, u64::from(u32::MAX), 1 << 20] {
                    let mut body = vec![op];
                    body.extend_from_slice(&len.to_le_bytes()[..width]);
                    body.extend_from_slice(b"abc.");
                    add(&format!("{name} declaring {len} bytes"), p4(&body));
                }
            }
            // Memo bombs: each level is a list of `refs` references to the level below, so
            // the value would hold refs^levels copies.
            for (levels, refs) in [(2, 200), (3, 200), (8, 200), (2, 20_000), (3, 20_000)] {
                let mut body = vec![b'X', 1, 0, 0, 0, b'a', 0x94];
                for level in 1..=levels {
                    body.extend_from_slice(&[b']', 0x94, b'(']);
                    for _ in 0..refs {
                        body.extend_from_slice(&[b'h', level - 1]);
                    }
                    body.push(b'e');
                }
                body.push(b'.');
                add(
                    &format!("memo bomb of {levels} levels of {refs}"),
                    p4(&body),
                );
            }
            // A list that contains itself.
            add(
                "self-containing list",
                p4(&[b']', 0x94, b'h', 0, b'a', b'.']),
            );
            // Deep nesting.
            let depth = 200_000;
            let mut body = vec![b']'; depth];
            body.extend(std::iter::repeat_n(b'a', depth - 1));
            body.push(b'.');
            add("200,000 nested lists", p4(&body));
            add(
                "1,000,000 MARKs",
                p4(&[vec![b'('; 1_000_000], vec![b'.']].concat()),
            );
            add(
                "1,000,000 NONEs",
                p4(&[vec![b'N'; 1_000_000], vec![b'.']].concat()),
            );
            add(
                "1,000,000 DUPs",
                p4(&[vec![b'N'], vec![b'2'; 1_000_000], vec![b'.']].concat()),
            );
            add(
                "a list of 500,000 NONEs",
                p4(&[vec![b']', b'('], vec![b'N'; 500_000], vec![b'e', b'.']].concat()),
            );
            add(
                "a dict of 300,000 pairs",
                p4(&[vec![b'}', b'('], b"NN".repeat(300_000), vec![b'u', b'.']].concat()),
            );
            add(
                "a 4,300-digit LONG",
                [b"L".to_vec(), vec![b'7'; 4300], b"L\n.".to_vec()].concat(),
            );
            add(
                "a 1 MB LONG4",
                p4(&[
                    vec![0x8b],
                    (1u32 << 20).to_le_bytes().to_vec(),
                    vec![0xff; 1 << 20],
                    vec![b'.'],
                ]
                .concat()),
            );
            add(
                "100,000 memo PUTs at huge indexes",
                p4(&[
                    vec![b'N'],
                    (0..100_000u32)
                        .flat_map(|i| [&[b'r'][..], &(u32::MAX - i).to_le_bytes()[..]].concat())
                        .collect(),
                    vec![b'.'],
                ]
                .concat()),
            );
            add(
                "a 1 MB UNICODE of \\u escapes",
                [b"V".to_vec(), b"\\u1234".repeat(170_000), b"\n.".to_vec()].concat(),
            );
        }
        Decoder::Msgpack => {
            for (marker, name, width) in [
                (0xc6_u8, "bin32", 4),
                (0xdb, "str32", 4),
                (0xdd, "array32", 4),
                (0xdf, "map32", 4),
                (0xc9, "ext32", 4),
                (0xc5, "bin16", 2),
                (0xdc, "array16", 2),
            ] {
                let len = u32::MAX.to_be_bytes();
                let mut body = vec![marker];
                body.extend_from_slice(&len[4 - width..]);
                body.extend_from_slice(&[1, 2, 3]);
                add(&format!("{name} declaring the most it can"), body);
            }
            // Nested containers each declaring the most they can hold: a decoder that
            // preallocates from declared lengths does so at every level.
            add(
                "255 nested array32s declaring 2^32-1 items",
                [0xdd, 0xff, 0xff, 0xff, 0xff].repeat(255),
            );
            add(
                "255 nested map32s declaring 2^32-1 pairs",
                [0xdf, 0xff, 0xff, 0xff, 0xff, 0x00].repeat(255),
            );
            add("100,000 nested arrays", vec![0x91; 100_000]);
            add("100,000 nested maps", [0x81, 0x00].repeat(100_000));
            let n = 1_000_000u32;
            add(
                "an array of 1,000,000 fixints",
                [vec![0xdd], n.to_be_bytes().to_vec(), vec![0x01; n as usize]].concat(),
            );
            add(
                "a map of 500,000 nil pairs",
                [
                    vec![0xdf],
                    (n / 2).to_be_bytes().to_vec(),
                    vec![0xc0; n as usize],
                ]
                .concat(),
            );
            add(
                "an array of 300,000 empty arrays",
                [
                    vec![0xdd],
                    300_000u32.to_be_bytes().to_vec(),
                    vec![0x90; 300_000],
                ]
                .concat(),
            );
        }
        Decoder::JsonZlib => {
            let n = 2_000_000;
            add(
                "zlib bomb: [0,0,0,...]",
                zlib(&[b"[".to_vec(), b"0,".repeat(n), b"0]".to_vec()].concat()),
            );
            add(
                "zlib bomb: [[],[],...]",
                zlib(&[b"[".to_vec(), b"[],".repeat(n), b"[]]".to_vec()].concat()),
            );
            add(
                "zlib bomb: {\"a\":0,...}",
                zlib(&[b"{".to_vec(), b"\"a\":0,".repeat(n), b"\"b\":0}".to_vec()].concat()),
            );
            add(
                "zlib bomb: a 20 MB string",
                zlib(&[b"\"".to_vec(), vec![b'a'; 20_000_000], b"\"".to_vec()].concat()),
            );
            add("zlib bomb: 20 MB of spaces", zlib(&vec![b' '; 20_000_000]));
            add("100,000 nested arrays", zlib(&b"[".repeat(100_000)));
            add(
                "a truncated zlib stream",
                zlib(&b"[1,2,3]".repeat(1000))[..40].to_vec(),
            );
            let mut bad_sum = zlib(&b"[1,2,3]".repeat(1000));
            let last = bad_sum.len() - 1;
            bad_sum[last] ^= 0xff;
            add("a bad zlib checksum", bad_sum);
        }
    }
    out
}

fn run(decoder: Decoder) {
    let cases = env_count("DCACHE_ALLOC_CASES", 2000);
    let mut rng = Rng::new(Rng::seed_from_env("DCACHE_ALLOC_SEED"));
    let mut stats = Stats::default();
    for (what, input) in adversarial(decoder) {
        check(decoder, &what, &input, &mut stats);
    }
    for i in 0..cases {
        let input = match i % 4 {
            0 => {
                let len = rng.below(4096) as usize;
                reliability::payload(len, rng.next_u64())
            }
            1 => valid(decoder, &mut rng),
            2 => {
                let v = valid(decoder, &mut rng);
                mutate(&mut rng, v)
            }
            _ => tokens(decoder, &mut rng),
        };
        let what = [
            "random bytes",
            "a valid encoding",
            "a mutated encoding",
            "random tokens",
        ][(i % 4) as usize];
        check(decoder, what, &input, &mut stats);
    }
    stats.report(decoder);
    figure("alloc", "size_of_value", size_of::<Value>());
}

#[test]
fn pickle_decoding_allocates_in_proportion_to_the_input() {
    run(Decoder::Pickle);
}

#[test]
fn msgpack_decoding_allocates_in_proportion_to_the_input() {
    run(Decoder::Msgpack);
}

#[test]
fn json_zlib_decoding_allocates_in_proportion_to_the_inflated_input() {
    run(Decoder::JsonZlib);
}
