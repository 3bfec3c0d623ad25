//! The readers and writers of every watched fd: one level-triggered epoll registration per
//! fd, whose interest follows which of the two are set.
//!
//! Generic over the callback `C` (a Handle, or a native transport) and the object `F` an fd
//! was registered by (the selectors module's `key.fileobj`). The outcomes of each change
//! are the selectors module's: a new fd is added, a changed interest modified, and a failed
//! modification forgets the fd.

use std::io;
use std::os::fd::RawFd;

use super::poller::{Event, Interest, Poller};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    Read,
    Write,
}

struct Entry<C, F> {
    reader: Option<C>,
    writer: Option<C>,
    /// The object the fd was first registered by, if any: so that a socket closed or
    /// detached since can still be found (and removed) by the object itself.
    fileobj: Option<F>,
    /// One of the loop's own fds (the signal self-pipe): it does not force a poll on every
    /// pass.
    internal: bool,
}

impl<C, F> Default for Entry<C, F> {
    fn default() -> Self {
        Entry {
            reader: None,
            writer: None,
            fileobj: None,
            internal: false,
        }
    }
}

impl<C, F> Entry<C, F> {
    fn interest(&self) -> Interest {
        Interest {
            readable: self.reader.is_some(),
            writable: self.writer.is_some(),
        }
    }

    fn slot(&mut self, direction: Direction) -> &mut Option<C> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

/// What leaves the registry in a change, for the caller to let go of outside its lock:
/// dropping a callback may run arbitrary code. A change usually detaches one callback,
/// held without allocating (`first`).
pub(crate) struct Detached<C, F> {
    first: Option<C>,
    more: Vec<C>,
    fileobjs: Vec<F>,
}

impl<C, F> Default for Detached<C, F> {
    fn default() -> Self {
        Detached {
            first: None,
            more: Vec::new(),
            fileobjs: Vec::new(),
        }
    }
}

impl<C, F> Detached<C, F> {
    fn push(&mut self, callback: C) {
        if self.first.is_none() {
            self.first = Some(callback);
        } else {
            self.more.push(callback);
        }
    }

    fn extend(&mut self, callbacks: impl IntoIterator<Item = C>) {
        for callback in callbacks {
            self.push(callback);
        }
    }

