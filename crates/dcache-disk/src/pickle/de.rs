//! The decoder: pickle bytes (protocols 0 to 5) → [`Value`].
//!
//! A stack machine like CPython's unpickler, restricted to builtin types and hardened for
//! untrusted input:
//!
//! * objects live in an arena and the stack and memo hold indices, so memo references see
//!   later mutations exactly as in Python (`x = []; PUT; APPEND ...; GET`), in time and memory
//!   linear in the input;
//! * the result is built from the arena at the end, copying shared objects; the copies are
//!   charged to a budget proportional to the input length, so a few bytes of memo references
//!   cannot expand into a huge value, and a self-containing object is reported as an error;
//! * nesting deeper than [`MAX_DEPTH`] containers is an error, so neither building nor
//!   dropping nor deserializing the result can overflow the stack;
//! * every length is checked against the remaining input before anything is allocated;
//! * no global is ever imported or called: a whitelist of builtins is interpreted.

use std::collections::HashMap;
use std::fmt;

use super::{MAX_DEPTH, op};
use crate::error::{Error, Format, Result};
use crate::value::{BigInt, Value};

/// The smallest size budget of a decoded value, in units of one object or 32 bytes of payload
/// (8 Mi units: about 256 MiB). Python shares an object pickled once and referenced many times
/// (its memo); a [`Value`] tree holds a copy per reference, so an ordinary value (a list
/// holding one 100 KB string a thousand times) can be far larger than its pickle. Values up to
/// this size, or 16 objects per input byte if that is more, are built; larger ones are refused
/// before anything is built.
pub(crate) const MIN_BUILD_BUDGET: usize = (256 << 20) / 32;

/// Decodes a pickle into a [`Value`].
pub(super) fn decode(input: &[u8]) -> Result<Value> {
    let mut machine = Machine::new(input);
    let root = machine.run()?;
    let budget = input
        .len()
        .saturating_mul(16)
        .saturating_add(1024)
        .max(MIN_BUILD_BUDGET);
    // Measure first, build after: a memo bomb is refused in time linear in the arena,
    // before a byte of the expansion is allocated.
    expanded_cost(&machine.nodes, root, budget)?;
    let mut builder = Builder {
        nodes: machine.nodes,
        budget,
    };
    builder.build(root, 0, false)
}

/// The error for a value past the size budget.
fn too_large_error() -> Error {
    decode_error(
        "the pickle expands into a value far larger than itself (memo references copy the same \
         object many times: more than 256 MiB and 16 objects per input byte once copied); \
         refusing to build it",
    )
}

/// The error for a container that contains itself.
fn recursive_error() -> Error {
    decode_error(
        "the pickle holds a recursive structure (a container that contains itself), which a \
         Value cannot represent",
    )
}

/// The error for nesting past [`MAX_DEPTH`].
fn depth_error() -> Error {
    decode_error(format_args!(
        "containers nest deeper than {MAX_DEPTH} levels"
    ))
}

/// What one node costs in the budget on its own (one unit, plus one per 32 payload bytes).
fn own_cost(obj: &Obj) -> usize {
    let payload = match obj {
        Obj::Scalar(Value::Str(s)) => s.len(),
        Obj::Scalar(Value::Bytes(b)) => b.len(),
        Obj::Scalar(Value::BigInt(b)) => b.as_signed_bytes_le().len(),
        _ => 0,
    };
    1 + payload.div_ceil(32)
}

/// The arena indices a node refers to.
fn children(obj: &Obj) -> Box<dyn Iterator<Item = usize> + '_> {
    match obj {
        Obj::List(items) | Obj::Tuple(items) | Obj::Set(items) | Obj::FrozenSet(items) => {
            Box::new(items.iter().copied())
        }
        Obj::Dict(pairs) => Box::new(pairs.iter().flat_map(|&(k, v)| [k, v])),
        Obj::Scalar(_) | Obj::Global(_) | Obj::Taken => Box::new(std::iter::empty()),
    }
}

/// The budget units the value of `root` would take once built (each shared object counted
/// once per reference), or the error building it would give: past `budget`, a container that
/// contains itself, nesting deeper than [`MAX_DEPTH`]. Each node is visited once.
fn expanded_cost(nodes: &[Node], root: usize, budget: usize) -> Result<usize> {
    /// Not visited yet.
    const NEW: usize = usize::MAX;
    /// On the current path.
    const VISITING: usize = usize::MAX - 1;
    fn visit(
        nodes: &[Node],
        cost: &mut [usize],
        index: usize,
        depth: usize,
        budget: usize,
    ) -> Result<usize> {
        let internal = || decode_error("internal error: dangling reference");
        match cost.get(index).copied().ok_or_else(internal)? {
            NEW => {}
            VISITING => return Err(recursive_error()),
            known => return Ok(known),
        }
        let obj = &nodes.get(index).ok_or_else(internal)?.obj;
        let container = matches!(
            obj,
            Obj::List(_) | Obj::Tuple(_) | Obj::Dict(_) | Obj::Set(_) | Obj::FrozenSet(_)
        );
        if container && depth >= MAX_DEPTH {
            return Err(depth_error());
        }
        if let Some(slot) = cost.get_mut(index) {
            *slot = VISITING;
        }
        let mut total = own_cost(obj);
        for child in children(obj) {
            total = total.saturating_add(visit(nodes, cost, child, depth + 1, budget)?);
            if total > budget {
                return Err(too_large_error());
            }
        }
        if total > budget {
            return Err(too_large_error());
        }
        if let Some(slot) = cost.get_mut(index) {
            *slot = total;
        }
        Ok(total)
    }
    // `cost[i]` is NEW, VISITING, or the (at most `budget`) cost of node `i`.
    let mut cost = vec![NEW; nodes.len()];
    visit(nodes, &mut cost, root, 0, budget)
}

