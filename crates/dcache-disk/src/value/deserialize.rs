//! [`Value`]'s [`Deserialize`] impl: a [`Value`] built from any self-describing data.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::{BIGINT_TAG, BigInt, FROZENSET_TAG, SET_TAG, TUPLE_TAG, VALUE_MAGIC, Value};
use crate::error::Result;

/// Reads any self-describing data. From a [`Value`] (and so from a pickle) tuples, sets,
/// frozensets and big integers keep their type; from other formats sequences become
/// [`Value::List`] and maps [`Value::Dict`].
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_newtype_struct(VALUE_MAGIC, ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the deserializer offers.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Python value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        // Not `Value::deserialize`: that asks for a newtype struct again, forever.
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(cautious_capacity(seq.size_hint()));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(cautious_capacity(map.size_hint()));
        while let Some(entry) = map.next_entry::<Value, Value>()? {
            entries.push(entry);
        }
        Ok(Value::Dict(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // Only the `Value` deserializer presents enums here, to pass types serde lacks.
        let (tag, variant): (String, _) = data.variant()?;
        let payload: Value = variant.newtype_variant()?;
        match (tag.as_str(), payload) {
            (TUPLE_TAG, Value::List(items)) => Ok(Value::Tuple(items)),
            (SET_TAG, Value::List(items)) => Ok(Value::Set(items)),
            (FROZENSET_TAG, Value::List(items)) => Ok(Value::FrozenSet(items)),
            (BIGINT_TAG, Value::Bytes(bytes)) => Ok(Value::from(BigInt::from_vec(bytes))),
            _ => Err(de::Error::custom(format_args!(
                "cannot read the enum variant `{tag}` as a Python value"
            ))),
        }
    }
}

/// A capacity to preallocate from an untrusted size hint. Small: a declared length costs the
/// input a few bytes at every nesting level (MessagePack's `array32` is 5), and anything more
/// than a few items per level let 1.3 KB of nested declarations preallocate 33 MB.
fn cautious_capacity(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(16)
}