    pub(crate) fn callbacks(&self) -> impl Iterator<Item = &C> {
        self.first.iter().chain(&self.more)
    }
}

/// Entries indexed by fd number (fds are small and dense, so a vector beats hashing), with
/// counts kept so the per-pass questions cost a load.
pub(crate) struct IoRegistry<C, F> {
    entries: Vec<Entry<C, F>>,
    registered: usize,
    user: usize,
}

impl<C, F> Default for IoRegistry<C, F> {
    fn default() -> Self {
        IoRegistry {
            entries: Vec::new(),
            registered: 0,
            user: 0,
        }
    }
}

fn token(fd: RawFd) -> u64 {
    fd as u64
}

impl<C, F> IoRegistry<C, F> {
    /// Sets the reader or writer of `fd`, registered by `fileobj`. An unchanged interest
    /// (a reader replacing a reader) cannot fail, since the selectors module makes no
    /// epoll call for it; the registration is still renewed, ignoring epoll's answer, so
    /// that an fd closed and reopened under the same number is watched.
    pub(crate) fn set(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        direction: Direction,
        callback: C,
        fileobj: Option<F>,
        detached: &mut Detached<C, F>,
    ) -> io::Result<()> {
        let index = fd as usize;
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, Entry::default);
        }
        let entry = &mut self.entries[index];
        let before = entry.interest();
        let old = entry.slot(direction).replace(callback);
        let after = entry.interest();
        detached.extend(old);
        if !before.is_empty() {
            detached.fileobjs.extend(fileobj);
            if before == after {
                let _ = poller.renew(fd, after, token(fd));
                return Ok(());
            }
            return poller
                .reregister(fd, after, token(fd))
                .inspect_err(|_| self.forget(poller, fd, detached));
        }
        match poller.register(fd, after, token(fd)) {
            Ok(()) => {
                entry.fileobj = fileobj;
                self.registered += 1;
                if !entry.internal {
                    self.user += 1;
                }
                Ok(())
            }
            Err(err) => {
                detached.extend(entry.slot(direction).take());
                detached.fileobjs.extend(fileobj);
                Err(err)
            }
        }
    }

    /// Clears the reader or writer of `fd`; whether there was one. Removing the last
    /// interest cannot fail (an fd closed before its removal is already gone from epoll).
    pub(crate) fn clear(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        direction: Direction,
        detached: &mut Detached<C, F>,
    ) -> io::Result<bool> {
        let Some(entry) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        else {
            return Ok(false);
        };
        let Some(old) = entry.slot(direction).take() else {
            return Ok(false);
        };
        detached.push(old);
        let interest = entry.interest();
        if interest.is_empty() {
            self.forget(poller, fd, detached);
            return Ok(true);
        }
        poller
            .reregister(fd, interest, token(fd))
            .map(|()| true)
            .inspect_err(|_| self.forget(poller, fd, detached))
    }

    /// Drops every registration of `fd`, ignoring epoll's answer.
    fn forget(&mut self, poller: &Poller, fd: RawFd, detached: &mut Detached<C, F>) {
        let entry = &mut self.entries[fd as usize];
        detached.extend(entry.reader.take());
        detached.extend(entry.writer.take());
        detached.fileobjs.extend(entry.fileobj.take());
        self.registered -= 1;
        if entry.internal {
            entry.internal = false;
        } else {
            self.user -= 1;
        }
        let _ = poller.deregister(fd);
    }

    /// The fd whose registration's object satisfies `is` (the selectors module's search
    /// for an object whose own fd can no longer be read).
    pub(crate) fn fd_of(&self, is: impl Fn(&F) -> bool) -> Option<RawFd> {
        self.entries
            .iter()
            .position(|e| e.fileobj.as_ref().is_some_and(&is))
            .map(|index| index as RawFd)
    }

    /// Marks a registered fd as one of the loop's own (`internal`), or as the user's again.
    pub(crate) fn set_internal(&mut self, fd: RawFd, internal: bool) {
        if let Some(entry) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        {
            if entry.internal != internal && !entry.interest().is_empty() {
                entry.internal = internal;
                if internal {
                    self.user -= 1;
                } else {
                    self.user += 1;
                }
            }
        }
    }

    /// Whether any fd that is not the loop's own is registered.
    pub(crate) fn has_user_fds(&self) -> bool {
        self.user > 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.registered == 0
    }

    /// Hands each callback an event fires to `fire`, which answers whether it still
    /// stands; one that does not (a Handle cancelled while registered) is cleared, as
    /// asyncio's `_process_events` removes it.
    pub(crate) fn dispatch(
        &mut self,
        poller: &Poller,
        event: Event,
        detached: &mut Detached<C, F>,
        mut fire: impl FnMut(Direction, &C) -> bool,
    ) {
        let fd = event.token as RawFd;
        for (direction, fired) in [
            (Direction::Read, event.readable),
            (Direction::Write, event.writable),
        ] {
            if !fired {
                continue;
            }
            let Some(entry) = self.entries.get_mut(event.token as usize) else {
                return;
            };
            let stands = match entry.slot(direction).as_ref() {
                None => true,
                Some(callback) => fire(direction, callback),
            };
            if !stands {
                let _ = self.clear(poller, fd, direction, detached);
            }
        }
    }

    /// `(fd, fileobj, reader, writer)` for every registered fd, in fd order.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (RawFd, Option<&F>, Option<&C>, Option<&C>)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.interest().is_empty())
            .map(|(fd, e)| {
                (
                    fd as RawFd,
                    e.fileobj.as_ref(),
                    e.reader.as_ref(),
                    e.writer.as_ref(),
                )
            })
    }

    /// Unregisters everything (the loop closes); what it held goes to `detached`.
    pub(crate) fn drain(&mut self, poller: Option<&Poller>, detached: &mut Detached<C, F>) {
        for (fd, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if entry.interest().is_empty() {
                continue;
            }
            if let Some(p) = poller {
                let _ = p.deregister(fd as RawFd);
            }
            detached.extend(entry.reader);
            detached.extend(entry.writer);
            detached.fileobjs.extend(entry.fileobj);
        }
        self.registered = 0;
        self.user = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A registry, its poller, and a connected socket pair to register (`fd`).
    struct Fixture {
        poller: Poller,
        registry: IoRegistry<&'static str, u32>,
        detached: Detached<&'static str, u32>,
        fd: RawFd,
        _pair: (UnixStream, UnixStream),
    }

    fn fixture() -> Fixture {
        let pair = UnixStream::pair().unwrap();
        Fixture {
            poller: Poller::new().unwrap(),
            registry: IoRegistry::default(),
            detached: Detached::default(),
            fd: pair.0.as_raw_fd(),
            _pair: pair,
        }
    }

    impl Fixture {
        fn set(
            &mut self,
            fd: RawFd,
            d: Direction,
            c: &'static str,
            f: Option<u32>,
        ) -> io::Result<()> {
            self.registry
                .set(&self.poller, fd, d, c, f, &mut self.detached)
        }

        fn clear(&mut self, d: Direction) -> bool {
            self.registry
                .clear(&self.poller, self.fd, d, &mut self.detached)
                .unwrap()
        }

        fn detached(&self) -> Vec<&'static str> {
            self.detached.callbacks().copied().collect()
        }

        fn fired(&mut self, event: Event) -> Vec<&'static str> {
            let mut seen = Vec::new();
            self.registry
                .dispatch(&self.poller, event, &mut self.detached, |_, c| {
                    seen.push(*c);
                    *c != "cancelled"
                });
            seen
        }
    }

    #[test]
    fn interest_follows_reader_and_writer() {
        let mut t = fixture();
        let fd = t.fd;
        t.set(fd, Direction::Read, "r", Some(7)).unwrap();
        t.set(fd, Direction::Write, "w", None).unwrap();
        assert!(t.registry.has_user_fds() && !t.registry.is_empty());
        assert_eq!(t.registry.fd_of(|f| *f == 7), Some(fd));
        let all: Vec<_> = t.registry.iter().collect();
        assert_eq!(all, vec![(fd, Some(&7), Some(&"r"), Some(&"w"))]);
        assert!(t.clear(Direction::Read));
        assert!(!t.clear(Direction::Read));
        assert!(t.clear(Direction::Write));
        assert!(t.registry.is_empty() && !t.registry.has_user_fds());
        assert_eq!(t.detached(), ["r", "w"]);
        assert_eq!(t.detached.fileobjs, vec![7]);
    }

    #[test]
    fn a_replaced_callback_is_detached() {
        let mut t = fixture();
        for callback in ["first", "second"] {
            t.set(t.fd, Direction::Read, callback, None).unwrap();
        }
        assert_eq!(t.detached(), ["first"]);
    }

    #[test]
    fn a_failed_registration_keeps_nothing() {
        let mut t = fixture();
        let closed = {
            let (a, _b) = UnixStream::pair().unwrap();
            a.as_raw_fd()
        };
        assert!(t.set(closed, Direction::Read, "r", Some(1)).is_err());
        assert!(t.registry.is_empty());
        assert_eq!(t.detached(), ["r"]);
        assert_eq!(t.detached.fileobjs, vec![1]);
    }

    #[test]
    fn internal_fds_are_not_the_users() {
        let mut t = fixture();
        t.set(t.fd, Direction::Read, "r", None).unwrap();
        t.registry.set_internal(t.fd, true);
        assert!(!t.registry.is_empty() && !t.registry.has_user_fds());
        t.registry.set_internal(t.fd, false);
        assert!(t.registry.has_user_fds());
    }

    #[test]
    fn dispatch_clears_a_callback_that_no_longer_stands() {
        let mut t = fixture();
        t.set(t.fd, Direction::Write, "cancelled", None).unwrap();
        let event = Event {
            token: token(t.fd),
            readable: true,
            writable: true,
        };
        assert_eq!(t.fired(event), ["cancelled"]);
        assert!(t.registry.is_empty());
        assert!(t.fired(event).is_empty());
    }
}
