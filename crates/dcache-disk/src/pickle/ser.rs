//! The encoder: serde `Serialize` → pickle bytes, as CPython's pickler followed by
//! `pickletools.optimize` writes them.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::{MAX_DEPTH, op};
use crate::error::{Error, Format, Result};
use crate::probe::as_u8;
use crate::value::{BIGINT_MAGIC, BigInt, FROZENSET_MAGIC, SET_MAGIC, canonical_len};

/// Items per `APPENDS`/`SETITEMS`/`ADDITEMS` batch (CPython's `_BATCHSIZE`).
const BATCH_SIZE: usize = 1000;
/// A frame is closed once it holds this many bytes, and an opcode longer than this is written
/// outside any frame (CPython's `_FRAME_SIZE_TARGET`).
const FRAME_SIZE_TARGET: usize = 64 * 1024;
/// Frames shorter than this are written without a `FRAME` opcode (`_FRAME_SIZE_MIN`).
const FRAME_SIZE_MIN: usize = 4;
/// `PROTO n`.
const PROTO_HEADER_LEN: usize = 2;
/// `FRAME` and its 8-byte length.
const FRAME_HEADER_LEN: usize = 9;

/// An encode error.
fn encode_error(reason: impl fmt::Display) -> Error {
    Error::encode(Format::Pickle, reason)
}

/// The pickle writer; `&mut Pickler` is the serde serializer.
///
/// The body (everything after `PROTO`) is written unframed after a 9-byte hole; [`finish`]
/// fills the hole with the `FRAME` header, or removes it, or re-frames a body too large for
/// one frame.
///
/// [`finish`]: Pickler::finish
pub(super) struct Pickler {
    /// The output so far.
    out: Vec<u8>,
    /// The protocol being written: 3, 4 or 5.
    proto: u8,
    /// Containers currently open.
    depth: usize,
}

