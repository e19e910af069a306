//! Byte types recognized by their type id, so that their bytes move whole.
//!
//! Serde has no "bytes" marker for `Vec<u8>`, `&[u8]` or `Box<[u8]>`: they serialize as a
//! sequence of `u8` (one call per byte) and deserialize through the visitor of `Vec<T>`,
//! which accepts only `visit_seq` (one call per byte again). For a 1 MiB value that is about
//! 1 ms each way, ten times a file read. Here the type itself is recognized instead: when
//! `V` *is* one of these types, its bytes are borrowed (to store) or the buffer read from the
//! file is handed over (to fetch) without serde.
//!
//! The values reach the disk as generic `&V` / `V` without a `'static` bound (a
//! `cache.set(key, &bytes[..])` borrows), so [`std::any::Any`] cannot be used. `typeid::of`
//! gives the [`TypeId`] of a type with its lifetimes erased (dtolnay's `typeid` crate, as
//! `erased-serde` uses it); the types compared here have no lifetime of their own except
//! references, which are only read through for as long as the outer borrow lasts. The one
//! `unsafe` operation per type is the cast of a reference (or the move of a value) to the type
//! its id was checked against.

#![allow(unsafe_code)]

use std::any::TypeId;
use std::borrow::Cow;

/// Whether a collection's element type is `u8` (or `&u8`, what a slice iterator yields):
/// serializers collect such a collection as bytes in one pass. Unlike the casts below, a
/// comparison of ids needs no `unsafe`.
pub(crate) fn is_u8<T>() -> bool {
    let id = typeid::of::<T>();
    id == TypeId::of::<u8>() || id == TypeId::of::<&'static u8>()
}

/// The bytes of an iterator of `u8` (see [`is_u8`]), lazily, each one read through serde's
/// own `Serialize` for `u8` (so the fallback `0` is never used).
pub(crate) fn u8_elements<I>(iter: I) -> impl Iterator<Item = u8>
where
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    iter.into_iter()
        .map(|b| crate::probe::as_u8(&b).unwrap_or_default())
}

/// serde's default `collect_seq` (a sequence of the iterator's length when it is exact), for
/// serializers that first handle collections of `u8` themselves.
pub(crate) fn collect_seq_default<S, I>(serializer: S, iter: I) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    use serde::ser::SerializeSeq;
    let iter = iter.into_iter();
    let hint = match iter.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    };
    let mut seq = serializer.serialize_seq(hint)?;
    for element in iter {
        seq.serialize_element(&element)?;
    }
    seq.end()
}

