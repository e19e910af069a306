//! [`Value`]'s [`Serialize`] impl: written back as the same Python types through pickle.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, Serializer};

use super::{FROZENSET_MAGIC, SET_MAGIC, Value};
use crate::error::Result;

/// Serializes as the matching serde data model type. Through the pickle encoder every variant
/// is written back as the same Python type; other formats see tuples and sets as sequences and
/// integers beyond 128 bits as described on [`BigInt`](super::BigInt)'s `Serialize` impl.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::None => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::BigInt(b) => b.serialize(serializer),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Set(items) => serializer.serialize_newtype_struct(SET_MAGIC, &Items(items)),
            Value::FrozenSet(items) => {
                serializer.serialize_newtype_struct(FROZENSET_MAGIC, &Items(items))
            }
        }
    }
}

/// The items of a set, serialized as a sequence.
struct Items<'a>(&'a [Value]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}