impl Pickler {
    /// Starts a pickle of protocol `proto` (3, 4 or 5).
    pub(super) fn new(proto: u8) -> Pickler {
        // Large enough for most keys and small values, so that they are written without a
        // reallocation.
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[op::PROTO, proto]);
        if proto >= 4 {
            out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        }
        Pickler {
            out,
            proto,
            depth: 0,
        }
    }

    /// Writes `STOP` and the framing; returns the pickle.
    pub(super) fn finish(mut self) -> Result<Vec<u8>> {
        self.out.push(op::STOP);
        if self.proto < 4 {
            return Ok(self.out);
        }
        let body_start = PROTO_HEADER_LEN + FRAME_HEADER_LEN;
        let body_len = self.out.len() - body_start;
        if body_len > FRAME_SIZE_TARGET {
            return reframe(&self.out, body_start);
        }
        if body_len >= FRAME_SIZE_MIN {
            let header = frame_header(body_len);
            if let Some(hole) = self.out.get_mut(PROTO_HEADER_LEN..body_start) {
                hole.copy_from_slice(&header);
            }
        } else {
            self.out.drain(PROTO_HEADER_LEN..body_start);
        }
        Ok(self.out)
    }

    /// Opens a container, refusing to nest deeper than the decoder accepts.
    #[inline]
    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(encode_error(format_args!(
                "containers nest deeper than {MAX_DEPTH} levels; such a pickle could not be read \
                 back"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    /// Closes a container.
    #[inline]
    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Writes an integer the way CPython's `save_long` does.
    #[inline]
    fn write_int(&mut self, v: i128) -> Result<()> {
        if let Ok(i) = i32::try_from(v) {
            self.write_i32(i);
            Ok(())
        } else {
            let bytes = v.to_le_bytes();
            self.write_long(&bytes[..canonical_len(&bytes)])
        }
    }

    /// Writes an integer that fits `BININT`, in the shortest of `BININT1`, `BININT2`, `BININT`.
    #[inline]
    fn write_i32(&mut self, i: i32) {
        if let Ok(b) = u8::try_from(i) {
            self.out.extend_from_slice(&[op::BININT1, b]);
        } else if let Ok(w) = u16::try_from(i) {
            let [lo, hi] = w.to_le_bytes();
            self.out.extend_from_slice(&[op::BININT2, lo, hi]);
        } else {
            let [b0, b1, b2, b3] = i.to_le_bytes();
            self.out.extend_from_slice(&[op::BININT, b0, b1, b2, b3]);
        }
    }

    /// Writes an unsigned 128-bit integer.
    fn write_u128(&mut self, v: u128) -> Result<()> {
        if let Ok(i) = i128::try_from(v) {
            self.write_int(i)
        } else {
            // Above i128::MAX: the 16 bytes and a zero sign byte, all significant.
            let mut bytes = [0; 17];
            bytes[..16].copy_from_slice(&v.to_le_bytes());
            self.write_long(&bytes)
        }
    }

    /// Writes any integer given as little-endian two's complement bytes.
    fn write_bigint(&mut self, bytes: &[u8]) -> Result<()> {
        let big = BigInt::from_signed_bytes_le(bytes);
        match big.to_i128() {
            Some(v) => self.write_int(v),
            None => self.write_long(big.as_signed_bytes_le()),
        }
    }

    /// Writes `LONG1`/`LONG4` with minimal two's complement bytes.
    fn write_long(&mut self, bytes: &[u8]) -> Result<()> {
        if let Ok(n) = u8::try_from(bytes.len()) {
            self.out.extend_from_slice(&[op::LONG1, n]);
        } else {
            let n = i32::try_from(bytes.len())
                .map_err(|_| encode_error("an integer of 2 GiB or more cannot be pickled"))?;
            self.out.push(op::LONG4);
            self.out.extend_from_slice(&n.to_le_bytes());
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes a float.
    #[inline]
    fn write_float(&mut self, v: f64) {
        self.out.push(op::BINFLOAT);
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a `str`.
    #[inline]
    fn write_str(&mut self, s: &str) -> Result<()> {
        let n = s.len();
        if self.proto >= 4 && n <= 0xff {
            self.out.extend_from_slice(&[op::SHORT_BINUNICODE, n as u8]);
        } else if let Ok(n) = u32::try_from(n) {
            self.out.push(op::BINUNICODE);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else if self.proto >= 4 {
            self.out.push(op::BINUNICODE8);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
        } else {
            return Err(encode_error(
                "a str of 4 GiB or more needs pickle protocol 4 or higher",
            ));
        }
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// Writes a `bytes`.
    #[inline]
    fn write_bytes(&mut self, b: &[u8]) -> Result<()> {
        self.write_bytes_header(b.len())?;
        self.out.extend_from_slice(b);
        Ok(())
    }

    /// Writes a `bytes` of `n` bytes from `bytes`, which yields exactly `n` (a size hint),
    /// straight into the output; an iterator that yields another count is written as what it
    /// yields.
    fn write_bytes_from(&mut self, n: usize, bytes: impl Iterator<Item = u8>) -> Result<()> {
        let start = self.out.len();
        self.write_bytes_header(n)?;
        let body = self.out.len();
        self.out.extend(bytes);
        if self.out.len() - body != n {
            // A wrong size hint: rewritten for what was yielded.
            let written = self.out.split_off(body);
            self.out.truncate(start);
            return self.write_u8_collection(&written);
        }
        Ok(())
    }

    /// Writes a collection of `u8`: `bytes`, or `[]` when empty (as [`SeqEncoder`] does).
    fn write_u8_collection(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            self.enter()?;
            self.out.push(op::EMPTY_LIST);
            self.leave();
            Ok(())
        } else {
            self.write_bytes(bytes)
        }
    }

    /// Writes the opcode and length of a `bytes` of `n` bytes.
    fn write_bytes_header(&mut self, n: usize) -> Result<()> {
        if let Ok(n) = u8::try_from(n) {
            self.out.extend_from_slice(&[op::SHORT_BINBYTES, n]);
        } else if let Ok(n) = u32::try_from(n) {
            self.out.push(op::BINBYTES);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else if self.proto >= 4 {
            self.out.push(op::BINBYTES8);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
        } else {
            return Err(encode_error(
                "a bytes of 4 GiB or more needs pickle protocol 4 or higher",
            ));
        }
        Ok(())
    }

    /// Opens the `{"Variant": ...}` dict of an enum variant with data.
    fn start_variant(&mut self, variant: &str) -> Result<()> {
        self.enter()?;
        self.out.push(op::EMPTY_DICT);
        self.write_str(variant)
    }

    /// Closes the dict opened by [`start_variant`](Self::start_variant).
    fn end_variant(&mut self) {
        self.out.push(op::SETITEM);
        self.leave();
    }
}

/// `FRAME` with a little-endian 8-byte length.
fn frame_header(len: usize) -> [u8; FRAME_HEADER_LEN] {
    let mut header = [0; FRAME_HEADER_LEN];
    header[0] = op::FRAME;
    header[1..].copy_from_slice(&(len as u64).to_le_bytes());
    header
}

/// Splits a body larger than one frame into frames exactly as `pickletools.optimize` does:
/// before each opcode the current frame is closed if it holds at least 64 KiB, and an opcode
/// longer than 64 KiB is written unframed.
fn reframe(out: &[u8], body_start: usize) -> Result<Vec<u8>> {
    let (header, body) = (out.get(..PROTO_HEADER_LEN), out.get(body_start..));
    let (Some(header), Some(body)) = (header, body) else {
        return Err(encode_error("internal error: pickle header missing"));
    };
    let mut result = Vec::with_capacity(out.len() + out.len() / FRAME_SIZE_TARGET * 10);
    result.extend_from_slice(header);
    // Position of the current frame's header hole in `result`.
    let mut frame: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let len = opcode_len(body, pos)?;
        let opcode = pos
            .checked_add(len)
            .and_then(|end| body.get(pos..end))
            .ok_or_else(|| encode_error("internal error: opcode runs past the pickle"))?;
        let frameless = len > FRAME_SIZE_TARGET;
        if let Some(start) = frame
            && (result.len() - start - FRAME_HEADER_LEN >= FRAME_SIZE_TARGET || frameless)
        {
            close_frame(&mut result, start);
            frame = None;
        }
        if !frameless && frame.is_none() {
            frame = Some(result.len());
            result.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        }
        result.extend_from_slice(opcode);
        pos += len;
    }
    if let Some(start) = frame {
        close_frame(&mut result, start);
    }
    Ok(result)
}

/// Fills the header hole of the frame starting at `start`, or removes it if the frame is too
/// short to be worth a header.
fn close_frame(result: &mut Vec<u8>, start: usize) {
    let len = result.len() - start - FRAME_HEADER_LEN;
    if len >= FRAME_SIZE_MIN {
        if let Some(hole) = result.get_mut(start..start + FRAME_HEADER_LEN) {
            hole.copy_from_slice(&frame_header(len));
        }
    } else {
        result.drain(start..start + FRAME_HEADER_LEN);
    }
}

/// The length of the opcode at `pos` of a body this encoder wrote.
fn opcode_len(body: &[u8], pos: usize) -> Result<usize> {
    let internal = || encode_error("internal error: cannot re-read the pickle being framed");
    let arg = |offset: usize, width: usize| -> Result<usize> {
        let bytes = body
            .get(pos + offset..pos + offset + width)
            .ok_or_else(internal)?;
        let mut buf = [0; 8];
        buf.get_mut(..width)
            .ok_or_else(internal)?
            .copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(buf)).map_err(|_| internal())
    };
    let code = *body.get(pos).ok_or_else(internal)?;
    Ok(match code {
        op::NONE
        | op::NEWTRUE
        | op::NEWFALSE
        | op::EMPTY_LIST
        | op::APPEND
        | op::APPENDS
        | op::MARK
        | op::EMPTY_TUPLE
        | op::TUPLE1
        | op::TUPLE2
        | op::TUPLE3
        | op::TUPLE
        | op::EMPTY_DICT
        | op::SETITEM
        | op::SETITEMS
        | op::EMPTY_SET
        | op::ADDITEMS
        | op::FROZENSET
        | op::REDUCE
        | op::STOP => 1,
        op::BININT1 => 2,
        op::BININT2 => 3,
        op::BININT => 5,
        op::BINFLOAT => 9,
        op::LONG1 | op::SHORT_BINUNICODE | op::SHORT_BINBYTES => {
            arg(1, 1)?.checked_add(2).ok_or_else(internal)?
        }
        op::LONG4 | op::BINUNICODE | op::BINBYTES => {
            arg(1, 4)?.checked_add(5).ok_or_else(internal)?
        }
        op::BINUNICODE8 | op::BINBYTES8 => arg(1, 8)?.checked_add(9).ok_or_else(internal)?,
        op::GLOBAL => {
            // `c` module `\n` name `\n`
            let rest = body.get(pos..).ok_or_else(internal)?;
            let mut newlines = rest.iter().enumerate().filter(|&(_, &b)| b == b'\n');
            newlines.nth(1).map(|(i, _)| i + 1).ok_or_else(internal)?
        }
        _ => return Err(internal()),
    })
}

/// How the items of a `list`, `dict` or `set` are grouped, reproducing CPython's
/// `batch_list_exact`, `batch_dict_exact` and `save_set`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchKind {
    /// `APPEND` for a single item, else `MARK ... APPENDS` per batch.
    List,
    /// `SETITEM` for a single entry, else `MARK ... SETITEMS` per batch, plus an empty batch
    /// after a full last one.
    Dict,
    /// `MARK ... ADDITEMS` per batch, plus an empty batch after a full last one.
    Set,
}

/// Batching state of one container.
struct Batch {
    /// Which rules apply.
    kind: BatchKind,
    /// Items written so far.
    total: usize,
    /// Items in the open batch.
    current: usize,
    /// Where the `MARK` of the first batch goes if a second item comes: the first batch of a
    /// list or dict whose length was not announced as 2 or more starts without `MARK`, since a
    /// single item is written with `APPEND`/`SETITEM`.
    pending_mark: Option<usize>,
    /// The length hint said 2 or more items.
    expect_many: bool,
}

impl Batch {
    /// Batching for a container of `kind` whose serializer announced `hint` items.
    fn new(kind: BatchKind, hint: Option<usize>) -> Batch {
        Batch {
            kind,
            total: 0,
            current: 0,
            pending_mark: None,
            expect_many: hint.is_some_and(|n| n >= 2),
        }
    }

    /// The opcode that adds a batch of items.
    fn many_op(&self) -> u8 {
        match self.kind {
            BatchKind::List => op::APPENDS,
            BatchKind::Dict => op::SETITEMS,
            BatchKind::Set => op::ADDITEMS,
        }
    }

    /// The opcode that adds a single item.
    fn one_op(&self) -> u8 {
        match self.kind {
            BatchKind::List => op::APPEND,
            BatchKind::Dict => op::SETITEM,
            BatchKind::Set => op::ADDITEMS,
        }
    }

    /// Called before an item (a dict key) is written.
    #[inline]
    fn before_item(&mut self, out: &mut Vec<u8>) {
        if self.current == 0 {
            if self.total == 0 && self.kind != BatchKind::Set && !self.expect_many {
                self.pending_mark = Some(out.len());
            } else {
                out.push(op::MARK);
            }
        } else if let Some(at) = self.pending_mark.take() {
            // A second item after all: the first batch needs its MARK.
            out.insert(at, op::MARK);
        }
    }

    /// Called after an item (a dict value) is written.
    #[inline]
    fn after_item(&mut self, out: &mut Vec<u8>) {
        self.current += 1;
        self.total += 1;
        if self.current == BATCH_SIZE {
            out.push(self.many_op());
            self.current = 0;
        }
    }

    /// Called after the last item.
    fn end(&self, out: &mut Vec<u8>) {
        if self.current > 0 {
            out.push(if self.pending_mark.is_some() {
                self.one_op()
            } else {
                self.many_op()
            });
        }
        if self.kind != BatchKind::List && self.total > 0 && self.total.is_multiple_of(BATCH_SIZE) {
            // CPython's loop for dicts and sets runs once more after a full batch.
            out.extend_from_slice(&[op::MARK, self.many_op()]);
        }
    }
}

/// A sequence so far made only of `u8`s, or a list being written.
enum SeqState {
    /// Every element so far was a `u8`: they become a `bytes` if the rest are too.
    Bytes(Vec<u8>),
    /// A list is being written.
    List(Batch),
}

/// Serializes sequences: `bytes` if every element is a `u8`, else a `list`.
pub(super) struct SeqEncoder<'a> {
    /// The writer.
    p: &'a mut Pickler,
    /// The announced length.
    hint: Option<usize>,
    /// What is being written.
    state: SeqState,
}

impl SeqEncoder<'_> {
    /// Switches to list mode: writes the list header and the `u8`s buffered so far as ints.
    fn start_list(&mut self) -> Result<()> {
        let SeqState::Bytes(buffered) = &mut self.state else {
            return Ok(());
        };
        let buffered = std::mem::take(buffered);
        self.p.enter()?;
        self.p.out.push(op::EMPTY_LIST);
        let mut batch = Batch::new(BatchKind::List, self.hint);
        for b in buffered {
            batch.before_item(&mut self.p.out);
            self.p.write_int(i128::from(b))?;
            batch.after_item(&mut self.p.out);
        }
        self.state = SeqState::List(batch);
        Ok(())
    }
}

impl ser::SerializeSeq for SeqEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if let SeqState::Bytes(buffered) = &mut self.state {
            if let Some(b) = as_u8(value) {
                if buffered.capacity() == 0 {
                    buffered.reserve(self.hint.unwrap_or(0).clamp(1, 64 * 1024));
                }
                buffered.push(b);
                return Ok(());
            }
            self.start_list()?;
        }
        if let SeqState::List(batch) = &mut self.state {
            batch.before_item(&mut self.p.out);
            value.serialize(&mut *self.p)?;
            batch.after_item(&mut self.p.out);
        }
        Ok(())
    }

    fn end(self) -> Result<()> {
        match self.state {
            SeqState::Bytes(buffered) if buffered.is_empty() => {
                self.p.enter()?;
                self.p.out.push(op::EMPTY_LIST);
                self.p.leave();
            }
            SeqState::Bytes(buffered) => self.p.write_bytes(&buffered)?,
            SeqState::List(batch) => {
                batch.end(&mut self.p.out);
                self.p.leave();
            }
        }
        Ok(())
    }
}

