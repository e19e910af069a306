//! [`Value`] as a serde [`Deserializer`]: [`from_value`] into any serde type.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, Unexpected, VariantAccess,
    Visitor,
};

use super::{BIGINT_TAG, BigInt, FROZENSET_TAG, SET_TAG, TUPLE_TAG, VALUE_MAGIC, Value};
use crate::error::{Error, Result};

/// Deserializes a [`Value`] into any serde type, e.g. the result of
/// [`pickle::value_from_slice`](crate::pickle::value_from_slice).
///
/// Python `bytes` read as `Vec<u8>`, `[u8; N]` and byte buffers; ints read as any Rust integer
/// they fit (else [`Error::WrongType`]) and as floats; a `str` reads as a unit enum variant and
/// a one-entry `dict` as a variant with data; `None` reads as `()` and as `Option::None`.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(value)
}

impl IntoDeserializer<'_, Error> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

/// Visits `items` as a sequence, checking that the visitor consumed all of them (a
/// `[u8; 2]` is not read from three bytes).
pub(crate) fn visit_all<'de, I, V>(items: I, visitor: V) -> Result<V::Value>
where
    I: Iterator,
    I::Item: IntoDeserializer<'de, Error>,
    V: Visitor<'de>,
{
    let mut seq = de::value::SeqDeserializer::new(items);
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

/// Visits dict entries as a map, checking that the visitor consumed all of them.
fn visit_entries<'de, V: Visitor<'de>>(
    entries: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value> {
    let mut map = de::value::MapDeserializer::new(entries.into_iter());
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

/// Visits a big integer as the smallest integer type it fits, or fails.
fn visit_bigint<'de, V: Visitor<'de>>(big: &BigInt, visitor: V) -> Result<V::Value> {
    if let Some(v) = big.to_i64() {
        visitor.visit_i64(v)
    } else if let Some(v) = big.to_u64() {
        visitor.visit_u64(v)
    } else if let Some(v) = big.to_i128() {
        visitor.visit_i128(v)
    } else if let Some(v) = big.to_u128() {
        visitor.visit_u128(v)
    } else {
        let found = format!("{} (too large for 128 bits)", big.describe());
        Err(de::Error::invalid_type(Unexpected::Other(&found), &visitor))
    }
}

/// Generates the `Deserializer` methods for scalar types: containers and `None` are reported
/// as such (serde's visitors would say "sequence" or "unit value"), the rest is visited as is
/// (an int reads as a float, range checks are the visitor's).
macro_rules! scalar_methods {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                match self {
                    Value::None
                    | Value::List(_)
                    | Value::Tuple(_)
                    | Value::Dict(_)
                    | Value::Set(_)
                    | Value::FrozenSet(_) => Err(self.invalid_type(&visitor)),
                    other => other.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::BigInt(big) => visit_bigint(&big, visitor),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_all(items.into_iter(), visitor),
            Value::Dict(entries) => visit_entries(entries, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name != VALUE_MAGIC {
            return visitor.visit_newtype_struct(self);
        }
        // `Value`'s own `Deserialize` impl: pass the types serde has no model for as enums.
        let (tag, payload) = match self {
            Value::Tuple(items) => (TUPLE_TAG, Value::List(items)),
            Value::Set(items) => (SET_TAG, Value::List(items)),
            Value::FrozenSet(items) => (FROZENSET_TAG, Value::List(items)),
            Value::BigInt(big) => (BIGINT_TAG, Value::Bytes(big.into_signed_bytes_le())),
            other => return other.deserialize_any(visitor),
        };
        visitor.visit_enum(TaggedEnum { tag, payload })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visit_all(b.into_iter(), visitor),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_all(items.into_iter(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Dict(entries) => visit_entries(entries, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Dict(entries) => visit_entries(entries, visitor),
            Value::List(items) | Value::Tuple(items) => visit_all(items.into_iter(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_enum(ValueEnum {
                variant: Value::Str(s),
                payload: None,
            }),
            Value::Dict(mut entries) if entries.len() == 1 => match entries.pop() {
                Some((variant, payload)) => visitor.visit_enum(ValueEnum {
                    variant,
                    payload: Some(payload),
                }),
                None => Err(Value::Dict(entries).invalid_type(&visitor)),
            },
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Int(i) if i >= 0 => visitor.visit_u64(i as u64),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        drop(self);
        visitor.visit_unit()
    }

    scalar_methods! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string
    }
}

/// An externally tagged enum read from a `str` (unit variant) or a one-entry `dict`.
struct ValueEnum {
    /// The variant name (or index).
    variant: Value,
    /// The variant's data; `None` for the `str` form.
    payload: Option<Value>,
}

impl<'de> EnumAccess<'de> for ValueEnum {
    type Error = Error;
    type Variant = VariantPayload;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantPayload)> {
        let variant = seed.deserialize(self.variant)?;
        Ok((variant, VariantPayload(self.payload)))
    }
}

/// The data of an enum variant.
struct VariantPayload(Option<Value>);

impl<'de> VariantAccess<'de> for VariantPayload {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(other.invalid_type(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        match self.0 {
            Some(payload) => seed.deserialize(payload),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        match self.0 {
            Some(payload) => payload.deserialize_tuple(len, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Some(payload) => payload.deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }
}

/// How the `Value` deserializer passes a tuple, set, frozenset or big integer to `Value`'s
/// `Deserialize` impl: as a newtype variant tagged with the type.
struct TaggedEnum {
    /// One of the `*_TAG` constants.
    tag: &'static str,
    /// The items as a list, or the integer's bytes.
    payload: Value,
}

impl<'de> EnumAccess<'de> for TaggedEnum {
    type Error = Error;
    type Variant = VariantPayload;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantPayload)> {
        let tag = seed.deserialize(de::value::StrDeserializer::<Error>::new(self.tag))?;
        Ok((tag, VariantPayload(Some(self.payload))))
    }
}
