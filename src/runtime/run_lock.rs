//! A reentrant lock held while a callback runs, so that another thread waits for it.
//!
//! asyncio 3.14's `call_soon_threadsafe` handle holds an `RLock` while its callback runs;
//! `cancel()` and `cancelled()` from another thread take the same lock, so they return
//! only once a running callback has finished, while the callback itself may cancel its
//! own handle. The caller decides how to wait (the Python layer releases the GIL first),
//! so there are two ways in: `try_acquire`, which never blocks, and `acquire`.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

#[derive(Default)]
pub(crate) struct RunLock {
    /// The holder and how many times it holds the lock.
    owner: Mutex<Option<(ThreadId, u32)>>,
    released: Condvar,
}

impl RunLock {
    fn owner(&self) -> MutexGuard<'_, Option<(ThreadId, u32)>> {
        self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock if it is free or already this thread's; whether it did.
    pub(crate) fn try_acquire(&self) -> bool {
        Self::take(&mut self.owner(), thread::current().id())
    }

    /// Takes the lock, waiting for another thread to release it.
    pub(crate) fn acquire(&self) {
        let me = thread::current().id();
        let mut owner = self.owner();
        while !Self::take(&mut owner, me) {
            owner = self.released.wait(owner).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn take(owner: &mut Option<(ThreadId, u32)>, me: ThreadId) -> bool {
        match owner {
            None => {
                *owner = Some((me, 1));
                true
            }
            Some((holder, depth)) if *holder == me => {
                *depth += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// Releases one hold of this thread's; the last one wakes the waiters.
    pub(crate) fn release(&self) {
        let mut owner = self.owner();
        match &mut *owner {
            Some((_, depth)) if *depth > 1 => *depth -= 1,
            _ => {
                *owner = None;
                drop(owner);
                self.released.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn reentrant_for_its_holder() {
        let lock = RunLock::default();
        assert!(lock.try_acquire());
        assert!(lock.try_acquire());
        lock.release();
        lock.release();
        assert!(lock.try_acquire());
        lock.release();
    }

    #[test]
    fn another_thread_waits_for_the_last_release() {
        let lock = Arc::new(RunLock::default());
        lock.acquire();
        lock.acquire();
        let done = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (lock, done) = (lock.clone(), done.clone());
            thread::spawn(move || {
                assert!(!lock.try_acquire());
                lock.acquire();
                let finished_first = done.load(Ordering::SeqCst);
                lock.release();
                finished_first
            })
        };
        thread::sleep(Duration::from_millis(50));
        lock.release();
        thread::sleep(Duration::from_millis(20));
        done.store(true, Ordering::SeqCst);
        lock.release();
        assert!(
            waiter.join().unwrap(),
            "the waiter got the lock before the last release"
        );
    }
}
