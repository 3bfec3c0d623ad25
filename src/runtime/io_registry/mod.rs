//! The readers and writers of every watched fd: one level-triggered epoll registration per
//! fd, whose interest follows which of the two are set.
//!
//! Generic over the callback `C` (a Handle, or a native transport) and the object `F` an fd
//! was registered by (the selectors module's `key.fileobj`). The outcomes of each change
//! are the selectors module's: a new fd is added, a changed interest modified, and a failed
//! modification forgets the fd.
//!
//! One exception to "interest follows the callbacks": an fd may linger in epoll with no
//! callback, for a registration likely to come within a pass (`linger.rs`).

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
    /// What epoll still watches of an fd that is released but lingers (`release`); empty
    /// otherwise. A lingering fd keeps its `fileobj`, to know its next registration.
    lingers: Interest,
    /// The pass it began to linger in.
    lingers_since: u64,
    /// Lingering since `hand_over`: the registration that takes it back may be by number.
    handed_over: bool,
}

impl<C, F> Default for Entry<C, F> {
    fn default() -> Self {
        Entry {
            reader: None,
            writer: None,
            fileobj: None,
            internal: false,
            lingers: Interest::default(),
            lingers_since: 0,
            handed_over: false,
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

    fn is_lingering(&self) -> bool {
        !self.lingers.is_empty()
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

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty() && self.fileobjs.is_empty()
    }

    /// Drops what it holds, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.more.clear();
        self.fileobjs.clear();
    }

    pub(crate) fn callbacks(&self) -> impl Iterator<Item = &C> {
        self.first.iter().chain(&self.more)
    }
}

/// Whether two registering objects are one: the same Python object for the loop.
pub(crate) trait SameObject {
    fn is_same(&self, other: &Self) -> bool;
}

/// Entries indexed by fd number (fds are small and dense, so a vector beats hashing), with
/// counts kept so the per-pass questions cost a load.
pub(crate) struct IoRegistry<C, F> {
    entries: Vec<Entry<C, F>>,
    registered: usize,
    user: usize,
    /// The fds released to linger, possibly taken back since.
    lingering: Vec<RawFd>,
    /// Polls so far: the clock of lingering.
    passes: u64,
}

impl<C, F> Default for IoRegistry<C, F> {
    fn default() -> Self {
        IoRegistry {
            entries: Vec::new(),
            registered: 0,
            user: 0,
            lingering: Vec::new(),
            passes: 0,
        }
    }
}

impl<C, F> IoRegistry<C, F> {
    /// The entry of `fd`, if the registry has ever had one.
    fn entry_mut(&mut self, fd: RawFd) -> Option<&mut Entry<C, F>> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }
}

fn token(fd: RawFd) -> u64 {
    fd as u64
}

impl<C, F: SameObject> IoRegistry<C, F> {
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
        if entry.is_lingering() {
            return self.take_back(poller, fd, direction, callback, fileobj, detached);
        }
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
                self.count_in(fd);
                Ok(())
            }
            Err(err) => {
                detached.extend(entry.slot(direction).take());
                detached.fileobjs.extend(fileobj);
                Err(err)
            }
        }
    }

    /// Counts `fd` as registered again.
    fn count_in(&mut self, fd: RawFd) {
        self.registered += 1;
        if !self.entries[fd as usize].internal {
            self.user += 1;
        }
    }

    /// Counts `fd` as no longer registered.
    fn count_out(&mut self, fd: RawFd) {
        let entry = &mut self.entries[fd as usize];
        self.registered -= 1;
        if entry.internal {
            entry.internal = false;
        } else {
            self.user -= 1;
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
        let Some(entry) = self.entry_mut(fd) else {
            return Ok(false);
        };
        if entry.handed_over {
            Self::stop_lingering(poller, fd, entry, detached);
            return Ok(false);
        }
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
        self.count_out(fd);
        let entry = &mut self.entries[fd as usize];
        detached.extend(entry.reader.take());
        detached.extend(entry.writer.take());
        detached.fileobjs.extend(entry.fileobj.take());
        let _ = poller.deregister(fd);
    }

    /// The fd whose registration's object satisfies `is` (the selectors module's search
    /// for an object whose own fd can no longer be read).
    pub(crate) fn fd_of(&self, is: impl Fn(&F) -> bool) -> Option<RawFd> {
        self.entries
            .iter()
            .position(|e| !e.interest().is_empty() && e.fileobj.as_ref().is_some_and(&is))
            .map(|index| index as RawFd)
    }

    /// Marks a registered fd as one of the loop's own (`internal`), or as the user's again.
    pub(crate) fn set_internal(&mut self, fd: RawFd, internal: bool) {
        if let Some(entry) = self.entry_mut(fd) {
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
            if entry.is_lingering() {
                // Level-triggered: it would be reported again on every poll.
                return Self::stop_lingering(poller, fd, entry, detached);
            }
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
            if entry.interest().is_empty() && !entry.is_lingering() {
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
        self.lingering.clear();
    }

    /// The objects that lingering fds were registered by (for the collector).
    pub(crate) fn lingering_fileobjs(&self) -> impl Iterator<Item = &F> + '_ {
        self.entries
            .iter()
            .filter(|e| e.is_lingering())
            .filter_map(|e| e.fileobj.as_ref())
    }
}

fn interest_of(direction: Direction) -> Interest {
    Interest {
        readable: direction == Direction::Read,
        writable: direction == Direction::Write,
    }
}

mod linger;
#[cfg(test)]
mod tests;
