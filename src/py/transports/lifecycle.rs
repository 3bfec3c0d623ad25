//! A transport's set-up and tear-down steps, queued without Handles.
//!
//! asyncio's transport schedules each step of its life with `call_soon`: the protocol's
//! `connection_made`, then `_add_reader`, then waking the waiter (the loop's own `Wake`),
//! and at the end
//! `_call_connection_lost`. Each costs a Handle, a bound method and a context copy made
//! and freed per connection. Here each is a `Step` in the ready queue, in the same order
//! and the same pass, run in the context its Handle would have had. The Handle is made
//! only where someone could see it: in debug mode (which times and names callbacks) and
//! for an error, reported to the exception handler as the Handle's would be. The
//! transport runs them (`stream/events.rs`).

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::py::gc::{visit_all, Visit};

pub(crate) enum Step {
    /// `protocol.connection_made(transport)`.
    Made {
        callback: Py<PyAny>,
        shell: Py<PyAny>,
        context: Py<PyAny>,
    },
    /// asyncio's `_add_reader` Handle: reading starts once `connection_made` has run, with
    /// the context it was scheduled in.
    StartReading { context: Py<PyAny> },
    /// `transport._call_connection_lost(exc)`.
    Lost { exc: Py<PyAny>, context: Py<PyAny> },
}

impl Visit for Step {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Step::Made {
                callback,
                shell,
                context,
            } => visit_all(visit, &[callback, shell, context]),
            Step::StartReading { context } => visit.call(context),
            Step::Lost { exc, context } => visit_all(visit, &[exc, context]),
        }
    }
}
