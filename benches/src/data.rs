//! Keys, values and a deterministic random order, identical for every implementation
//! (`benches/python/bench_diskcache.py` builds the same keys and values).

/// The standard key: `key-%08d`.
#[must_use]
pub fn key(i: usize) -> String {
    format!("key-{i:08}")
}

/// Keys `key-%08d` for `range`, in order.
#[must_use]
pub fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(key).collect()
}

/// A 100-byte value, distinct per `i` (W1, W2, W5).
#[must_use]
pub fn value_100(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i:08}-").into_bytes();
    v.resize(100, b'x');
    v
}

/// A 1 MiB value, distinct per `i` (W3).
#[must_use]
pub fn value_1mib(i: usize) -> Vec<u8> {
    let mut v = vec![0u8; 1 << 20];
    let mut rng = Rng::new(i as u64 + 1);
    for chunk in v.chunks_mut(8) {
        let x = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&x[..chunk.len()]);
    }
    v
}

/// The values of python's benchmark mix: lengths 1 to 100 bytes (index `len - 1`).
#[must_use]
pub fn mix_values() -> Vec<Vec<u8>> {
    (1..=100).map(|len| vec![b'v'; len]).collect()
}

/// splitmix64: a small, fast, deterministic generator (no dependency, same sequence everywhere).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `0..n` in a random order fixed by `seed`.
#[must_use]
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_have_the_documented_shape() {
        assert_eq!(key(42), "key-00000042");
        assert_eq!(value_100(7).len(), 100);
        assert_ne!(value_100(1), value_100(2));
        assert_eq!(value_1mib(0).len(), 1 << 20);
        let mix = mix_values();
        assert_eq!((mix[0].len(), mix[99].len()), (1, 100));
    }

    #[test]
    fn shuffled_is_a_permutation() {
        let mut v = shuffled(1000, 3);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}