/// A decode error.
fn decode_error(reason: impl fmt::Display) -> Error {
    Error::decode(Format::Pickle, reason)
}

/// A whitelisted Python callable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callable {
    /// `_codecs.encode(str, encoding)`: protocols 0-2 write `bytes` this way.
    CodecsEncode,
    /// `builtins.set`.
    Set,
    /// `builtins.frozenset`.
    FrozenSet,
    /// `builtins.bytes`.
    Bytes,
    /// `builtins.bytearray`.
    Bytearray,
    /// `copyreg._reconstructor`: allowed on the stack so that the error names the class that
    /// follows it; calling it is refused.
    Reconstructor,
}

/// A global named by `GLOBAL`/`STACK_GLOBAL`.
#[derive(Debug, Clone)]
struct Global {
    /// The module as written.
    module: String,
    /// The name as written.
    name: String,
    /// What it is.
    callable: Callable,
}

impl Global {
    /// The error for using this global as a value or calling it when that is not allowed.
    fn error(&self) -> Error {
        Error::PickleGlobal {
            module: self.module.clone(),
            name: self.name.clone(),
        }
    }
}

/// Resolves a global against the whitelist.
fn resolve_global(module: String, name: String) -> Result<Global> {
    let callable = match (module.as_str(), name.as_str()) {
        ("_codecs", "encode") => Callable::CodecsEncode,
        ("builtins" | "__builtin__", "set") => Callable::Set,
        ("builtins" | "__builtin__", "frozenset") => Callable::FrozenSet,
        ("builtins" | "__builtin__", "bytes") => Callable::Bytes,
        ("builtins" | "__builtin__", "bytearray") => Callable::Bytearray,
        ("copyreg" | "copy_reg", "_reconstructor") => Callable::Reconstructor,
        _ => return Err(Error::PickleGlobal { module, name }),
    };
    Ok(Global {
        module,
        name,
        callable,
    })
}

/// An object in the arena.
#[derive(Debug, Clone)]
enum Obj {
    /// An immutable value without children.
    Scalar(Value),
    /// A `list` of arena indices.
    List(Vec<usize>),
    /// A `tuple`.
    Tuple(Vec<usize>),
    /// A `dict`.
    Dict(Vec<(usize, usize)>),
    /// A `set`.
    Set(Vec<usize>),
    /// A `frozenset`.
    FrozenSet(Vec<usize>),
    /// A whitelisted global (boxed: it is rare and large).
    Global(Box<Global>),
    /// Moved into the result already.
    Taken,
}

impl Obj {
    /// The Python type name, for errors.
    fn type_name(&self) -> &'static str {
        match self {
            Obj::Scalar(v) => v.type_name(),
            Obj::List(_) => "list",
            Obj::Tuple(_) => "tuple",
            Obj::Dict(_) => "dict",
            Obj::Set(_) => "set",
            Obj::FrozenSet(_) => "frozenset",
            Obj::Global(_) => "global",
            Obj::Taken => "consumed object",
        }
    }
}

/// An arena slot.
#[derive(Debug)]
struct Node {
    /// The object.
    obj: Obj,
    /// More than one reference to the object may exist (it was pushed by `GET` or `DUP`, or
    /// its reference was copied into a new container): the result must copy it, not move it.
    shared: bool,
    /// The object is being built (cycle detection).
    visiting: bool,
}

/// The memo: dense for the small indices Python writes, sparse for arbitrary ones.
struct Memo {
    /// `dense[i]` is the arena index stored at memo key `i`, or `usize::MAX`.
    dense: Vec<usize>,
    /// Keys at or above `dense_limit`.
    sparse: HashMap<u64, usize>,
    /// Keys below this are stored densely (bounded by the input length).
    dense_limit: u64,
    /// Number of distinct keys (`len(memo)` for `MEMOIZE`).
    len: u64,
}

