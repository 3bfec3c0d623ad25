//! What the loop's queues hold: the ready queue's entries, and the readers and writers of
//! the fd registry.

use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::py::gc::{visit_all, Visit};
use crate::py::handles::{Handle, Queued};
use crate::py::transports::{Step, StreamTransport, WatchId};
use crate::runtime::io_registry::{Detached, Direction, SameObject};

/// One entry of the ready queue. The common entries (a Handle, a transport's event) are
/// held inline and the rare ones boxed, so that an entry takes two words: a `call_soon`
/// batch queues hundreds of thousands.
pub(crate) enum Ready {
    Handle(Queued<Handle>),
    /// A native transport's fd is ready: the transport reads or flushes without a Handle.
    Transport(Py<StreamTransport>, Direction, WatchId),
    /// A step of a native transport's set-up or tear-down, which asyncio would queue as a
    /// Handle (`transports/lifecycle.rs`).
    Step(Box<(Py<StreamTransport>, Step)>),
    /// A waiter to wake (`wake.rs`).
    Wake(Box<Wake>),
}

// Two words, as the doc above says; a new inline variant must not grow every entry.
const _: () = assert!(std::mem::size_of::<Ready>() == 16);

impl Visit for Ready {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Ready::Handle(h) => h.visit(visit),
            Ready::Transport(t, ..) => visit.call(t),
            Ready::Step(step) => {
                visit.call(&step.0)?;
                step.1.visit_with(visit)
            }
            Ready::Wake(wake) => wake.visit_with(visit),
        }
    }
}

/// What runs when an fd is ready: a Handle (`add_reader`), or a native transport, which
/// the run loop calls directly, with no Handle and no Python frame in between.
pub(crate) enum IoCallback {
    Handle(Py<Handle>),
    Transport(Py<StreamTransport>, WatchId),
}

impl IoCallback {
    /// The object to show Python code (the selector view) and the collector.
    pub(crate) fn as_any(&self) -> &Py<PyAny> {
        match self {
            IoCallback::Handle(h) => h.as_any(),
            IoCallback::Transport(t, _) => t.as_any(),
        }
    }
}

impl SameObject for Py<PyAny> {
    fn is_same(&self, other: &Self) -> bool {
        self.is(other)
    }
}

pub(super) type IoDetached = Detached<IoCallback, Py<PyAny>>;

/// One fd's registration, `(fd, fileobj, reader, writer)`, with `fileobj` None for an fd
/// registered by its number.
pub(super) type Registration = (
    RawFd,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
);

/// A waiter to wake with a result, in place of the Handle asyncio queues (`wake.rs`).
pub(super) struct Wake {
    pub(super) waiter: Py<PyAny>,
    pub(super) result: Py<PyAny>,
    /// The context the Handle would have run in.
    pub(super) context: Py<PyAny>,
}

impl Visit for Wake {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit_all(visit, &[&self.waiter, &self.result, &self.context])
    }
}
