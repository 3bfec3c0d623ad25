//! The timer heap: a min-heap keyed by `(when, sequence)`, so timers due at the same
//! instant run in the order they were scheduled.
//!
//! Cancellation is lazy, as in asyncio: a cancelled timer stays in the heap until it
//! reaches the head or the heap is compacted, at CPython's thresholds.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::constants::{MIN_CANCELLED_TIMER_HANDLES_FRACTION, MIN_SCHEDULED_TIMER_HANDLES};

struct Entry<T> {
    /// `when` as an integer in `f64::total_cmp`'s order. With `seq` it makes one 128-bit
    /// integer to compare, which pops from a large heap take markedly fewer instructions
    /// over than comparing the floats with `total_cmp` and then the sequences.
    key: u64,
    seq: u64,
    item: T,
}

/// Maps an f64 to a u64 that sorts as `f64::total_cmp` sorts the floats: negative values
/// (sign bit set) have all their bits flipped, the others only the sign bit.
fn order_key(when: f64) -> u64 {
    let bits = when.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest timer on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank().cmp(&self.rank())
    }
}

impl<T> Entry<T> {
    /// Time, then sequence, as one integer.
    fn rank(&self) -> u128 {
        u128::from(self.key) << 64 | u128::from(self.seq)
    }
}

pub(crate) struct TimerHeap<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
    cancelled: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            next_seq: 0,
            cancelled: 0,
        }
    }
}

impl<T> TimerHeap<T> {
    pub(crate) fn push(&mut self, when: f64, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            key: order_key(when),
            seq,
            item,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// A timer still in the heap was cancelled.
    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    pub(crate) fn cancelled_count(&self) -> usize {
        self.cancelled
    }

    pub(crate) fn set_cancelled_count(&mut self, count: usize) {
        self.cancelled = count;
    }

    /// Drops cancelled timers before a poll: all of them when they are many (a rebuild),
    /// otherwise only those at the head, so the head is a live timer. What leaves the heap
    /// goes to `removed`, for the caller to release outside any lock.
    pub(crate) fn purge(&mut self, is_cancelled: impl Fn(&T) -> bool, removed: &mut Vec<T>) {
        let count = self.heap.len();
        if count > MIN_SCHEDULED_TIMER_HANDLES
            && self.cancelled as f64 / count as f64 > MIN_CANCELLED_TIMER_HANDLES_FRACTION
        {
            let mut kept = Vec::with_capacity(count - self.cancelled.min(count));
            for entry in std::mem::take(&mut self.heap).into_vec() {
                if is_cancelled(&entry.item) {
                    removed.push(entry.item);
                } else {
                    kept.push(entry);
                }
            }
            self.heap = BinaryHeap::from(kept);
            self.cancelled = 0;
        } else {
            while self.heap.peek().is_some_and(|e| is_cancelled(&e.item)) {
                self.cancelled = self.cancelled.saturating_sub(1);
                removed.extend(self.heap.pop().map(|e| e.item));
            }
        }
    }

    /// When the earliest timer is due.
    pub(crate) fn next_when(&self) -> Option<f64> {
        self.heap.peek().map(|e| from_order_key(e.key))
    }

    /// Pops the earliest timer, and when it was due, if it is due before `end_time`.
    pub(crate) fn pop_due(&mut self, end_time: f64) -> Option<(f64, T)> {
        if self.heap.peek()?.key >= order_key(end_time) {
            return None;
        }
        self.heap.pop().map(|e| (from_order_key(e.key), e.item))
    }

    /// Empties the heap (loop close); the caller releases what it gets.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.cancelled = 0;
        std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .map(|e| e.item)
            .collect()
    }

    /// The timers in no particular order (heap order), for the garbage collector.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.item)
    }

    /// The timers in firing order, for introspection.
    pub(crate) fn ordered(&self) -> Vec<&T> {
        let mut entries: Vec<&Entry<T>> = self.heap.iter().collect();
        entries.sort_by(|a, b| b.cmp(a));
        entries.into_iter().map(|e| &e.item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut heap = TimerHeap::default();
        heap.push(2.0, "b");
        heap.push(1.0, "a1");
        heap.push(1.0, "a2");
        heap.push(3.0, "c");
        assert_eq!(heap.next_when(), Some(1.0));
        assert_eq!(heap.pop_due(2.5).map(|(_, t)| t), Some("a1"));
        assert_eq!(heap.pop_due(2.5).map(|(_, t)| t), Some("a2"));
        assert_eq!(heap.pop_due(2.5).map(|(_, t)| t), Some("b"));
        assert_eq!(heap.pop_due(2.5).map(|(_, t)| t), None);
        assert_eq!(heap.ordered(), vec![&"c"]);
    }

    #[test]
    fn matches_a_sorted_reference_under_random_pushes_and_pops() {
        // A small xorshift, so the test needs no crate and is repeatable.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut heap = TimerHeap::default();
        let mut reference: Vec<(f64, u64)> = Vec::new();
        let mut seq = 0;
        for round in 0..20_000 {
            if next() % 3 != 0 || reference.is_empty() {
                let when = (next() % 1000) as f64 / 10.0;
                heap.push(when, seq);
                reference.push((when, seq));
                seq += 1;
            } else {
                let end = (next() % 1000) as f64 / 10.0 + 1.0;
                reference.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let expected = (reference[0].0 < end).then(|| reference.remove(0).1);
                assert_eq!(heap.pop_due(end).map(|(_, t)| t), expected, "round {round}");
            }
            assert_eq!(heap.len(), reference.len());
        }
    }

    #[test]
    fn order_keys_sort_as_total_cmp_and_map_back() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            5e-324,
            1.0,
            1.0 + f64::EPSILON,
            1e300,
            f64::INFINITY,
        ];
        for a in values {
            assert_eq!(from_order_key(order_key(a)).to_bits(), a.to_bits());
            for b in values {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    #[test]
    fn due_means_strictly_before_end_time() {
        let mut heap = TimerHeap::default();
        heap.push(1.0, ());
        assert_eq!(heap.pop_due(1.0).map(|(_, t)| t), None);
        assert_eq!(heap.pop_due(1.0 + 1e-9).map(|(_, t)| t), Some(()));
    }

    #[test]
    fn purge_drops_cancelled_head_only_when_few() {
        let mut heap = TimerHeap::default();
        let cancelled = [Cell::new(true), Cell::new(false), Cell::new(true)];
        for (i, _) in cancelled.iter().enumerate() {
            heap.push(i as f64, i);
        }
        heap.note_cancelled();
        heap.note_cancelled();
        let mut removed = Vec::new();
        heap.purge(|&i| cancelled[i].get(), &mut removed);
        assert_eq!(removed, vec![0]);
        assert_eq!(heap.len(), 2);
        assert_eq!(heap.cancelled_count(), 1);
    }

    #[test]
    fn purge_rebuilds_when_most_are_cancelled() {
        let mut heap = TimerHeap::default();
        for i in 0..200 {
            heap.push(i as f64, i);
        }
        for _ in 0..150 {
            heap.note_cancelled();
        }
        let mut removed = Vec::new();
        heap.purge(|&i| i % 4 != 0, &mut removed);
        assert_eq!(removed.len(), 150);
        assert_eq!(heap.len(), 50);
        assert_eq!(heap.cancelled_count(), 0);
        let mut order = Vec::new();
        while let Some(i) = heap.pop_due(f64::INFINITY).map(|(_, t)| t) {
            order.push(i);
        }
        assert_eq!(order, (0..200).step_by(4).collect::<Vec<_>>());
    }
}
