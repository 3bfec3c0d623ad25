//! The readers and writers of `add_reader`/`add_writer`, and of the loop's own transports:
//! one level-triggered epoll registration per fd, whose interest follows which of the two
//! are set.

use std::io;
use std::os::fd::RawFd;

use pyo3::prelude::*;

use super::event_loop::Ready;
use super::handles::Handle;
use super::queued::Queued;
use super::transports::StreamTransport;
use crate::runtime::poller::{Event, Interest, Poller};
use crate::runtime::ready::ReadyQueue;

#[derive(Clone, Copy)]
pub enum Direction {
    Read,
    Write,
}

/// What runs when an fd is ready: a Handle (`add_reader`), or a native transport, which
/// the run loop calls directly, with no Handle and no Python frame in between.
pub enum IoCallback {
    Handle(Py<Handle>),
    Transport(Py<StreamTransport>, WatchId),
}

/// Which of a transport's registrations of its reader or writer an event came from.
/// asyncio cancels a removed reader's Handle, so an event queued for it is dropped even
/// when a new reader was added since (a `pause_reading` then `resume_reading` in one
/// pass); a transport numbers its registrations to do the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WatchId(pub u32);

impl IoCallback {
    /// The object to show Python code (the selector view) and the collector.
    pub fn as_any(&self) -> &Py<PyAny> {
        match self {
            IoCallback::Handle(h) => h.as_any(),
            IoCallback::Transport(t, _) => t.as_any(),
        }
    }
}

#[derive(Default)]
struct IoEntry {
    reader: Option<IoCallback>,
    writer: Option<IoCallback>,
    /// The object the fd was first registered by, when not an int: as the selectors module
    /// keeps `key.fileobj`, so that a socket closed or detached since can still be found
    /// (and removed) by the object itself.
    fileobj: Option<Py<PyAny>>,
    /// One of the loop's own fds (the signal self-pipe): it does not force a poll on every
    /// pass.
    internal: bool,
}

impl IoEntry {
    fn interest(&self) -> Interest {
        Interest {
            readable: self.reader.is_some(),
            writable: self.writer.is_some(),
        }
    }

    fn slot(&mut self, direction: Direction) -> &mut Option<IoCallback> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

/// Entries indexed by fd number (fds are small and dense, so a vector beats hashing), with
/// counts kept so the per-pass questions cost a load.
#[derive(Default)]
pub struct IoRegistry {
    entries: Vec<IoEntry>,
    registered: usize,
    user: usize,
}

/// One fd's registration: `(fd, fileobj, reader, writer)`, with `fileobj` None for an fd
/// registered by its number.
pub type Registration = (
    RawFd,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
);

/// What leaves the registry, released by the caller outside the loop lock: finalizers may
/// run arbitrary code. After a change that succeeded, a replaced or removed Handle is
/// cancelled, as asyncio's selector loop does; after one that failed, the callbacks are
/// dropped uncancelled, as the selectors module drops the key it failed to modify.
///
/// A change usually releases one callback, held without allocating (`first`).
#[derive(Default)]
pub struct Released {
    first: Option<IoCallback>,
    more: Vec<IoCallback>,
    fileobjs: Vec<Py<PyAny>>,
}

impl Released {
    fn push(&mut self, callback: IoCallback) {
        if self.first.is_none() {
            self.first = Some(callback);
        } else {
            self.more.push(callback);
        }
    }

    fn extend(&mut self, callbacks: impl IntoIterator<Item = IoCallback>) {
        for callback in callbacks {
            self.push(callback);
        }
    }

