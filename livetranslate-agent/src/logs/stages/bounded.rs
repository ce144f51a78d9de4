//! A bounded map for per-stream state (timestamp fudging, rate limits by label): two
//! generations; when the current one is full the previous one is forgotten, so keys used
//! in the last generation survive and memory stays bounded.

use std::collections::HashMap;
use std::hash::Hash;

/// A map holding at most `2 × cap` entries.
#[derive(Debug)]
pub struct Generational<K, V> {
    cap: usize,
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K: Hash + Eq, V> Generational<K, V> {
    /// A map keeping at least the `cap` most recently used keys.
    pub fn new(cap: usize) -> Self {
        Generational {
            cap: cap.max(1),
            current: HashMap::new(),
            previous: HashMap::new(),
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
        if !self.current.contains_key(&key) {
            self.previous.remove(&key);
            if self.current.len() >= self.cap {
                self.previous = std::mem::take(&mut self.current);
            }
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