impl Memo {
    /// An empty memo for an input of `input_len` bytes.
    fn new(input_len: usize) -> Memo {
        Memo {
            dense: Vec::new(),
            sparse: HashMap::new(),
            dense_limit: input_len as u64 + 256,
            len: 0,
        }
    }

    /// Stores `node` at `key`.
    fn put(&mut self, key: u64, node: usize) {
        let fresh = if key < self.dense_limit {
            let i = key as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, usize::MAX);
            }
            match self.dense.get_mut(i) {
                Some(slot) => std::mem::replace(slot, node) == usize::MAX,
                None => false,
            }
        } else {
            self.sparse.insert(key, node).is_none()
        };
        if fresh {
            self.len += 1;
        }
    }

    /// The node stored at `key`.
    fn get(&self, key: u64) -> Option<usize> {
        if key < self.dense_limit {
            self.dense
                .get(key as usize)
                .copied()
                .filter(|&n| n != usize::MAX)
        } else {
            self.sparse.get(&key).copied()
        }
    }
}

/// The unpickling stack machine.
struct Machine<'a> {
    /// The pickle.
    input: &'a [u8],
    /// Read position.
    pos: usize,
    /// Offset of the opcode being executed (for errors).
    op_pos: usize,
    /// All objects created.
    nodes: Vec<Node>,
    /// The stack, as arena indices.
    stack: Vec<usize>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    /// The memo.
    memo: Memo,
}