/// A tuple so far made only of `u8`s, or a tuple being written.
enum TupleState {
    /// Every element so far was a `u8`.
    Bytes(Vec<u8>),
    /// A tuple is being written.
    Items {
        /// Elements written.
        count: usize,
        /// Where the first element starts (for a late `MARK`).
        start: usize,
        /// A `MARK` precedes the elements (more than 3 elements).
        marked: bool,
    },
}

/// Serializes tuples, tuple structs and tuple variants: `bytes` if every element is a `u8`,
/// else a `tuple` (`TUPLE1`-`TUPLE3` up to three elements, `MARK ... TUPLE` above).
pub(super) struct TupleEncoder<'a> {
    /// The writer.
    p: &'a mut Pickler,
    /// The announced length.
    hint: usize,
    /// The tuple is the data of an enum variant: close its dict too.
    variant: bool,
    /// What is being written.
    state: TupleState,
}

impl<'a> TupleEncoder<'a> {
    /// Starts a tuple of `hint` elements.
    fn new(p: &'a mut Pickler, hint: usize, variant: bool) -> Self {
        TupleEncoder {
            p,
            hint,
            variant,
            state: TupleState::Bytes(Vec::new()),
        }
    }

    /// Switches to tuple mode, writing the `u8`s buffered so far as ints.
    fn start_tuple(&mut self) -> Result<()> {
        let TupleState::Bytes(buffered) = &mut self.state else {
            return Ok(());
        };
        let buffered = std::mem::take(buffered);
        self.p.enter()?;
        let marked = self.hint > 3;
        if marked {
            self.p.out.push(op::MARK);
        }
        self.state = TupleState::Items {
            count: 0,
            start: self.p.out.len(),
            marked,
        };
        for b in buffered {
            self.before_item();
            self.p.write_int(i128::from(b))?;
        }
        Ok(())
    }

