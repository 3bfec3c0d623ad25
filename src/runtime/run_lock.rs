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
    state: Mutex<State>,
    released: Condvar,
}

#[derive(Default)]
struct State {
    /// The holder and how many times it holds the lock.
    owner: Option<(ThreadId, u32)>,
    /// Threads waiting in `acquire`. A release wakes them only if there are any: waking
    /// none is still a system call, on every run of every handle.
    waiters: u32,
}

impl RunLock {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock if it is free or already this thread's; whether it did.
    pub(crate) fn try_acquire(&self) -> bool {
        Self::take(&mut self.state().owner, thread::current().id())
    }

    /// Takes the lock, waiting for another thread to release it.
    pub(crate) fn acquire(&self) {
        let me = thread::current().id();
        let mut state = self.state();
        while !Self::take(&mut state.owner, me) {
            state.waiters += 1;
            state = self.released.wait(state).unwrap_or_else(|e| e.into_inner());
            state.waiters -= 1;
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
        let mut state = self.state();
        match &mut state.owner {
            Some((_, depth)) if *depth > 1 => *depth -= 1,
            _ => {
                state.owner = None;
                let waiting = state.waiters > 0;
                drop(state);
                if waiting {
                    self.released.notify_all();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

    #[test]
    fn every_waiter_gets_the_lock_in_turn() {
        let lock = Arc::new(RunLock::default());
        lock.acquire();
        let holders = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (lock, holders) = (lock.clone(), holders.clone());
                thread::spawn(move || {
                    lock.acquire();
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    thread::sleep(Duration::from_millis(5));
                    holders.fetch_sub(1, Ordering::SeqCst);
                    lock.release();
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(30));
        lock.release();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(lock.try_acquire(), "left held");
        lock.release();
    }
}
