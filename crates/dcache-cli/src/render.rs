//! How keys, values, tags, sizes and times are printed, as text and as JSON.

use std::time::SystemTime;

use dcache::cache::{EntryInfo, unix_seconds};
use dcache::disk::{Mode, SqlRef, SqlValue};
use dcache::{Tag, Value};

/// A key or value as human text: strings as they are (control characters escaped, so an
/// entry stays on one line), numbers as numbers, bytes as `hex:…`, anything else as python's
/// repr.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Str(s) => escape_controls(s),
        Value::Bytes(b) => format!("hex:{}", hex(b)),
        other => other.to_string(),
    }
}

/// Escapes the characters that would break a line or a tab-separated column.
pub(crate) fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // Control characters (Unicode category Cc) are all below U+00A0.
                let code = u32::from(c) as usize;
                out.push_str("\\x");
                out.push(char::from(HEX[(code >> 4) & 0xf]));
                out.push(char::from(HEX[code & 0xf]));
            }
            c => out.push(c),
        }
    }
    out
}

/// Lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Parses hex digits (upper or lower case, an optional `0x` prefix).
pub(crate) fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s).as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{s:?} has an odd number of hex digits"));
    }
    let nibble = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{s:?} is not hex: {:?}", char::from(c))),
        }
    };
    digits
        .chunks_exact(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Standard base64 with padding (RFC 4648), as JSON output carries bytes.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A size in bytes for people: `512 B`, `40.0 KiB`, `5.0 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// An RFC 3339 UTC time to the second: `2024-05-01T12:00:00Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = unix_seconds(t).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A tag as a [`Value`], to print it like keys and values.
pub(crate) fn tag_value(tag: &Tag) -> Value {
    match tag {
        Tag::Text(s) => Value::Str(s.clone()),
        Tag::Blob(b) => Value::Bytes(b.clone()),
        Tag::Integer(i) => Value::Int(*i),
        Tag::Real(f) => Value::Float(*f),
    }
}

/// A value as structured JSON (see [`crate::jsonvalue`]) and its python type name.
pub(crate) fn json_value(value: &Value) -> (serde_json::Value, &'static str) {
    (crate::jsonvalue::to_json(value), value.type_name())
}

/// A settings value as JSON (its SQLite storage class kept where JSON can).
pub(crate) fn json_sql(value: &SqlValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        SqlValue::Null => J::Null,
        SqlValue::Integer(i) => J::from(*i),
        SqlValue::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        SqlValue::Text(s) => J::String(s.clone()),
        SqlValue::Blob(b) => J::String(base64(b)),
    }
}

/// What kind of value an entry holds, without reading it: `bytes`, `text`, `int`, `float`,
/// `pickle`, `msgpack`.
pub(crate) fn stored_kind(entry: &EntryInfo) -> String {
    match entry.mode {
        Mode::RAW => match entry.stored().map(|s| s.value) {
            Some(SqlRef::Text(_)) => "text".to_owned(),
            Some(SqlRef::Integer(_)) => "int".to_owned(),
            Some(SqlRef::Real(_)) => "float".to_owned(),
            _ => "bytes".to_owned(),
        },
        Mode::BINARY => "bytes".to_owned(),
        Mode::TEXT => "text".to_owned(),
        Mode::PICKLE => "pickle".to_owned(),
        Mode::MSGPACK => "msgpack".to_owned(),
        Mode(other) => format!("mode {other}"),
    }
}

/// The summary printed instead of a large value: `<file 5.0 MiB bytes>`.
pub(crate) fn summary(entry: &EntryInfo) -> String {
    format!(
        "<{} {} {}>",
        if entry.in_file() { "file" } else { "inline" },
        human_size(entry.value_size()),
        stored_kind(entry)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn text_keeps_strings_and_numbers_and_shows_bytes_as_hex() {
        assert_eq!(text(&Value::from("héllo")), "héllo");
        assert_eq!(text(&Value::from("a\tb\nc\u{1}")), "a\\tb\\nc\\x01");
        assert_eq!(text(&Value::from(42)), "42");
        assert_eq!(text(&Value::from(1.5)), "1.5");
        assert_eq!(text(&Value::from(b"\x00\xff".to_vec())), "hex:00ff");
        assert_eq!(
            text(&Value::Tuple(vec![Value::from(1), Value::from("a")])),
            "(1, 'a')"
        );
        assert_eq!(text(&Value::None), "None");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(parse_hex("0001ABff"), Ok(vec![0, 1, 0xab, 0xff]));
        assert_eq!(parse_hex("0x10"), Ok(vec![0x10]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_size(1 << 30), "1.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn times_in_rfc_3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59Z");
        assert!((unix_seconds(t) - 1.7e9).abs() < 1e-6);
        assert!((unix_seconds(before) + 1.0).abs() < 1e-9);
    }

    #[test]
    fn json_values_are_structured() {
        assert_eq!(
            json_value(&Value::from("a")),
            (serde_json::json!("a"), "str")
        );
        assert_eq!(
            json_value(&Value::from(b"foo".to_vec())),
            (serde_json::json!({"$bytes": "Zm9v"}), "bytes")
        );
        assert_eq!(
            json_value(&Value::Dict(vec![(Value::from(1), Value::Set(vec![]))])),
            (serde_json::json!({"$dict": [[1, {"$set": []}]]}), "dict")
        );
    }
}