    pub fn callbacks(&self) -> impl Iterator<Item = &IoCallback> {
        self.first.iter().chain(&self.more)
    }
}

fn token(fd: RawFd) -> u64 {
    fd as u64
}

impl IoRegistry {
    /// Sets the reader or writer of `fd`, registered by `fileobj` (None for an int), with
    /// the selectors module's outcomes: a new fd is added, a changed interest modified (a
    /// failure forgets the fd), and an unchanged one (a reader replacing a reader) cannot
    /// fail, since the module makes no epoll call for it. ferroloop still renews that
    /// registration, ignoring epoll's answer: an fd closed and reopened under the same
    /// number is then watched, where asyncio would never report it.
    pub fn set(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        direction: Direction,
        callback: IoCallback,
        fileobj: Option<Py<PyAny>>,
        released: &mut Released,
    ) -> io::Result<()> {
        let index = fd as usize;
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, IoEntry::default);
        }
        let entry = &mut self.entries[index];
        let before = entry.interest();
        let old = entry.slot(direction).replace(callback);
        let after = entry.interest();
        released.extend(old);
        if !before.is_empty() {
            released.fileobjs.extend(fileobj);
            if before == after {
                let _ = poller.renew(fd, after, token(fd));
                return Ok(());
            }
            return poller
                .reregister(fd, after, token(fd))
                .inspect_err(|_| self.forget(poller, fd, released));
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
                released.extend(entry.slot(direction).take());
                released.fileobjs.extend(fileobj);
                Err(err)
            }
        }
    }

    /// Clears the reader or writer of `fd`; whether there was one (it goes to `released`).
    /// As in the selectors module, removing the last interest cannot fail (an fd closed
    /// before its removal is already gone from epoll), and a failed modification forgets
    /// the fd.
    pub fn clear(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        direction: Direction,
        released: &mut Released,
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
        released.push(old);
        let interest = entry.interest();
        if interest.is_empty() {
            self.forget(poller, fd, released);
            return Ok(true);
        }
        poller
            .reregister(fd, interest, token(fd))
            .map(|()| true)
            .inspect_err(|_| self.forget(poller, fd, released))
    }

    /// Drops every registration of `fd`, ignoring epoll's answer.
    fn forget(&mut self, poller: &Poller, fd: RawFd, released: &mut Released) {
        let entry = &mut self.entries[fd as usize];
        released.extend(entry.reader.take());
        released.extend(entry.writer.take());
        released.fileobjs.extend(entry.fileobj.take());
        self.registered -= 1;
        if entry.internal {
            entry.internal = false;
        } else {
            self.user -= 1;
        }
        let _ = poller.deregister(fd);
    }

    /// The fd `fileobj` was registered by: the selectors module's search for an object
    /// whose own fd can no longer be read.
    pub fn fd_of(&self, fileobj: &Bound<'_, PyAny>) -> Option<RawFd> {
        self.entries
            .iter()
            .position(|e| e.fileobj.as_ref().is_some_and(|o| o.is(fileobj)))
            .map(|index| index as RawFd)
    }

    /// Marks a registered fd as one of the loop's own (`internal`), or as the user's again.
    pub fn set_internal(&mut self, fd: RawFd, internal: bool) {
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

    /// Whether any fd the user (or a transport) registered is present.
    pub fn has_user_fds(&self) -> bool {
        self.user > 0
    }

    pub fn is_empty(&self) -> bool {
        self.registered == 0
    }

    /// Queues the callbacks an event makes ready. A handle cancelled while registered is
    /// unregistered instead, as asyncio's `_process_events` does.
    pub fn dispatch(
        &mut self,
        py: Python<'_>,
        poller: &Poller,
        event: Event,
        ready: &mut ReadyQueue<Ready>,
        released: &mut Released,
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
            match entry.slot(direction).as_ref() {
                None => {}
                Some(IoCallback::Transport(t, id)) => {
                    ready.push(Ready::Transport(t.clone_ref(py), direction, *id));
                }
                Some(IoCallback::Handle(handle)) => {
                    if handle.get().is_cancelled() {
                        let _ = self.clear(poller, fd, direction, released);
                    } else {
                        ready.push(Ready::Handle(Queued::tracked(handle.clone_ref(py))));
                    }
                }
            }
        }
    }

    /// Which fds have a reader and which a writer, for introspection.
    pub fn snapshot(&self, py: Python<'_>) -> Vec<Registration> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.interest().is_empty())
            .map(|(fd, e)| {
                (
                    fd as RawFd,
                    e.fileobj.as_ref().map(|o| o.clone_ref(py)),
                    e.reader.as_ref().map(|c| c.as_any().clone_ref(py)),
                    e.writer.as_ref().map(|c| c.as_any().clone_ref(py)),
                )
            })
            .collect()
    }

    pub fn visit(&self, mut f: impl FnMut(&Py<PyAny>)) {
        for e in &self.entries {
            e.reader
                .iter()
                .chain(e.writer.iter())
                .for_each(|c| f(c.as_any()));
            e.fileobj.iter().for_each(&mut f);
        }
    }

    /// Unregisters everything (loop close); the caller releases the handles.
    pub fn drain(&mut self, poller: Option<&Poller>, released: &mut Released) {
        for (fd, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if entry.interest().is_empty() {
                continue;
            }
            if let Some(p) = poller {
                let _ = p.deregister(fd as RawFd);
            }
            released.extend(entry.reader);
            released.extend(entry.writer);
            released.fileobjs.extend(entry.fileobj);
        }
        self.registered = 0;
        self.user = 0;
    }
}
