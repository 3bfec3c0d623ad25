//! The ready queue. A pass of the loop runs exactly the callbacks that were ready when it
//! began: it takes them as a batch, and what they schedule waits for the next pass.

use std::collections::VecDeque;

pub(crate) struct ReadyQueue<T> {
    queue: VecDeque<T>,
}

impl<T> Default for ReadyQueue<T> {
    fn default() -> Self {
        ReadyQueue {
            queue: VecDeque::new(),
        }
    }
}

impl<T> ReadyQueue<T> {
    pub(crate) fn push(&mut self, item: T) {
        self.queue.push_back(item);
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Moves everything queued into `batch` (which must be empty), leaving the queue empty
    /// but with `batch`'s old allocation, so steady state allocates nothing.
    pub(crate) fn take_batch(&mut self, batch: &mut VecDeque<T>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut self.queue, batch);
    }

    /// Puts the unrun rest of a batch back in front, as when `KeyboardInterrupt` escapes a
    /// pass: those callbacks run first when the loop runs again.
    pub(crate) fn requeue_front(&mut self, rest: &mut VecDeque<T>) {
        while let Some(item) = rest.pop_back() {
            self.queue.push_front(item);
        }
    }

    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.queue.drain(..).collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.queue.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_then_requeue_keeps_order() {
        let mut q = ReadyQueue::default();
        q.push(1);
        q.push(2);
        q.push(3);
        let mut batch = VecDeque::new();
        q.take_batch(&mut batch);
        assert!(q.is_empty());
        assert_eq!(batch.pop_front(), Some(1));
        q.push(4);
        q.requeue_front(&mut batch);
        assert_eq!(q.drain(), vec![2, 3, 4]);
    }
}