impl<'a> Machine<'a> {
    /// A machine reading `input`.
    fn new(input: &'a [u8]) -> Machine<'a> {
        Machine {
            input,
            pos: 0,
            op_pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::new(input.len()),
        }
    }

    /// A decode error located at the current opcode.
    fn fail(&self, reason: impl fmt::Display) -> Error {
        decode_error(format_args!("{reason} (opcode at byte {})", self.op_pos))
    }

    // --- reading ---

    /// Takes the next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let input: &'a [u8] = self.input;
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| input.get(self.pos..end))
            .ok_or_else(|| self.fail("the pickle is truncated"))?;
        self.pos += n;
        Ok(bytes)
    }

    /// Takes `n` bytes, where `n` was read from the input.
    fn take_declared(&mut self, n: u64) -> Result<&'a [u8]> {
        let remaining = self.input.len().saturating_sub(self.pos);
        match usize::try_from(n) {
            Ok(n) if n <= remaining => self.take(n),
            _ => Err(self.fail(format_args!(
                "declared length {n} exceeds the {remaining} bytes left in the pickle"
            ))),
        }
    }

    /// Takes `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    /// Reads one byte.
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `i32`.
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a line, without its `\n`.
    fn line(&mut self) -> Result<&'a [u8]> {
        let input: &'a [u8] = self.input;
        let rest = input.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.fail("the pickle is truncated (a text argument has no newline)"))?;
        self.pos += len + 1;
        Ok(rest.get(..len).unwrap_or_default())
    }

    /// Reads a line as UTF-8 text.
    fn utf8_line(&mut self) -> Result<&'a str> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.fail("a global name is not valid UTF-8"))
    }

    /// Reads a memo index written as a decimal line.
    fn decimal_line(&mut self) -> Result<u64> {
        let line = self.line()?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| self.fail("invalid memo index"))
    }

    // --- the stack ---

    /// The lowest stack position the current opcode may touch.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Creates an object and pushes it.
    fn push(&mut self, obj: Obj) {
        let index = self.new_node(obj);
        self.stack.push(index);
    }

    /// Creates an object; returns its index.
    fn new_node(&mut self, obj: Obj) -> usize {
        self.nodes.push(Node {
            obj,
            shared: false,
            visiting: false,
        });
        self.nodes.len() - 1
    }

    /// Pushes another reference to an existing object.
    fn push_shared(&mut self, index: usize) -> Result<()> {
        self.node_mut(index)?.shared = true;
        self.stack.push(index);
        Ok(())
    }

    /// Pops the top of the stack (not below the last `MARK`).
    fn pop(&mut self) -> Result<usize> {
        if self.stack.len() <= self.fence() {
            return Err(self.fail("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.fail("stack underflow"))
    }

    /// The top of the stack (not below the last `MARK`).
    fn top(&self) -> Result<usize> {
        if self.stack.len() <= self.fence() {
            return Err(self.fail("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.fail("stack underflow"))
    }

    /// Pops everything above the last `MARK`, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<usize>> {
        let mark = self.marks.pop().ok_or_else(|| self.fail("MARK missing"))?;
        if mark > self.stack.len() {
            return Err(self.fail("stack underflow"));
        }
        Ok(self.stack.split_off(mark))
    }

    /// The object at `index`.
    fn node(&self, index: usize) -> Result<&Node> {
        self.nodes
            .get(index)
            .ok_or_else(|| self.fail("internal error: dangling reference"))
    }

    /// The object at `index`, mutably.
    fn node_mut(&mut self, index: usize) -> Result<&mut Node> {
        if index >= self.nodes.len() {
            return Err(self.fail("internal error: dangling reference"));
        }
        self.nodes
            .get_mut(index)
            .ok_or_else(|| decode_error("internal error: dangling reference"))
    }

    /// Marks objects as referenced more than once.
    fn share_all(&mut self, indices: &[usize]) {
        for &i in indices {
            if let Some(node) = self.nodes.get_mut(i) {
                node.shared = true;
            }
        }
    }

    /// The error for a mutation opcode applied to the wrong type.
    fn wrong_target(&self, opcode: &str, expected: &str, target: usize) -> Error {
        let found = self.node(target).map_or("?", |n| n.obj.type_name());
        self.fail(format_args!(
            "{opcode} applied to a {found}, not a {expected}"
        ))
    }

    /// Appends `items` to the list at `target`.
    fn extend_list(&mut self, target: usize, items: Vec<usize>, opcode: &str) -> Result<()> {
        if let Obj::List(list) = &mut self.node_mut(target)?.obj {
            list.extend(items);
            Ok(())
        } else {
            Err(self.wrong_target(opcode, "list", target))
        }
    }

    /// Adds key/value pairs (a flat list) to the dict at `target`.
    fn extend_dict(&mut self, target: usize, items: &[usize], opcode: &str) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.fail(format_args!("{opcode} with an odd number of items")));
        }
        if let Obj::Dict(dict) = &mut self.node_mut(target)?.obj {
            dict.extend(pairs(items));
            Ok(())
        } else {
            Err(self.wrong_target(opcode, "dict", target))
        }
    }

    /// Makes a dict of key/value pairs (a flat list).
    fn dict_pairs(&self, items: &[usize]) -> Result<Vec<(usize, usize)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.fail("DICT with an odd number of items"));
        }
        Ok(pairs(items).collect())
    }

    /// Pops `n` items (for `TUPLE1`-`TUPLE3`), in stack order.
    fn pop_n(&mut self, n: usize) -> Result<Vec<usize>> {
        if self.stack.len() < self.fence() + n {
            return Err(self.fail("stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    /// Stores the top of the stack in the memo.
    fn memo_put(&mut self, key: u64) -> Result<()> {
        let top = self.top()?;
        self.memo.put(key, top);
        Ok(())
    }

    /// Pushes the object stored in the memo at `key`.
    fn memo_get(&mut self, key: u64) -> Result<()> {
        let index = self
            .memo
            .get(key)
            .ok_or_else(|| self.fail(format_args!("memo key {key} not found")))?;
        self.push_shared(index)
    }

    /// Pushes a global after checking it against the whitelist.
    fn push_global(&mut self, module: String, name: String) -> Result<()> {
        let global = resolve_global(module, name)?;
        self.push(Obj::Global(Box::new(global)));
        Ok(())
    }

    // --- the machine ---

    /// Runs the pickle to `STOP`; returns the index of the result.
    fn run(&mut self) -> Result<usize> {
        loop {
            self.op_pos = self.pos;
            let Some(&code) = self.input.get(self.pos) else {
                return Err(self.fail("the pickle ends without a STOP opcode"));
            };
            self.pos += 1;
            if code == op::STOP {
                return self.pop();
            }
            self.step(code)?;
        }
    }

    /// Executes one opcode (other than `STOP`).
    #[allow(clippy::too_many_lines)] // one arm per opcode reads best as one match
    fn step(&mut self, code: u8) -> Result<()> {
        match code {
            op::PROTO => {
                let proto = self.u8()?;
                if proto > super::HIGHEST_PROTOCOL {
                    return Err(self.fail(format_args!("unsupported pickle protocol {proto}")));
                }
            }
            op::FRAME => {
                // Framing only groups reads; check that the announced frame is there.
                let len = self.u64()?;
                let remaining = self.input.len().saturating_sub(self.pos);
                if usize::try_from(len).map_or(true, |len| len > remaining) {
                    return Err(self.fail(format_args!(
                        "frame of {len} bytes exceeds the {remaining} bytes left in the pickle"
                    )));
                }
            }
            op::MARK => self.marks.push(self.stack.len()),
            op::POP => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            op::POP_MARK => {
                self.pop_mark()?;
            }
            op::DUP => {
                let top = self.top()?;
                self.push_shared(top)?;
            }
            op::PUT => {
                let key = self.decimal_line()?;
                self.memo_put(key)?;
            }
            op::BINPUT => {
                let key = self.u8()?;
                self.memo_put(key.into())?;
            }
            op::LONG_BINPUT => {
                let key = self.u32()?;
                self.memo_put(key.into())?;
            }
            op::MEMOIZE => self.memo_put(self.memo.len)?,
            op::GET => {
                let key = self.decimal_line()?;
                self.memo_get(key)?;
            }
            op::BINGET => {
                let key = self.u8()?;
                self.memo_get(key.into())?;
            }
            op::LONG_BINGET => {
                let key = self.u32()?;
                self.memo_get(key.into())?;
            }
            op::NONE => self.push(Obj::Scalar(Value::None)),
            op::NEWTRUE => self.push(Obj::Scalar(Value::Bool(true))),
            op::NEWFALSE => self.push(Obj::Scalar(Value::Bool(false))),
            op::INT => {
                let line = self.line()?;
                let value = match line {
                    b"00" => Value::Bool(false),
                    b"01" => Value::Bool(true),
                    _ => crate::value::parse_decimal_int(line).map_err(|e| self.fail(e))?,
                };
                self.push(Obj::Scalar(value));
            }
            op::LONG => {
                let line = self.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let value = crate::value::parse_decimal_int(digits).map_err(|e| self.fail(e))?;
                self.push(Obj::Scalar(value));
            }
            op::BININT => {
                let v = self.i32()?;
                self.push(Obj::Scalar(Value::Int(v.into())));
            }
            op::BININT1 => {
                let v = self.u8()?;
                self.push(Obj::Scalar(Value::Int(v.into())));
            }
            op::BININT2 => {
                let v = self.u16()?;
                self.push(Obj::Scalar(Value::Int(v.into())));
            }
            op::LONG1 => {
                let n = self.u8()?;
                let bytes = self.take(n.into())?;
                self.push(Obj::Scalar(Value::from(BigInt::from_signed_bytes_le(
                    bytes,
                ))));
            }
            op::LONG4 => {
                let n = self.i32()?;
                let n =
                    u64::try_from(n).map_err(|_| self.fail("LONG4 with a negative byte count"))?;
                let bytes = self.take_declared(n)?;
                self.push(Obj::Scalar(Value::from(BigInt::from_signed_bytes_le(
                    bytes,
                ))));
            }
            op::FLOAT => {
                let line = self.line()?;
                let v = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.fail("invalid FLOAT argument"))?;
                self.push(Obj::Scalar(Value::Float(v)));
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Obj::Scalar(Value::Float(v)));
            }
            op::STRING => {
                let line = self.line()?;
                let inner =
                    unquote(line).ok_or_else(|| self.fail("the STRING argument must be quoted"))?;
                let bytes = escape_decode(inner).map_err(|e| self.fail(e))?;
                let s = ascii_str(bytes).map_err(|e| self.fail(e))?;
                self.push(Obj::Scalar(Value::Str(s)));
            }
            op::BINSTRING => {
                let n = self.i32()?;
                let n = u64::try_from(n)
                    .map_err(|_| self.fail("BINSTRING with a negative byte count"))?;
                let bytes = self.take_declared(n)?;
                let s = ascii_str(bytes.to_vec()).map_err(|e| self.fail(e))?;
                self.push(Obj::Scalar(Value::Str(s)));
            }
            op::SHORT_BINSTRING => {
                let n = self.u8()?;
                let bytes = self.take(n.into())?;
                let s = ascii_str(bytes.to_vec()).map_err(|e| self.fail(e))?;
                self.push(Obj::Scalar(Value::Str(s)));
            }
            op::UNICODE => {
                let line = self.line()?;
                let s = raw_unicode_escape_decode(line).map_err(|e| self.fail(e))?;
                self.push(Obj::Scalar(Value::Str(s)));
            }
            op::BINUNICODE => {
                let n = self.u32()?;
                self.push_utf8(n.into())?;
            }
            op::SHORT_BINUNICODE => {
                let n = self.u8()?;
                self.push_utf8(n.into())?;
            }
            op::BINUNICODE8 => {
                let n = self.u64()?;
                self.push_utf8(n)?;
            }
            op::BINBYTES => {
                let n = self.u32()?;
                self.push_bytes(n.into())?;
            }
            op::SHORT_BINBYTES => {
                let n = self.u8()?;
                self.push_bytes(n.into())?;
            }
            op::BINBYTES8 | op::BYTEARRAY8 => {
                let n = self.u64()?;
                self.push_bytes(n)?;
            }
            op::EMPTY_LIST => self.push(Obj::List(Vec::new())),
            op::APPEND => {
                let item = self.pop()?;
                let list = self.top()?;
                self.extend_list(list, vec![item], "APPEND")?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                let list = self.top()?;
                self.extend_list(list, items, "APPENDS")?;
            }
            op::LIST => {
                let items = self.pop_mark()?;
                self.push(Obj::List(items));
            }
            op::EMPTY_TUPLE => self.push(Obj::Tuple(Vec::new())),
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push(Obj::Tuple(items));
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let items = self.pop_n(usize::from(code - op::TUPLE1) + 1)?;
                self.push(Obj::Tuple(items));
            }
            op::EMPTY_DICT => self.push(Obj::Dict(Vec::new())),
            op::DICT => {
                let items = self.pop_mark()?;
                let pairs = self.dict_pairs(&items)?;
                self.push(Obj::Dict(pairs));
            }
            op::SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.extend_dict(dict, &[key, value], "SETITEM")?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.extend_dict(dict, &items, "SETITEMS")?;
            }
            op::EMPTY_SET => self.push(Obj::Set(Vec::new())),
            op::ADDITEMS => {
                let items = self.pop_mark()?;
                let set = self.top()?;
                if let Obj::Set(set) = &mut self.node_mut(set)?.obj {
                    set.extend(items);
                } else {
                    return Err(self.wrong_target("ADDITEMS", "set", set));
                }
            }
            op::FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Obj::FrozenSet(items));
            }
            op::GLOBAL => {
                let module = self.utf8_line()?.to_owned();
                let name = self.utf8_line()?.to_owned();
                self.push_global(module, name)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Obj::Scalar(Value::Str(module)), Obj::Scalar(Value::Str(name))) =
                    (&self.node(module)?.obj, &self.node(name)?.obj)
                else {
                    return Err(self.fail("STACK_GLOBAL requires two str"));
                };
                let (module, name) = (module.clone(), name.clone());
                self.push_global(module, name)?;
            }
            op::REDUCE => self.reduce()?,
            op::INST => {
                // Creates an instance of the class named inline: never a builtin type.
                let module = self.utf8_line()?.to_owned();
                let name = self.utf8_line()?.to_owned();
                return Err(Error::PickleGlobal { module, name });
            }
            op::OBJ | op::NEWOBJ | op::NEWOBJ_EX | op::BUILD => {
                return Err(self.fail(format_args!(
                    "opcode {} builds a class instance; dcache reads only builtin types",
                    opcode_name(code)
                )));
            }
            op::PERSID | op::BINPERSID => {
                return Err(self.fail("persistent IDs are not supported"));
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                return Err(self.fail("copyreg extension codes are not supported"));
            }
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                return Err(self.fail("out-of-band buffers are not supported"));
            }
            _ => return Err(self.fail(format_args!("invalid opcode 0x{code:02x}"))),
        }
        Ok(())
    }

    /// Pushes a UTF-8 `str` of `n` bytes.
    fn push_utf8(&mut self, n: u64) -> Result<()> {
        let bytes = self.take_declared(n)?;
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(e) => {
                let at = e.valid_up_to();
                let surrogate = matches!(bytes.get(at..at + 2), Some([0xed, 0xa0..=0xbf]));
                return Err(self.fail(if surrogate {
                    "the str holds a lone surrogate (Python allows it via 'surrogatepass'; a Rust \
                     string cannot hold it)"
                } else {
                    "the str is not valid UTF-8"
                }));
            }
        };
        self.push(Obj::Scalar(Value::Str(s)));
        Ok(())
    }

    /// Pushes a `bytes` of `n` bytes.
    fn push_bytes(&mut self, n: u64) -> Result<()> {
        let bytes = self.take_declared(n)?;
        self.push(Obj::Scalar(Value::Bytes(bytes.to_vec())));
        Ok(())
    }

    /// `REDUCE`: calls a whitelisted builtin.
    fn reduce(&mut self) -> Result<()> {
        let args = self.pop()?;
        let func = self.top()?;
        let global = match &self.node(func)?.obj {
            Obj::Global(g) => Global::clone(g),
            other => {
                return Err(self.fail(format_args!("REDUCE calls a {}", other.type_name())));
            }
        };
        let args = match &self.node(args)?.obj {
            Obj::Tuple(items) => items.clone(),
            other => {
                let found = other.type_name();
                return Err(self.fail(format_args!("REDUCE arguments are a {found}, not a tuple")));
            }
        };
        let obj = match global.callable {
            Callable::CodecsEncode => match args.as_slice() {
                [text] => Obj::Scalar(Value::Bytes(self.str_arg(*text)?.as_bytes().to_vec())),
                [text, encoding] => Obj::Scalar(Value::Bytes(self.encode(*text, *encoding)?)),
                [text, encoding, errors] if self.str_arg(*errors)? == "strict" => {
                    Obj::Scalar(Value::Bytes(self.encode(*text, *encoding)?))
                }
                _ => return Err(self.fail("unsupported arguments to _codecs.encode")),
            },
            Callable::Bytes | Callable::Bytearray => match args.as_slice() {
                [] => Obj::Scalar(Value::Bytes(Vec::new())),
                [source] => Obj::Scalar(Value::Bytes(self.bytes_from(*source)?)),
                [text, encoding] => Obj::Scalar(Value::Bytes(self.encode(*text, *encoding)?)),
                _ => {
                    return Err(self.fail(format_args!(
                        "unsupported arguments to {}.{}",
                        global.module, global.name
                    )));
                }
            },
            Callable::Set | Callable::FrozenSet => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [source] => match &self.node(*source)?.obj {
                        Obj::List(items)
                        | Obj::Tuple(items)
                        | Obj::Set(items)
                        | Obj::FrozenSet(items) => items.clone(),
                        other => {
                            let found = other.type_name();
                            return Err(
                                self.fail(format_args!("cannot build a set from a {found}"))
                            );
                        }
                    },
                    _ => return Err(self.fail("set() takes at most one argument")),
                };
                // The items are now referenced by the source and by the set.
                self.share_all(&items);
                if global.callable == Callable::Set {
                    Obj::Set(items)
                } else {
                    Obj::FrozenSet(items)
                }
            }
            Callable::Reconstructor => return Err(global.error()),
        };
        let result = self.new_node(obj);
        if let Some(slot) = self.stack.last_mut() {
            *slot = result;
        }
        Ok(())
    }

    /// The `str` at `index`.
    fn str_arg(&self, index: usize) -> Result<&str> {
        match &self.node(index)?.obj {
            Obj::Scalar(Value::Str(s)) => Ok(s),
            other => Err(self.fail(format_args!(
                "expected a str argument, found a {}",
                other.type_name()
            ))),
        }
    }

    /// Encodes the `str` at `text` with the encoding named by the `str` at `encoding`.
    fn encode(&self, text: usize, encoding: usize) -> Result<Vec<u8>> {
        let text = self.str_arg(text)?;
        let encoding = self.str_arg(encoding)?;
        let normalized = encoding.to_ascii_lowercase().replace(['-', ' '], "_");
        match normalized.as_str() {
            "latin_1" | "latin1" | "latin" | "l1" | "iso_8859_1" | "iso8859_1" | "8859"
            | "cp819" => text
                .chars()
                .map(|c| u8::try_from(c).ok())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| self.fail("a latin-1 encoded str holds a character above U+00FF")),
            "utf_8" | "utf8" | "u8" => Ok(text.as_bytes().to_vec()),
            "ascii" | "us_ascii" | "646" => {
                if text.is_ascii() {
                    Ok(text.as_bytes().to_vec())
                } else {
                    Err(self.fail("an ASCII encoded str holds a non-ASCII character"))
                }
            }
            _ => Err(self.fail(format_args!("unsupported encoding {encoding:?}"))),
        }
    }

    /// `bytes(source)` for a `bytes` or a sequence of small ints.
    fn bytes_from(&self, source: usize) -> Result<Vec<u8>> {
        match &self.node(source)?.obj {
            Obj::Scalar(Value::Bytes(b)) => Ok(b.clone()),
            Obj::List(items) | Obj::Tuple(items) => items
                .iter()
                .map(|&i| match self.node(i).map(|n| &n.obj) {
                    Ok(Obj::Scalar(Value::Int(v))) => u8::try_from(*v).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| self.fail("bytes() of items that are not ints in range(256)")),
            other => Err(self.fail(format_args!(
                "cannot build bytes from a {}",
                other.type_name()
            ))),
        }
    }
}

