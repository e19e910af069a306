//! python-diskcache's `Disk.hash`, which FanoutCache uses to choose a shard.

use crate::sql::{DbKey, SqlValue};

/// Adler-32 as `zlib.adler32` computes it (starting value 1).
#[must_use]
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 is the largest n with 255 n (n + 1) / 2 + (n + 1) (MOD - 1) < 2^32: no overflow.
    const NMAX: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(NMAX) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The 32-bit hash python-diskcache computes for an encoded key.
///
/// Blob keys hash their bytes with Adler-32, text keys their UTF-8 bytes, integer keys are
/// reduced modulo 4294967295 (python's floor modulo, so never negative) and real keys hash
/// their 8-byte big-endian IEEE representation. `NULL` (which python never produces) hashes
/// to 0.
///
/// # Examples
///
/// ```
/// use dcache_disk::{python_hash, DbKey, SqlValue};
///
/// let key = DbKey { value: SqlValue::Text("key".into()), raw: true };
/// assert_eq!(python_hash(&key), 42402122);
/// assert_eq!(python_hash(&key) % 8, 2); // the shard of 8 python's FanoutCache picks
/// ```
#[must_use]
pub fn python_hash(key: &DbKey) -> u32 {
    const MASK: i128 = 0xFFFF_FFFF;
    match &key.value {
        SqlValue::Blob(b) => adler32(b),
        SqlValue::Text(s) => adler32(s.as_bytes()),
        // rem_euclid by a positive modulus lies in 0..MASK, which fits in u32.
        SqlValue::Integer(i) => i128::from(*i).rem_euclid(MASK) as u32,
        SqlValue::Real(f) => adler32(&f.to_be_bytes()),
        SqlValue::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: SqlValue) -> DbKey {
        DbKey { value, raw: true }
    }

    #[test]
    fn matches_python_vectors() {
        assert_eq!(python_hash(&key(SqlValue::Text("key".into()))), 42_402_122);
        assert_eq!(
            python_hash(&key(SqlValue::Blob(b"key".to_vec()))),
            42_402_122
        );
        assert_eq!(
            python_hash(&key(SqlValue::Text("héllo".into()))),
            192_152_348
        );
        assert_eq!(python_hash(&key(SqlValue::Integer(-1))), 4_294_967_294);
        assert_eq!(
            python_hash(&key(SqlValue::Integer(i64::MAX))),
            2_147_483_647
        );
        assert_eq!(
            python_hash(&key(SqlValue::Integer(i64::MIN))),
            2_147_483_647
        );
        assert_eq!(python_hash(&key(SqlValue::Real(1.0))), 143_655_216);
        assert_eq!(python_hash(&key(SqlValue::Real(1.5))), 147_325_240);
    }

    #[test]
    fn adler32_handles_long_inputs_without_overflow() {
        // Reference value from zlib.adler32(b'\xff' * 100000).
        assert_eq!(adler32(&vec![0xff; 100_000]), 0x149a_302c);
        assert_eq!(adler32(b""), 1);
    }
}
