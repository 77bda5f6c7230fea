//! [`SortedVec`]: an ordered set kept as one sorted vector. The lists a full FDB copies (a host's
//! unicast entries, an extension's entries under one VTEP) are read far more often than they
//! change, so they are stored contiguous and in wire order: a full FDB copies them with one
//! `memcpy` instead of walking tree nodes. A change costs a shift of the entries after it.

use std::ops::Deref;

/// A set of `T` as a strictly increasing `Vec<T>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct SortedVec<T>(Vec<T>);

impl<T> Default for SortedVec<T> {
    fn default() -> Self {
        SortedVec(Vec::new())
    }
}

impl<T: Ord> SortedVec<T> {
    /// Inserts `value`; false if it was already there.
    pub(crate) fn insert(&mut self, value: T) -> bool {
        // Appending in order is the common case (a load, a bulk add): no search, no shift.
        if self.0.last().is_none_or(|last| *last < value) {
            self.0.push(value);
            return true;
        }
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false if it was not there.
    pub(crate) fn remove(&mut self, value: &T) -> bool {
        match self.0.binary_search(value) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the values `part` selects, which must be one contiguous run of the
    /// order: `part` says whether a value is before (`Less`), in (`Equal`) or after the run.
    pub(crate) fn drain_run(&mut self, part: impl Fn(&T) -> std::cmp::Ordering) -> Vec<T> {
        let start = self.0.partition_point(|v| part(v).is_lt());
        let end = self.0.partition_point(|v| !part(v).is_gt());
        self.0.drain(start..end).collect()
    }
}

impl<T> Deref for SortedVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Ord> FromIterator<T> for SortedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut values: Vec<T> = iter.into_iter().collect();
        values.sort_unstable();
        values.dedup();
        SortedVec(values)
    }
}

#[cfg(test)]
mod tests {
    use super::SortedVec;

    #[test]
    fn keeps_a_strictly_increasing_set() {
        let mut set = SortedVec::default();
        for v in [5, 1, 9, 5, 3, 9, 10] {
            set.insert(v);
        }
        assert_eq!(&*set, &[1, 3, 5, 9, 10]);
        assert!(!set.insert(3));
        assert!(set.remove(&5));
        assert!(!set.remove(&5));
        assert_eq!(&*set, &[1, 3, 9, 10]);
        assert_eq!(set, [10, 3, 1, 9, 3].into_iter().collect());
    }

    #[test]
    fn drains_one_run() {
        let mut set: SortedVec<(u8, u8)> = [(1, 1), (2, 1), (2, 5), (3, 0)].into_iter().collect();
        let run = set.drain_run(|(a, _)| a.cmp(&2));
        assert_eq!(run, vec![(2, 1), (2, 5)]);
        assert_eq!(&*set, &[(1, 1), (3, 0)]);
        assert!(set.drain_run(|(a, _)| a.cmp(&7)).is_empty());
    }
}