/// Returns `value`'s bytes when `V` is a byte type whose serde form is a sequence of `u8`:
/// `[u8]`, `Vec<u8>`, `Box<[u8]>`, `Cow<[u8]>`, or a reference (or a reference to a
/// reference) to one of them. Other types, `[u8; N]` and `VecDeque<u8>` included, are `None`:
/// they take serde's path.
///
/// `serde_bytes` types and `bytes::Bytes` need no entry here: they call `serialize_bytes`,
/// which hands their bytes over whole already.
pub(crate) fn byte_slice<V: ?Sized>(value: &V) -> Option<&[u8]> {
    let id = typeid::of::<V>();
    let ptr = std::ptr::from_ref(value);
    // Each cast below is to the type whose id `V`'s was just found equal to. `typeid::of`
    // erases lifetimes only, so `V` is that type with possibly different lifetimes, all of
    // which outlive the borrow of `value` (`V` is borrowed for it); every type here is
    // covariant in them, so reading `V` with the lifetime of `value` is sound. The result
    // borrows from `value` (or from what `value` borrows) for no longer than `value` does.
    if id == TypeId::of::<[u8]>() {
        // SAFETY: `V` is `[u8]`, so `&V` is a `&[u8]`: same lifetime, same fat pointer.
        Some(unsafe { std::mem::transmute_copy::<&V, &[u8]>(&value) })
    } else if id == TypeId::of::<&'static [u8]>() {
        // SAFETY: `V` is `&[u8]` (see above).
        Some(unsafe { *ptr.cast::<&[u8]>() })
    } else if id == TypeId::of::<&'static &'static [u8]>() {
        // SAFETY: `V` is `&&[u8]`.
        Some(unsafe { **ptr.cast::<&&[u8]>() })
    } else if id == TypeId::of::<Vec<u8>>() {
        // SAFETY: `V` is `Vec<u8>`.
        Some(unsafe { &*ptr.cast::<Vec<u8>>() })
    } else if id == TypeId::of::<&'static Vec<u8>>() {
        // SAFETY: `V` is `&Vec<u8>`.
        Some(unsafe { *ptr.cast::<&Vec<u8>>() })
    } else if id == TypeId::of::<&'static &'static Vec<u8>>() {
        // SAFETY: `V` is `&&Vec<u8>`.
        Some(unsafe { **ptr.cast::<&&Vec<u8>>() })
    } else if id == TypeId::of::<Box<[u8]>>() {
        // SAFETY: `V` is `Box<[u8]>`.
        Some(unsafe { &*ptr.cast::<Box<[u8]>>() })
    } else if id == TypeId::of::<&'static Box<[u8]>>() {
        // SAFETY: `V` is `&Box<[u8]>`.
        Some(unsafe { *ptr.cast::<&Box<[u8]>>() })
    } else if id == TypeId::of::<Cow<'static, [u8]>>() {
        // SAFETY: `V` is `Cow<[u8]>`.
        Some(unsafe { &*ptr.cast::<Cow<'_, [u8]>>() })
    } else if id == TypeId::of::<&'static Cow<'static, [u8]>>() {
        // SAFETY: `V` is `&Cow<[u8]>`.
        Some(unsafe { *ptr.cast::<&Cow<'_, [u8]>>() })
    } else {
        None
    }
}

/// Moves `bytes` into a `V` when `V` is `Vec<u8>`, `Box<[u8]>` or `Cow<'static, [u8]>` (serde
/// builds all three through `Vec<u8>`'s byte-by-byte visitor); gives `bytes` back otherwise.
pub(crate) fn from_byte_buf<V>(bytes: Vec<u8>) -> Result<V, Vec<u8>> {
    let id = typeid::of::<V>();
    if id == TypeId::of::<Vec<u8>>() {
        Ok(cast_owned::<Vec<u8>, V>(bytes))
    } else if id == TypeId::of::<Box<[u8]>>() {
        Ok(cast_owned::<Box<[u8]>, V>(bytes.into_boxed_slice()))
    } else if id == TypeId::of::<Cow<'static, [u8]>>() {
        // `V` may be `Cow<'a, [u8]>` for a shorter `'a`: an owned `Cow` is valid for any.
        Ok(cast_owned::<Cow<'static, [u8]>, V>(Cow::Owned(bytes)))
    } else {
        Err(bytes)
    }
}

/// Whether [`from_byte_buf`] moves a buffer into a `V`.
pub(crate) fn is_byte_buf<V>() -> bool {
    let id = typeid::of::<V>();
    id == TypeId::of::<Vec<u8>>()
        || id == TypeId::of::<Box<[u8]>>()
        || id == TypeId::of::<Cow<'static, [u8]>>()
}

/// Moves `value` into a `V`. Only called once the type ids of `S` and `V` were found equal.
fn cast_owned<S: 'static, V>(value: S) -> V {
    debug_assert!(typeid::of::<V>() == TypeId::of::<S>());
    let value = std::mem::ManuallyDrop::new(value);
    // SAFETY: `V` is `S` up to lifetimes (equal type ids, checked by every caller); `S` is
    // `'static`, so `V` is `S` with some lifetimes shortened, which the callers' types
    // (`Vec<u8>`, `Box<[u8]>`, `Cow<'static, [u8]>`, all covariant) allow. `S` is not dropped
    // (`ManuallyDrop`): ownership moves to the returned `V`.
    unsafe { std::mem::transmute_copy::<S, V>(&value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_types_are_recognized_behind_references() {
        let vec = vec![1u8, 2];
        let boxed: Box<[u8]> = vec.clone().into_boxed_slice();
        let cow: Cow<'_, [u8]> = Cow::Borrowed(&vec);
        let slice: &[u8] = &vec;
        let expected: Option<&[u8]> = Some(&[1, 2]);
        assert_eq!(byte_slice::<[u8]>(slice), expected);
        assert_eq!(byte_slice(&slice), expected);
        assert_eq!(byte_slice(&&slice), expected);
        assert_eq!(byte_slice(&vec), expected);
        assert_eq!(byte_slice(&&vec), expected);
        assert_eq!(byte_slice(&&&vec), expected);
        assert_eq!(byte_slice(&boxed), expected);
        assert_eq!(byte_slice(&&boxed), expected);
        assert_eq!(byte_slice(&cow), expected);
        assert_eq!(byte_slice(&&cow), expected);
        // Borrowed, not copied.
        assert_eq!(byte_slice(&&vec).map(<[u8]>::as_ptr), Some(vec.as_ptr()));
        assert_eq!(byte_slice(&slice).map(<[u8]>::as_ptr), Some(slice.as_ptr()));
    }

    #[test]
    fn other_types_are_not_bytes() {
        assert_eq!(byte_slice(&[1u8, 2]), None);
        assert_eq!(byte_slice(&vec![1i8, 2]), None);
        assert_eq!(byte_slice(&vec![1u16, 2]), None);
        assert_eq!(byte_slice(&Vec::<String>::new()), None);
        assert_eq!(byte_slice(&std::collections::VecDeque::from([1u8])), None);
        assert_eq!(byte_slice("text"), None);
        assert_eq!(byte_slice(&&&&vec![1u8]), None);
    }

    #[test]
    fn buffers_move_into_byte_types_only() {
        let ptr = |v: &[u8]| v.as_ptr();
        let buf = vec![7u8; 100];
        let at = buf.as_ptr();
        let vec: Vec<u8> = from_byte_buf(buf).unwrap();
        assert_eq!(ptr(&vec), at, "moved, not copied");
        let boxed: Box<[u8]> = from_byte_buf(vec).unwrap();
        assert_eq!(&*boxed, &[7u8; 100][..]);
        let cow: Cow<'_, [u8]> = from_byte_buf(boxed.into_vec()).unwrap();
        assert!(matches!(cow, Cow::Owned(ref v) if v.len() == 100));
        assert_eq!(from_byte_buf::<String>(vec![1]), Err(vec![1]));
        assert_eq!(from_byte_buf::<Vec<i8>>(vec![1]), Err(vec![1]));
        assert_eq!(from_byte_buf::<[u8; 1]>(vec![1]), Err(vec![1]));
    }
}
