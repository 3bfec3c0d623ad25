//! An epoll instance: registration by fd with a caller-chosen token, and a wait that
//! reports readiness as plain values (no allocation per event).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use super::sys;

/// What a registration waits for. asyncio's `add_reader`/`add_writer` are level-triggered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

impl Interest {
    pub(crate) const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    #[cfg(test)]
    pub(crate) const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };

    pub(crate) fn is_empty(self) -> bool {
        !self.readable && !self.writable
    }

    fn epoll_bits(self) -> u32 {
        let mut bits = 0;
        if self.readable {
            bits |= libc::EPOLLIN as u32;
        }
        if self.writable {
            bits |= libc::EPOLLOUT as u32;
        }
        bits
    }
}

/// One readiness report. Hang-up and error count as both readable and writable, as
/// `selectors.EpollSelector` reports them, so the callback sees the error on its next I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) token: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// The epoll instance. Registration takes `&self` (epoll_ctl is thread-safe), and the
/// wait goes through `PollFd`, a copy of the descriptor, so the loop can wait without
/// holding whatever lock guards the `Poller`.
pub(crate) struct Poller {
    epfd: RawFd,
}

/// The kernel's event array, reused from wait to wait.
pub(crate) struct EventBuffer {
    raw: Vec<libc::epoll_event>,
}

const EVENTS_PER_WAIT: usize = 1024;

impl Default for EventBuffer {
    fn default() -> Self {
        EventBuffer {
            raw: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT],
        }
    }
}

/// A borrowed view of a live epoll descriptor, valid while its `Poller` is.
#[derive(Clone, Copy)]
pub(crate) struct PollFd(RawFd);

/// Set once `epoll_pwait2` answered ENOSYS (a kernel before 5.11).
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

impl PollFd {
    /// Waits up to `timeout` (`None`: forever) and appends what became ready to `out`.
    /// The timeout has nanosecond precision where the kernel has `epoll_pwait2`; elsewhere
    /// it is rounded *up* to whole milliseconds, so a timer never fires early either way.
    /// EINTR is returned to the caller, which must run signal handlers before waiting again.
    pub(crate) fn wait(
        self,
        buffer: &mut EventBuffer,
        timeout: Option<Duration>,
        out: &mut Vec<Event>,
    ) -> io::Result<()> {
        let n = self.wait_raw(&mut buffer.raw, timeout)?;
        let hup_or_err = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
        out.extend(buffer.raw[..n].iter().map(|ev| {
            let bits = ev.events;
            Event {
                token: ev.u64,
                readable: bits & (libc::EPOLLIN as u32 | hup_or_err) != 0,
                writable: bits & (libc::EPOLLOUT as u32 | hup_or_err) != 0,
            }
        }));
        Ok(())
    }
}

impl PollFd {
    fn wait_raw(
        self,
        raw: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let sub_ms = timeout.is_some_and(|t| t.subsec_nanos() % 1_000_000 != 0);
        if sub_ms && !NO_PWAIT2.load(Relaxed) {
            match sys::epoll_pwait2(self.0, raw, timeout) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => NO_PWAIT2.store(true, Relaxed),
                other => return other,
            }
        }
        sys::epoll_wait(self.0, raw, timeout_ms(timeout))
    }
}

/// A timeout in whole milliseconds for `epoll_wait`, rounded up (-1: forever).
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(i32::MAX as u128) as i32
        }
    }
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller {
            epfd: sys::epoll_create()?,
        })
    }

    pub(crate) fn poll_fd(&self) -> PollFd {
        PollFd(self.epfd)
    }

    pub(crate) fn register(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd,
            libc::EPOLL_CTL_ADD,
            fd,
            interest.epoll_bits(),
            token,
        )
    }

    /// Changes a registration. An fd closed and reopened under the same number was dropped
    /// from epoll by the kernel, and is an error here (ENOENT), as it is for asyncio.
    pub(crate) fn reregister(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd,
            libc::EPOLL_CTL_MOD,
            fd,
            interest.epoll_bits(),
            token,
        )
    }

    /// Sets a registration whether or not epoll still has it: one closed and reopened under
    /// the same number was dropped by the kernel and is added again.
    pub(crate) fn renew(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        match self.reregister(fd, interest, token) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.register(fd, interest, token),
            other => other,
        }
    }

    /// Removes a registration. An fd the user already closed is gone from epoll, so
    /// EBADF/ENOENT are not errors here.
    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        match sys::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EBADF)) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        sys::close(self.epfd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (fds[0], fds[1])
    }

    #[test]
    fn reports_readable_and_writable_with_tokens() {
        let poller = Poller::new().unwrap();
        let mut buf = EventBuffer::default();
        let (r, w) = pipe();
        poller.register(r, Interest::READABLE, 7).unwrap();
        poller.register(w, Interest::WRITABLE, 8).unwrap();
        let mut events = Vec::new();
        poller
            .poll_fd()
            .wait(&mut buf, Some(Duration::ZERO), &mut events)
            .unwrap();
        assert_eq!(
            events,
            vec![Event {
                token: 8,
                readable: false,
                writable: true
            }]
        );

        sys::write_u64(w, 1).unwrap();
        events.clear();
        poller
            .poll_fd()
            .wait(&mut buf, Some(Duration::ZERO), &mut events)
            .unwrap();
        events.sort_by_key(|e| e.token);
        assert_eq!(
            events[0],
            Event {
                token: 7,
                readable: true,
                writable: false
            }
        );
        sys::close(r);
        sys::close(w);
    }

    #[test]
    fn timeouts_round_up_to_milliseconds_for_epoll_wait() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(7))), 7);
    }

    #[test]
    fn sub_millisecond_timeout_is_not_rounded_to_a_millisecond() {
        let poller = Poller::new().unwrap();
        let mut buf = EventBuffer::default();
        let mut events = Vec::new();
        let mut elapsed = Vec::new();
        for _ in 0..20 {
            let t0 = std::time::Instant::now();
            poller
                .poll_fd()
                .wait(&mut buf, Some(Duration::from_micros(200)), &mut events)
                .unwrap();
            elapsed.push(t0.elapsed());
        }
        elapsed.sort();
        assert!(
            elapsed[0] >= Duration::from_micros(200),
            "woke early: {:?}",
            elapsed[0]
        );
        if !NO_PWAIT2.load(Relaxed) {
            assert!(
                elapsed[10] < Duration::from_micros(900),
                "median {:?}",
                elapsed[10]
            );
        }
    }

    #[test]
    fn reregister_after_kernel_dropped_the_fd() {
        let poller = Poller::new().unwrap();
        let (r, w) = pipe();
        poller.register(r, Interest::READABLE, 1).unwrap();
        poller.deregister(r).unwrap();
        let err = poller.reregister(r, Interest::WRITABLE, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        poller.renew(r, Interest::WRITABLE, 1).unwrap();
        poller.renew(r, Interest::READABLE, 1).unwrap();
        poller.deregister(r).unwrap();
        sys::close(r);
        sys::close(w);
    }

    #[test]
    fn closed_fd_is_an_error_to_register() {
        // Not a just-closed fd: tests run in parallel threads and would reuse its number.
        let poller = Poller::new().unwrap();
        let never_open = i32::MAX;
        let err = poller
            .register(never_open, Interest::READABLE, 1)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
