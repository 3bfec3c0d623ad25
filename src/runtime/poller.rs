//! An epoll instance: registration by fd with a caller-chosen token, and a wait that
//! reports readiness as plain values (no allocation per event).

use std::io;
use std::os::fd::RawFd;

use super::sys;

/// What a registration waits for. asyncio's `add_reader`/`add_writer` are level-triggered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };

    pub fn is_empty(self) -> bool {
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
pub struct Event {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
}

/// The epoll instance. Registration takes `&self` (epoll_ctl is thread-safe), and the
/// wait goes through `PollFd`, a copy of the descriptor, so the loop can wait without
/// holding whatever lock guards the `Poller`.
pub struct Poller {
    epfd: RawFd,
}

/// The kernel's event array, reused from wait to wait.
pub struct EventBuffer {
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
pub struct PollFd(RawFd);

impl PollFd {
    /// Waits up to `timeout_ms` (-1: forever) and appends what became ready to `out`.
    /// EINTR is returned to the caller, which must run signal handlers before waiting again.
    pub fn wait(
        self,
        buffer: &mut EventBuffer,
        timeout_ms: i32,
        out: &mut Vec<Event>,
    ) -> io::Result<()> {
        let n = sys::epoll_wait(self.0, &mut buffer.raw, timeout_ms)?;
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

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            epfd: sys::epoll_create()?,
        })
    }

    pub fn poll_fd(&self) -> PollFd {
        PollFd(self.epfd)
    }

    pub fn register(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd,
            libc::EPOLL_CTL_ADD,
            fd,
            interest.epoll_bits(),
            token,
        )
    }

    /// Changes a registration. An fd closed and reopened under the same number was dropped
    /// from epoll by the kernel; re-adding it is what the caller meant.
    pub fn reregister(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        match sys::epoll_ctl(
            self.epfd,
            libc::EPOLL_CTL_MOD,
            fd,
            interest.epoll_bits(),
            token,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.register(fd, interest, token),
            other => other,
        }
    }

    /// Removes a registration. An fd the user already closed is gone from epoll, so
    /// EBADF/ENOENT are not errors here.
    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
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
        poller
            .register(
                r,
                Interest {
                    readable: true,
                    writable: false,
                },
                7,
            )
            .unwrap();
        poller
            .register(
                w,
                Interest {
                    readable: false,
                    writable: true,
                },
                8,
            )
            .unwrap();
        let mut events = Vec::new();
        poller.poll_fd().wait(&mut buf, 0, &mut events).unwrap();
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
        poller.poll_fd().wait(&mut buf, 0, &mut events).unwrap();
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
    fn reregister_after_kernel_dropped_the_fd() {
        let poller = Poller::new().unwrap();
        let (r, w) = pipe();
        poller
            .register(
                r,
                Interest {
                    readable: true,
                    writable: false,
                },
                1,
            )
            .unwrap();
        poller.deregister(r).unwrap();
        poller
            .reregister(
                r,
                Interest {
                    readable: true,
                    writable: true,
                },
                1,
            )
            .unwrap();
        poller.deregister(r).unwrap();
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
            .register(
                never_open,
                Interest {
                    readable: true,
                    writable: false,
                },
                1,
            )
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