/// Builds the result from the arena.
struct Builder {
    /// The arena.
    nodes: Vec<Node>,
    /// Remaining size budget.
    budget: usize,
}

impl Builder {
    /// Charges one value (plus one unit per 32 bytes of payload) to the budget.
    fn charge(&mut self, payload: usize) -> Result<()> {
        let cost = 1 + payload.div_ceil(32);
        self.budget = self.budget.checked_sub(cost).ok_or_else(too_large_error)?;
        Ok(())
    }

    /// Builds the value of node `index`, found inside `depth` containers. With `copy`, the
    /// node is reachable more than once (through a shared container) and must be copied
    /// rather than moved out of the arena.
    fn build(&mut self, index: usize, depth: usize, copy: bool) -> Result<Value> {
        let internal = || decode_error("internal error: dangling reference");
        let node = self.nodes.get(index).ok_or_else(internal)?;
        if node.visiting {
            return Err(recursive_error());
        }
        let payload = match &node.obj {
            Obj::Scalar(Value::Str(s)) => s.len(),
            Obj::Scalar(Value::Bytes(b)) => b.len(),
            Obj::Scalar(Value::BigInt(b)) => b.as_signed_bytes_le().len(),
            _ => 0,
        };
        self.charge(payload)?;
        let node = self.nodes.get_mut(index).ok_or_else(internal)?;
        let copy = copy || node.shared;
        let obj = if copy {
            node.obj.clone()
        } else {
            std::mem::replace(&mut node.obj, Obj::Taken)
        };
        if matches!(
            obj,
            Obj::List(_) | Obj::Tuple(_) | Obj::Dict(_) | Obj::Set(_) | Obj::FrozenSet(_)
        ) && depth >= MAX_DEPTH
        {
            return Err(depth_error());
        }
        match obj {
            Obj::Scalar(v) => Ok(v),
            Obj::List(items) => Ok(Value::List(self.build_all(index, &items, depth, copy)?)),
            Obj::Tuple(items) => Ok(Value::Tuple(self.build_all(index, &items, depth, copy)?)),
            Obj::Set(items) => Ok(Value::Set(self.build_all(index, &items, depth, copy)?)),
            Obj::FrozenSet(items) => Ok(Value::FrozenSet(
                self.build_all(index, &items, depth, copy)?,
            )),
            Obj::Dict(pairs) => {
                self.set_visiting(index, true);
                let mut entries = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let key = self.build(k, depth + 1, copy)?;
                    let value = self.build(v, depth + 1, copy)?;
                    entries.push((key, value));
                }
                self.set_visiting(index, false);
                Ok(Value::Dict(entries))
            }
            Obj::Global(global) => Err(global.error()),
            Obj::Taken => Err(decode_error("internal error: an object was used twice")),
        }
    }

    /// Builds the items of the container `parent`.
    fn build_all(
        &mut self,
        parent: usize,
        items: &[usize],
        depth: usize,
        copy: bool,
    ) -> Result<Vec<Value>> {
        self.set_visiting(parent, true);
        let mut values = Vec::with_capacity(items.len());
        for &item in items {
            values.push(self.build(item, depth + 1, copy)?);
        }
        self.set_visiting(parent, false);
        Ok(values)
    }

    /// Sets the cycle detection flag of a node.
    fn set_visiting(&mut self, index: usize, visiting: bool) {
        if let Some(node) = self.nodes.get_mut(index) {
            node.visiting = visiting;
        }
    }
}