    /// Counts an element about to be written; adds a late `MARK` if the tuple turns out longer
    /// than announced.
    fn before_item(&mut self) {
        if let TupleState::Items {
            count,
            start,
            marked,
        } = &mut self.state
        {
            if !*marked && *count == 3 {
                self.p.out.insert(*start, op::MARK);
                *marked = true;
            }
            *count += 1;
        }
    }

    /// Writes one element.
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if let TupleState::Bytes(buffered) = &mut self.state {
            if let Some(b) = as_u8(value) {
                buffered.push(b);
                return Ok(());
            }
            self.start_tuple()?;
        }
        self.before_item();
        value.serialize(&mut *self.p)
    }

    /// Closes the tuple (and the variant dict).
    fn finish(self) -> Result<()> {
        match self.state {
            TupleState::Bytes(buffered) if buffered.is_empty() => {
                self.p.enter()?;
                self.p.out.push(op::EMPTY_TUPLE);
                self.p.leave();
            }
            TupleState::Bytes(buffered) => self.p.write_bytes(&buffered)?,
            TupleState::Items { count, marked, .. } => {
                self.p.out.push(match (marked, count) {
                    (true, _) => op::TUPLE,
                    (false, 0) => op::EMPTY_TUPLE,
                    (false, 1) => op::TUPLE1,
                    (false, 2) => op::TUPLE2,
                    (false, _) => op::TUPLE3,
                });
                self.p.leave();
            }
        }
        if self.variant {
            self.p.end_variant();
        }
        Ok(())
    }
}

