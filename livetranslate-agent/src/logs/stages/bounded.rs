//! A bounded map for per-stream state (timestamp fudging, rate limits by label): two
//! generations; when the current one is full the previous one is forgotten, so keys used
//! in the last generation survive and memory stays bounded.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// FxHash (rustc's hasher): fast on short keys; not DoS-resistant, which per-stream state
/// keyed by label-set hashes does not need.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fx(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`Fx`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A map holding at most `2 × cap` entries.
#[derive(Debug)]
pub struct Generational<K, V> {
    cap: usize,
    current: FxMap<K, V>,
    previous: FxMap<K, V>,
}

impl<K: Hash + Eq, V> Generational<K, V> {
    /// A map keeping at least the `cap` most recently used keys.
    pub fn new(cap: usize) -> Self {
        Generational {
            cap: cap.max(1),
            current: FxMap::default(),
            previous: FxMap::default(),
        }
    }

    /// The value of `key`, created with `make` when absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.current.contains_key(&key) {
            let old = self.previous.remove(&key);
            if self.current.len() >= self.cap {
                self.previous = std::mem::take(&mut self.current);
            }
            return self.current.entry(key).or_insert(old.unwrap_or_else(make));
        }
        self.current.entry(key).or_insert_with(make)
    }

    /// The value of `key`, if known.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Sets `key`.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(v) = self.current.get_mut(&key) {
            *v = value;
            return;
        }
        self.previous.remove(&key);
        if self.current.len() >= self.cap {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    /// Keys held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_recent_keys() {
        let mut m = Generational::new(2);
        for k in 0..100 {
            m.insert(k, k * 10);
            assert!(m.len() <= 4);
        }
        assert_eq!(m.get(&99), Some(&990));
        assert_eq!(m.get(&0), None);
        *m.get_or_insert_with(99, || 0) += 1;
        assert_eq!(m.get(&99), Some(&991));
        assert_eq!(*m.get_or_insert_with(7, || 70), 70);
    }
}