/// Groups a flat list of keys and values into pairs (a trailing odd item is dropped; callers
/// check the length first).
fn pairs(items: &[usize]) -> impl Iterator<Item = (usize, usize)> + '_ {
    items.chunks_exact(2).filter_map(|pair| match *pair {
        [key, value] => Some((key, value)),
        _ => None,
    })
}

/// Strips the quotes around a `STRING` argument.
fn unquote(line: &[u8]) -> Option<&[u8]> {
    match line {
        [q @ (b'\'' | b'"'), inner @ .., last] if last == q => Some(inner),
        _ => None,
    }
}

/// Python's `codecs.escape_decode`, used for `STRING` arguments.
fn escape_decode(data: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(data.len());
    let mut iter = data.iter().copied().peekable();
    while let Some(c) = iter.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(e) = iter.next() else {
            return Err("a STRING argument ends with a backslash");
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match iter.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            iter.next();
                        }
                        _ => break,
                    }
                }
                out.push(v as u8); // Python keeps the low byte of \400-\777
            }
            b'x' => {
                let hi = iter.next().and_then(hex_digit);
                let lo = iter.next().and_then(hex_digit);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi * 16 + lo),
                    _ => return Err("invalid \\x escape in a STRING argument"),
                }
            }
            other => out.extend_from_slice(&[b'\\', other]),
        }
    }
    Ok(out)
}