impl ser::SerializeTuple for TupleEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for TupleEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for TupleEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// Serializes maps, structs and struct variants as a `dict`.
pub(super) struct MapEncoder<'a> {
    /// The writer.
    p: &'a mut Pickler,
    /// Batching of the entries.
    batch: Batch,
    /// The dict is the data of an enum variant: close the variant dict too.
    variant: bool,
}

impl<'a> MapEncoder<'a> {
    /// Opens a dict of `hint` entries.
    fn new(p: &'a mut Pickler, hint: Option<usize>, variant: bool) -> Result<Self> {
        p.enter()?;
        p.out.push(op::EMPTY_DICT);
        Ok(MapEncoder {
            p,
            batch: Batch::new(BatchKind::Dict, hint),
            variant,
        })
    }

    /// Writes a `str`-keyed entry.
    #[inline]
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.batch.before_item(&mut self.p.out);
        self.p.write_str(key)?;
        value.serialize(&mut *self.p)?;
        self.batch.after_item(&mut self.p.out);
        Ok(())
    }

    /// Closes the dict (and the variant dict).
    fn finish(self) {
        self.batch.end(&mut self.p.out);
        self.p.leave();
        if self.variant {
            self.p.end_variant();
        }
    }
}

impl ser::SerializeMap for MapEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.batch.before_item(&mut self.p.out);
        key.serialize(&mut *self.p)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.p)?;
        self.batch.after_item(&mut self.p.out);
        Ok(())
    }

    fn end(self) -> Result<()> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStruct for MapEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStructVariant for MapEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.finish();
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Pickler {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqEncoder<'a>;
    type SerializeTuple = TupleEncoder<'a>;
    type SerializeTupleStruct = TupleEncoder<'a>;
    type SerializeTupleVariant = TupleEncoder<'a>;
    type SerializeMap = MapEncoder<'a>;
    type SerializeStruct = MapEncoder<'a>;
    type SerializeStructVariant = MapEncoder<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { op::NEWTRUE } else { op::NEWFALSE });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        self.write_int(v)
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.write_int(i128::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        self.write_u128(v)
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        self.write_float(f64::from(v));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        self.write_float(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.write_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.write_str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.write_bytes(v)
    }

    fn serialize_none(self) -> Result<()> {
        self.out.push(op::NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.out.push(op::NONE);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.out.push(op::NONE);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.write_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        match name {
            SET_MAGIC => value.serialize(SetSerializer {
                p: self,
                frozen: false,
            }),
            FROZENSET_MAGIC => value.serialize(SetSerializer {
                p: self,
                frozen: true,
            }),
            BIGINT_MAGIC => {
                let bytes = value.serialize(BigIntCapture)?;
                self.write_bigint(&bytes)
            }
            _ => value.serialize(self),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.start_variant(variant)?;
        value.serialize(&mut *self)?;
        self.end_variant();
        Ok(())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqEncoder<'a>> {
        // The byte buffer is allocated at the first `u8`: a sequence of anything else never
        // allocates one.
        Ok(SeqEncoder {
            p: self,
            hint: len,
            state: SeqState::Bytes(Vec::new()),
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<TupleEncoder<'a>> {
        Ok(TupleEncoder::new(self, len, false))
    }

    /// A collection whose element type is `u8` (`Vec<u8>`, `&[u8]` inside a structure) is
    /// collected in one pass instead of element by element; the output is the same as
    /// [`SeqEncoder`]'s: `bytes`, or `[]` when empty.
    fn collect_seq<I>(self, iter: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        if crate::known::is_u8::<I::Item>() {
            let bytes = crate::known::u8_elements(iter);
            return match bytes.size_hint() {
                // Written in place: no buffer of its own.
                (n, Some(hi)) if n == hi && n > 0 => self.write_bytes_from(n, bytes),
                _ => {
                    let bytes: Vec<u8> = bytes.collect();
                    self.write_u8_collection(&bytes)
                }
            };
        }
        crate::known::collect_seq_default(self, iter)
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<TupleEncoder<'a>> {
        Ok(TupleEncoder::new(self, len, false))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleEncoder<'a>> {
        self.start_variant(variant)?;
        Ok(TupleEncoder::new(self, len, true))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapEncoder<'a>> {
        MapEncoder::new(self, len, false)
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapEncoder<'a>> {
        MapEncoder::new(self, Some(len), false)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapEncoder<'a>> {
        self.start_variant(variant)?;
        MapEncoder::new(self, Some(len), true)
    }
}

/// Serializes the items of a [`Value::Set`](crate::value::Value::Set) or `FrozenSet` (the
/// payload of the set newtype structs) as a Python `set`/`frozenset`.
struct SetSerializer<'a> {
    /// The writer.
    p: &'a mut Pickler,
    /// `frozenset` rather than `set`.
    frozen: bool,
}

/// How a set's items are being written.
enum SetMode {
    /// Protocol 4+ `set`: `EMPTY_SET`, then `MARK ... ADDITEMS` batches.
    Set(Batch),
    /// Protocol 4+ `frozenset`: `MARK ... FROZENSET`.
    FrozenSet,
    /// Protocol 3: `builtins.set(list)` (or `frozenset`) via `REDUCE`; the batching is the
    /// list's.
    Reduce(Batch),
}

/// Writes a set's items.
pub(super) struct SetEncoder<'a> {
    /// The writer.
    p: &'a mut Pickler,
    /// How the items are written.
    mode: SetMode,
}

impl ser::SerializeSeq for SetEncoder<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match &mut self.mode {
            SetMode::Set(batch) | SetMode::Reduce(batch) => {
                batch.before_item(&mut self.p.out);
                value.serialize(&mut *self.p)?;
                batch.after_item(&mut self.p.out);
            }
            SetMode::FrozenSet => value.serialize(&mut *self.p)?,
        }
        Ok(())
    }

    fn end(self) -> Result<()> {
        match &self.mode {
            SetMode::Set(batch) => batch.end(&mut self.p.out),
            SetMode::FrozenSet => self.p.out.push(op::FROZENSET),
            SetMode::Reduce(batch) => {
                batch.end(&mut self.p.out);
                self.p.out.extend_from_slice(&[op::TUPLE1, op::REDUCE]);
            }
        }
        self.p.leave();
        Ok(())
    }
}

