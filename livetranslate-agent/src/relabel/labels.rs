//! The label set relabelling works on: name → value pairs sorted by name, names unique,
//! values never empty (as in Prometheus, an empty value is the same as a missing label).

use std::collections::BTreeMap;

/// A label set, sorted by name. Cheap to build from the `Vec<(String, String)>` a parser
/// produces (sorted in place, no copy of the strings) and to turn back into one.
///
/// ```
/// use livetranslate_agent::relabel::Labels;
///
/// let mut l = Labels::from_pairs(vec![
///     ("job".to_owned(), "api".to_owned()),
///     ("__address__".to_owned(), "10.0.0.1:9100".to_owned()),
///     ("empty".to_owned(), String::new()),
/// ]);
/// assert_eq!(l.get("job"), Some("api"));
/// assert_eq!(l.get("empty"), None); // empty values are not kept
/// l.set("env", "prod");
/// let names: Vec<&str> = l.iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["__address__", "env", "job"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// An empty label set.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// assert!(Labels::new().is_empty());
    /// ```
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order: sorted by name, empty values left out, and
    /// for a name given twice the last value kept (as setting it twice would).
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let l = Labels::from_pairs(vec![
    ///     ("b".to_owned(), "1".to_owned()),
    ///     ("a".to_owned(), "2".to_owned()),
    ///     ("b".to_owned(), "3".to_owned()),
    /// ]);
    /// assert_eq!(l.as_slice(), [("a".to_owned(), "2".to_owned()), ("b".to_owned(), "3".to_owned())]);
    /// ```
    pub fn from_pairs(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.retain(|(_, v)| !v.is_empty());
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal names keep their order
            pairs.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    std::mem::swap(later, kept);
                    true
                } else {
                    false
                }
            });
        }
        Labels(pairs)
    }

    /// The value of a label, `None` if absent.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let l: Labels = [("a", "1")].into_iter().collect();
    /// assert_eq!((l.get("a"), l.get("b")), (Some("1"), None));
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        // Series rarely have more than a dozen labels: a scan with `==` (which compares
        // lengths first) beats a binary search whose every step is a full comparison.
        if self.0.len() <= 16 {
            return self
                .0
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
        }
        self.position(name).ok().map(|i| self.0[i].1.as_str())
    }

    /// The value of a label, `""` if absent (Prometheus's `Labels.Get`).
    pub(crate) fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Sets a label; an empty value removes it.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let mut l: Labels = [("a", "1")].into_iter().collect();
    /// l.set("a", "2");
    /// l.set("b", "3");
    /// l.set("a", "");
    /// assert_eq!(l.len(), 1);
    /// assert_eq!(l.get("b"), Some("3"));
    /// ```
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Sets a label from borrowed text, allocating only when something changes.
    pub(crate) fn set_str(&mut self, name: &str, value: &str) {
        match self.position(name) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => {
                if self.0[i].1 != value {
                    value.clone_into(&mut self.0[i].1);
                }
            }
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_owned(), value.to_owned())),
        }
    }

    /// Removes a label, returning its value.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let mut l: Labels = [("a", "1")].into_iter().collect();
    /// assert_eq!(l.remove("a").as_deref(), Some("1"));
    /// assert_eq!(l.remove("a"), None);
    /// ```
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.position(name).ok().map(|i| self.0.remove(i).1)
    }

    /// Keeps only the labels for which `keep(name, value)` is true.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// // What Prometheus does after target relabelling: `__` labels are not target labels.
    /// let mut l: Labels = [("__meta_x", "1"), ("job", "api")].into_iter().collect();
    /// l.retain(|name, _| !name.starts_with("__"));
    /// assert_eq!(l.len(), 1);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(n, v)| keep(n, v));
    }

    /// The labels in name order.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let l: Labels = [("b", "2"), ("a", "1")].into_iter().collect();
    /// assert_eq!(l.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The pairs, sorted by name.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let l: Labels = [("a", "1")].into_iter().collect();
    /// assert_eq!(l.as_slice()[0].0, "a");
    /// ```
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// The pairs, sorted by name, without copying.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// let l: Labels = [("a", "1")].into_iter().collect();
    /// assert_eq!(l.into_vec(), [("a".to_owned(), "1".to_owned())]);
    /// ```
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }

    /// Number of labels.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// assert_eq!([("a", "1"), ("b", "")].into_iter().collect::<Labels>().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no label.
    ///
    /// ```
    /// use livetranslate_agent::relabel::Labels;
    ///
    /// assert!(Labels::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Labels {
        Labels::from_pairs(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Labels {
        // Already sorted and unique.
        Labels(map.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(labels: Labels) -> BTreeMap<String, String> {
        labels.0.into_iter().collect()
    }
}

impl From<Vec<(String, String)>> for Labels {
    fn from(pairs: Vec<(String, String)>) -> Labels {
        Labels::from_pairs(pairs)
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_dedups_last_wins_and_drops_empty() {
        let l = Labels::from_pairs(vec![
            ("c".into(), "1".into()),
            ("a".into(), "x".into()),
            ("c".into(), "2".into()),
            ("b".into(), String::new()),
            ("a".into(), "y".into()),
        ]);
        assert_eq!(l.iter().collect::<Vec<_>>(), [("a", "y"), ("c", "2")]);
    }

    #[test]
    fn set_str_keeps_order_and_deletes_on_empty() {
        let mut l: Labels = [("b", "1")].into_iter().collect();
        l.set_str("a", "0");
        l.set_str("c", "2");
        l.set_str("b", "");
        l.set_str("zz", "");
        assert_eq!(l.iter().collect::<Vec<_>>(), [("a", "0"), ("c", "2")]);
        assert_eq!(l.value("b"), "");
    }

    #[test]
    fn get_in_small_and_large_sets() {
        for n in [0usize, 1, 5, 16, 17, 40] {
            let l: Labels = (0..n)
                .map(|i| (format!("l{i:02}"), format!("v{i}")))
                .collect();
            for i in 0..n {
                assert_eq!(l.get(&format!("l{i:02}")), Some(format!("v{i}").as_str()));
            }
            assert_eq!(l.get("l"), None);
            assert_eq!(l.get("zz"), None);
        }
    }

    #[test]
    fn map_round_trip() {
        let m: BTreeMap<String, String> = [("__path__", "/var/log/*.log"), ("job", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let l = Labels::from(m.clone());
        assert_eq!(BTreeMap::from(l), m);
    }
}