/// The value of a hex digit.
fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// Decodes a Python 2 `str` the way Python 3 does by default (`encoding='ASCII'`).
fn ascii_str(bytes: Vec<u8>) -> std::result::Result<String, &'static str> {
    if !bytes.is_ascii() {
        return Err(
            "a Python 2 str holds non-ASCII bytes (Python 3 reads it with \
                    encoding='ASCII' by default and fails too)",
        );
    }
    String::from_utf8(bytes).map_err(|_| "a Python 2 str holds non-ASCII bytes")
}

/// Python's `raw_unicode_escape` decoding, used for `UNICODE` arguments: bytes are Latin-1
/// characters except `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_escape_decode(data: &[u8]) -> std::result::Result<String, &'static str> {
    let mut out = String::with_capacity(data.len());
    let mut i = 0;
    while let Some(&c) = data.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(char::from(c));
            continue;
        }
        let Some(&kind) = data.get(i) else {
            out.push('\\');
            break;
        };
        i += 1;
        let count = match kind {
            b'u' => 4,
            b'U' => 8,
            other => {
                out.push('\\');
                out.push(char::from(other));
                continue;
            }
        };
        let hex = data
            .get(i..i + count)
            .ok_or("truncated \\u escape in a UNICODE argument")?;
        i += count;
        let mut code: u32 = 0;
        for &h in hex {
            let d = hex_digit(h).ok_or("invalid \\u escape in a UNICODE argument")?;
            code = code * 16 + u32::from(d);
        }
        let ch = char::from_u32(code).ok_or(
            "a UNICODE argument holds a lone surrogate or a code point above U+10FFFF (a Rust \
             string cannot hold it)",
        )?;
        out.push(ch);
    }
    Ok(out)
}

/// The name of an opcode that builds objects, for errors.
fn opcode_name(code: u8) -> &'static str {
    match code {
        op::OBJ => "OBJ",
        op::NEWOBJ => "NEWOBJ",
        op::NEWOBJ_EX => "NEWOBJ_EX",
        op::BUILD => "BUILD",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arena_nodes_stay_small() {
        assert!(
            size_of::<super::Node>() <= 40,
            "{}",
            size_of::<super::Node>()
        );
    }
}
