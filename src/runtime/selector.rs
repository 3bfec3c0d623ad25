//! The poller and the waker together: what the loop waits on, with the waker's events
//! consumed here so that the caller sees only its own fds'.

use std::io;

use super::poller::{Event, Interest, PollFd, Poller};
use super::waker::Waker;

/// The waker's token; fds are registered under their own number, which is never this.
const WAKER_TOKEN: u64 = u64::MAX;

pub(crate) struct Selector {
    pub(crate) poller: Poller,
    waker: Waker,
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        let poller = Poller::new()?;
        let waker = Waker::new()?;
        poller.register(waker.fd(), Interest::READABLE, WAKER_TOKEN)?;
        Ok(Selector { poller, waker })
    }

    pub(crate) fn poll_fd(&self) -> PollFd {
        self.poller.poll_fd()
    }

    /// Interrupts a blocking wait, from any thread.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Brackets a wait that may block, so that `wake` knows to write.
    pub(crate) fn enter_blocking(&self) {
        self.waker.enter_blocking();
    }

    pub(crate) fn leave_blocking(&self) {
        self.waker.leave_blocking();
    }

    /// The events of registered fds, consuming a wake-up among them.
    pub(crate) fn fd_events<'a>(&'a self, events: &'a [Event]) -> impl Iterator<Item = Event> + 'a {
        events.iter().copied().filter(|event| {
            if event.token == WAKER_TOKEN {
                self.waker.drain();
                return false;
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::poller::EventBuffer;

    #[test]
    fn a_wake_up_ends_the_wait_and_is_consumed() {
        let selector = Selector::new().unwrap();
        let mut buffer = EventBuffer::default();
        let mut events = Vec::new();
        selector.enter_blocking();
        selector.wake();
        selector
            .poll_fd()
            .wait(&mut buffer, Some(Duration::from_secs(5)), &mut events)
            .unwrap();
        selector.leave_blocking();
        assert_eq!(events.len(), 1);
        assert_eq!(selector.fd_events(&events).count(), 0);
        events.clear();
        selector
            .poll_fd()
            .wait(&mut buffer, Some(Duration::ZERO), &mut events)
            .unwrap();
        assert!(events.is_empty());
    }
}