/// The error for a misuse of the private set and big integer newtype structs.
fn private_misuse() -> Error {
    encode_error("internal error: a private dcache newtype struct was misused")
}

/// Generates serializer methods that reject their input with [`private_misuse`].
macro_rules! reject {
    ($ok:ty; $($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<$ok> {
                Err(private_misuse())
            }
        )*
    };
}

/// Generates the serializer methods other than scalars, all rejecting their input.
macro_rules! reject_compound {
    ($ok:ty) => {
        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<$ok> {
            Err(private_misuse())
        }

        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<$ok> {
            Err(private_misuse())
        }

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok> {
            Err(private_misuse())
        }

        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
            Err(private_misuse())
        }

        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct> {
            Err(private_misuse())
        }

        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant> {
            Err(private_misuse())
        }

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
            Err(private_misuse())
        }

        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
            Err(private_misuse())
        }

        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant> {
            Err(private_misuse())
        }
    };
}

impl<'a> ser::Serializer for SetSerializer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SetEncoder<'a>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_seq(self, len: Option<usize>) -> Result<SetEncoder<'a>> {
        let p = self.p;
        p.enter()?;
        let mode = if p.proto >= 4 {
            if self.frozen {
                p.out.push(op::MARK);
                SetMode::FrozenSet
            } else {
                p.out.push(op::EMPTY_SET);
                SetMode::Set(Batch::new(BatchKind::Set, len))
            }
        } else {
            let name: &[u8] = if self.frozen { b"frozenset" } else { b"set" };
            p.out.extend_from_slice(b"cbuiltins\n");
            p.out.extend_from_slice(name);
            p.out.extend_from_slice(&[b'\n', op::EMPTY_LIST]);
            SetMode::Reduce(Batch::new(BatchKind::List, len))
        };
        Ok(SetEncoder { p, mode })
    }

    reject! { ();
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    reject_compound!(());
}

/// Captures the bytes of a big integer (the payload of the big integer newtype struct).
struct BigIntCapture;

impl ser::Serializer for BigIntCapture {
    type Ok = Vec<u8>;
    type Error = Error;
    type SerializeSeq = Impossible<Vec<u8>, Error>;
    type SerializeTuple = Impossible<Vec<u8>, Error>;
    type SerializeTupleStruct = Impossible<Vec<u8>, Error>;
    type SerializeTupleVariant = Impossible<Vec<u8>, Error>;
    type SerializeMap = Impossible<Vec<u8>, Error>;
    type SerializeStruct = Impossible<Vec<u8>, Error>;
    type SerializeStructVariant = Impossible<Vec<u8>, Error>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>> {
        Ok(v.to_vec())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(private_misuse())
    }

    reject! { Vec<u8>;
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    reject_compound!(Vec<u8>);
}
