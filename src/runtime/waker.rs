//! Wakes a poller blocked in `epoll_wait` from another thread, through an eventfd.
//!
//! Wake-ups coalesce: between two drains, only the first `wake()` while the loop is
//! blocked writes to the eventfd; the others are a load and a compare.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::sys;

pub(crate) struct Waker {
    fd: RawFd,
    /// The loop is in, or about to enter, a blocking wait.
    blocking: AtomicBool,
    /// A write is in the eventfd that the loop has not drained yet.
    pending: AtomicBool,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: sys::eventfd()?,
            blocking: AtomicBool::new(false),
            pending: AtomicBool::new(false),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Called by the loop thread, with the scheduling state already inspected, just before
    /// it blocks. Anything queued after this point calls `wake()` and finds `blocking` set.
    pub(crate) fn enter_blocking(&self) {
        self.blocking.store(true, Ordering::SeqCst);
    }

    pub(crate) fn leave_blocking(&self) {
        self.blocking.store(false, Ordering::SeqCst);
    }

    /// Interrupts a blocking wait, if there is one; a no-op otherwise.
    pub(crate) fn wake(&self) {
        // `pending` is read before it is swapped: a thread that floods the loop while it
        // is waking (still `blocking`, until it has the GIL back) would otherwise pay a
        // locked read-modify-write per call.
        if self.blocking.load(Ordering::SeqCst)
            && !self.pending.load(Ordering::SeqCst)
            && !self.pending.swap(true, Ordering::SeqCst)
        {
            // EAGAIN means the counter is full: the loop will wake anyway.
            let _ = sys::write_u64(self.fd, 1);
        }
    }

    /// Consumes the wake-up; called when the poller reports the eventfd readable.
    pub(crate) fn drain(&self) {
        self.pending.store(false, Ordering::SeqCst);
        let _ = sys::read_u64(self.fd);
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::poller::{EventBuffer, Interest, Poller};

    #[test]
    fn wakes_only_a_blocking_poller_and_coalesces() {
        let poller = Poller::new().unwrap();
        let mut buf = EventBuffer::default();
        let waker = Waker::new().unwrap();
        poller.register(waker.fd(), Interest::READABLE, 0).unwrap();
        let mut events = Vec::new();

        waker.wake();
        poller
            .poll_fd()
            .wait(&mut buf, Some(std::time::Duration::ZERO), &mut events)
            .unwrap();
        assert!(events.is_empty(), "not blocking: no write");

        waker.enter_blocking();
        waker.wake();
        waker.wake();
        poller
            .poll_fd()
            .wait(
                &mut buf,
                Some(std::time::Duration::from_secs(1)),
                &mut events,
            )
            .unwrap();
        assert_eq!(events.len(), 1);
        waker.drain();
        waker.leave_blocking();
        assert_eq!(
            sys::read_u64(waker.fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn wakes_from_another_thread() {
        let poller = Poller::new().unwrap();
        let mut buf = EventBuffer::default();
        let waker = std::sync::Arc::new(Waker::new().unwrap());
        poller.register(waker.fd(), Interest::READABLE, 0).unwrap();
        waker.enter_blocking();
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            w.wake();
        });
        let mut events = Vec::new();
        poller
            .poll_fd()
            .wait(
                &mut buf,
                Some(std::time::Duration::from_secs(5)),
                &mut events,
            )
            .unwrap();
        t.join().unwrap();
        assert_eq!(events.len(), 1);
    }
}
