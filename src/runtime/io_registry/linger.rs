//! Lingering: an fd epoll keeps watching after its last callback is gone, unseen by
//! everything else, because a registration is likely to come for it within a pass.
//! `release` is for a caller that will wait on the same object again (the `sock_*`
//! operations, which register for every wait); `hand_over` for a connect that completes,
//! whose fd lingers for reading, for the transport made on it. Either registration takes
//! the fd back without an epoll call; an event for it, or a whole pass without one
//! (`settle`), ends the lingering.

use std::io;
use std::os::fd::RawFd;

use super::{interest_of, token, Detached, Direction, Entry, IoRegistry, SameObject};
use crate::runtime::poller::{Interest, Poller};

impl<C, F: SameObject> IoRegistry<C, F> {
    /// `set` on a lingering fd. The object it lingers for (any registration, for a fd
    /// handed over) finds epoll still watching, and changes the interest only if it
    /// differs; anything else may be a new file under the old number (the kernel dropped
    /// the old one when it closed), so it renews.
    pub(super) fn take_back(
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
        let Some(entry) = self.entry_mut(fd) else {
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
        let writer_only = self
            .entry_mut(fd)
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

    pub(super) fn stop_lingering(
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
}
