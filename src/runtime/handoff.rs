//! A thread that floods a running loop with `call_soon_threadsafe` stops now and then, the
//! GIL let go, until the loop has moved on.
//!
//! asyncio's own `call_soon_threadsafe` lets the GIL go on every call (it writes to the
//! loop's self-pipe), so the loop thread keeps up with a thread that floods it. A call
//! that keeps the GIL leaves the loop thread waiting out the caller's whole switch
//! interval, in which the caller queues tens of thousands of callbacks: the loop then runs
//! them late, from memory the caches have let go of, and holds every one meanwhile. One
//! stop every `EVERY` queued callbacks keeps the queue near asyncio's length, for one
//! hand-over of the GIL per `EVERY` calls.
//!
//! The loop shows that it has moved on (`Activity::progress`) once it has started another
//! callback or ended a pass. A loop that cannot move on (a callback blocked in a call that
//! let the GIL go, another thread holding the GIL) is waited for `LIMIT` at most, and not
//! again until it has moved on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sync::lock;

/// Queued callbacks between two stops.
pub(crate) const EVERY: usize = 4096;

/// How long a stop spins before it gives its CPU away between looks: the loop thread,
/// woken on another CPU, usually moves on within it; on a busy machine it may need this
/// one.
const SPIN: Duration = Duration::from_micros(50);

/// The longest a stop lasts: CPython's default switch interval, after which it would have
/// the caller hand the GIL over anyway.
const LIMIT: Duration = Duration::from_millis(5);

/// Whether a thread-safe call that leaves `queued` callbacks in the ready queue stops.
#[inline(always)]
pub(crate) fn due(queued: usize) -> bool {
    queued % EVERY == 0
}

/// A reading of the loop's progress (`Activity::progress`): any change says it has moved
/// on.
pub(crate) type Progress = (u64, u64);

/// The progress at which the loop was last waited for in vain.
#[derive(Default)]
pub(crate) struct Handoff {
    stalled: Mutex<Option<Progress>>,
}

impl Handoff {
    /// Waits, the GIL let go, until `progress` reads other than it does now, for `LIMIT`
    /// at most; not at all while it reads what it read when the last wait ran out.
    /// Whether the loop moved on.
    pub(crate) fn wait(&self, progress: impl Fn() -> Progress) -> bool {
        let before = progress();
        if *lock(&self.stalled) == Some(before) {
            return false;
        }
        let start = Instant::now();
        while progress() == before {
            let waited = start.elapsed();
            if waited >= LIMIT {
                *lock(&self.stalled) = Some(before);
                return false;
            }
            if waited < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn stops_every_so_many_queued_callbacks() {
        assert!(!due(1));
        assert!(!due(EVERY - 1));
        assert!(due(EVERY));
        assert!(due(2 * EVERY));
    }

    #[test]
    fn waits_until_the_loop_moves_on() {
        let handoff = Handoff::default();
        let reads = Cell::new(0);
        let progress = || {
            reads.set(reads.get() + 1);
            (u64::from(reads.get() > 3), 7)
        };
        assert!(handoff.wait(progress));
        assert_eq!(reads.get(), 4);
    }

    #[test]
    fn does_not_wait_again_for_a_stalled_loop() {
        let handoff = Handoff::default();
        let reads = Cell::new(0);
        let stalled = || {
            reads.set(reads.get() + 1);
            (3, 4)
        };
        let start = Instant::now();
        assert!(!handoff.wait(stalled));
        assert!(start.elapsed() >= LIMIT);
        reads.set(0);
        assert!(!handoff.wait(stalled));
        assert_eq!(reads.get(), 1, "one look, and no wait");
        // Moved on since: waited for again.
        let moved = Instant::now();
        assert!(!handoff.wait(|| (3, 5)));
        assert!(moved.elapsed() >= LIMIT);
    }
}
