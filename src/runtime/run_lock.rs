//! A reentrant lock held while a callback runs, so that another thread waits for it.
//!
//! asyncio 3.14's `call_soon_threadsafe` handle holds an `RLock` while its callback runs;
//! `cancel()` and `cancelled()` from another thread take the same lock, so they return
//! only once a running callback has finished, while the callback itself may cancel its
//! own handle. The caller decides how to wait (the Python layer releases the GIL first),
//! so there are two ways in: `try_acquire`, which never blocks, and `acquire`.

use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Condvar, Mutex};

use super::sys;

/// Where every waiting thread sleeps, whichever lock it waits for. A thread waits only when
/// it cancels a handle whose callback is running, so sharing the place costs nothing, and
/// spares each lock (one in every thread-safe handle, of which a flood keeps tens of
/// thousands in memory the caches no longer hold) a mutex and a condition variable.
static PARKED: Mutex<()> = Mutex::new(());
static RELEASED: Condvar = Condvar::new();

/// Every run of a thread-safe handle takes and releases it once, almost always with nobody
/// else wanting it: that path is a few atomic operations and no system call. A thread that
/// has to wait sleeps on `RELEASED`, and a release wakes the sleepers only when someone
/// waits for this lock; each looks again at its own.
#[derive(Default)]
pub(crate) struct RunLock {
    /// The holder (`sys::thread_id`), or 0 when free.
    owner: AtomicU64,
    /// How many times the holder holds it; read and written by the holder only.
    depth: AtomicU32,
    /// Threads registered, under `PARKED`, to be woken.
    waiters: AtomicU32,
}

impl RunLock {
    /// Takes the lock if it is free or already this thread's; whether it did.
    pub(crate) fn try_acquire(&self) -> bool {
        let me = sys::thread_id();
        match self.owner.compare_exchange(0, me, SeqCst, Acquire) {
            Ok(_) => {
                self.depth.store(1, Relaxed);
                true
            }
            Err(holder) if holder == me => {
                self.depth.fetch_add(1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes the lock, waiting for another thread to release it.
    pub(crate) fn acquire(&self) {
        while !self.try_acquire() {
            let parked = PARKED.lock().unwrap_or_else(|e| e.into_inner());
            // Registered before looking again: a release either sees the registration
            // (and wakes this thread, which it can do only once this thread waits, as
            // it holds `parked` until then) or happened before the look, which succeeds.
            self.waiters.fetch_add(1, SeqCst);
            if self.try_acquire() {
                self.waiters.fetch_sub(1, SeqCst);
                return;
            }
            drop(RELEASED.wait(parked).unwrap_or_else(|e| e.into_inner()));
            self.waiters.fetch_sub(1, SeqCst);
        }
    }

    /// Releases one hold of this thread's; the last one wakes the waiters.
    pub(crate) fn release(&self) {
        let depth = self.depth.load(Relaxed);
        if depth > 1 {
            self.depth.store(depth - 1, Relaxed);
            return;
        }
        self.owner.store(0, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let _parked = PARKED.lock().unwrap_or_else(|e| e.into_inner());
            RELEASED.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::thread;
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

    #[test]
    fn excludes_under_contention_and_loses_no_wakeup() {
        let lock = Arc::new(RunLock::default());
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (lock, inside) = (lock.clone(), inside.clone());
                thread::spawn(move || {
                    for i in 0..20_000u32 {
                        if (i + t) % 3 == 0 {
                            lock.acquire();
                        } else {
                            while !lock.try_acquire() {
                                std::hint::spin_loop();
                            }
                        }
                        assert!(lock.try_acquire(), "not reentrant");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        lock.release();
                        lock.release();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(lock.try_acquire(), "left held");
        lock.release();
    }
}
