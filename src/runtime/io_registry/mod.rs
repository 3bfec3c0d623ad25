//! The readers and writers of every watched fd: one level-triggered epoll registration per
//! fd, whose interest follows which of the two are set.
//!
//! Generic over the callback `C` (a Handle, or a native transport) and the object `F` an fd
//! was registered by (the selectors module's `key.fileobj`). The outcomes of each change
//! are the selectors module's: a new fd is added, a changed interest modified, and a failed
//! modification forgets the fd.
//!
//! One exception to "interest follows the callbacks": `release`, for a caller that will
//! likely wait on the same object again within a pass or two (the `sock_*` operations,
//! which register for every wait). Its fd lingers in epoll, unseen by everything else,
//! until that wait takes it back without an epoll call, an event arrives for it, or it has
//! lingered a whole pass (`settle`). `hand_over` is its twin for a connect that completes:
//! the fd lingers for reading, for the transport made on it.

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

    /// `set` on a lingering fd. The object it lingers for finds epoll still watching, and
    /// changes the interest only if it differs; anything else may be a new file under the
    /// old number (the kernel dropped the old one when it closed), so it renews.
    fn take_back(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        direction: Direction,
        callback: C,
        fileobj: Option<F>,
        detached: &mut Detached<C, F>,
    ) -> io::Result<()> {
        let entry = &mut self.entries[fd as usize];
        let lingered = std::mem::take(&mut entry.lingers);
        let handed_over = std::mem::take(&mut entry.handed_over);
        *entry.slot(direction) = Some(callback);
        let after = entry.interest();
        let by_its_object =
            matches!((&entry.fileobj, &fileobj), (Some(a), Some(b)) if a.is_same(b));
        let same = by_its_object || handed_over;
        let result = if !same {
            poller.renew(fd, after, token(fd))
        } else if after != lingered {
            poller.reregister(fd, after, token(fd))
        } else {
            Ok(())
        };
        if let Err(err) = result {
            detached.extend(entry.slot(direction).take());
            detached.fileobjs.extend(entry.fileobj.take());
            detached.fileobjs.extend(fileobj);
            let _ = poller.deregister(fd);
            return Err(err);
        }
        if by_its_object {
            detached.fileobjs.extend(fileobj);
        } else {
            detached
                .fileobjs
                .extend(std::mem::replace(&mut entry.fileobj, fileobj));
        }
        self.count_in(fd);
        Ok(())
    }

    /// Clears the reader or writer of `fd` as `clear` does, except that when it was the
    /// fd's last interest, epoll keeps watching it for a while (the module's doc).
    pub(crate) fn release(
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
        let watched = entry.interest();
        if entry.slot(direction).is_none() || watched != interest_of(direction) {
            return self.clear(poller, fd, direction, detached);
        }
        detached.extend(entry.slot(direction).take());
        self.linger(fd, watched, false);
        Ok(true)
    }

    /// Clears the writer of `fd`, a connect that has completed, leaving epoll watching it
    /// for reading instead: the transport made on the socket registers its reader a pass
    /// later and takes the fd back without an epoll call, where removing the fd and adding
    /// it again take one each. It lingers as after `release`, except that the registration
    /// that takes it back may be by number: whatever closes the fd meanwhile clears it
    /// first (a transport, or the connect's own clean-up), and `clear` ends the lingering.
    pub(crate) fn hand_over(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        detached: &mut Detached<C, F>,
    ) -> io::Result<bool> {
        let writing = interest_of(Direction::Write);
        let reading = interest_of(Direction::Read);
        let writer_only = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get(i))
            .is_some_and(|entry| entry.interest() == writing);
        if !writer_only || poller.reregister(fd, reading, token(fd)).is_err() {
            return self.clear(poller, fd, Direction::Write, detached);
        }
        detached.extend(self.entries[fd as usize].writer.take());
        self.linger(fd, reading, true);
        Ok(true)
    }

    /// Counts `fd`, whose callbacks are gone, out of the registered ones while epoll still
    /// watches it for `interest`.
    fn linger(&mut self, fd: RawFd, interest: Interest, handed_over: bool) {
        let entry = &mut self.entries[fd as usize];
        entry.lingers = interest;
        entry.lingers_since = self.passes;
        entry.handed_over = handed_over;
        self.count_out(fd);
        self.lingering.push(fd);
    }

    /// Once a pass, before its poll (or where it skips one): stops watching the fds that
    /// have lingered since before the last pass, or all of them when this poll may block
    /// (no wait of theirs is coming soon).
    pub(crate) fn settle(
        &mut self,
        poller: &Poller,
        blocking: bool,
        detached: &mut Detached<C, F>,
    ) {
        self.passes += 1;
        if self.lingering.is_empty() {
            return;
        }
        let oldest_kept = if blocking { u64::MAX } else { self.passes - 1 };
        let mut lingering = std::mem::take(&mut self.lingering);
        lingering.retain(|&fd| {
            let entry = &mut self.entries[fd as usize];
            if !entry.is_lingering() {
                return false;
            }
            if entry.lingers_since >= oldest_kept {
                return true;
            }
            Self::stop_lingering(poller, fd, entry, detached);
            false
        });
        self.lingering = lingering;
    }

    fn stop_lingering(
        poller: &Poller,
        fd: RawFd,
        entry: &mut Entry<C, F>,
        detached: &mut Detached<C, F>,
    ) {
        entry.lingers = Interest::default();
        entry.handed_over = false;
        detached.fileobjs.extend(entry.fileobj.take());
        let _ = poller.deregister(fd);
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
        let Some(entry) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        else {
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

#[cfg(test)]
mod tests;
