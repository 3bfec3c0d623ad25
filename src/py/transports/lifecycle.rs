//! A transport's set-up and tear-down steps, queued without Handles.
//!
//! asyncio's transport schedules each step of its life with `call_soon`: the protocol's
//! `connection_made`, then `_add_reader`, then waking the waiter, and at the end
//! `_call_connection_lost`. Each costs a Handle, a bound method and a context copy made
//! and freed per connection. Here each is a `Step` in the ready queue, in the same order
//! and the same pass, run in the context its Handle would have had. The Handle is made
//! only where someone could see it: in debug mode (which times and names callbacks) and
//! for an error, reported to the exception handler as the Handle's would be.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use super::stream::StreamTransport;
use crate::py::handles::{self, in_context, Handle};
use crate::py::pyapi;

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
    /// `futures._set_result_unless_cancelled(waiter, result)`.
    Wake {
        waiter: Py<PyAny>,
        result: Py<PyAny>,
        context: Py<PyAny>,
    },
    /// `transport._call_connection_lost(exc)`.
    Lost { exc: Py<PyAny>, context: Py<PyAny> },
}

/// `futures._set_result_unless_cancelled`.
fn set_result_unless_cancelled(waiter: &Bound<'_, PyAny>, result: &Py<PyAny>) -> PyResult<()> {
    let py = waiter.py();
    if waiter.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
        return Ok(());
    }
    waiter
        .call_method1(intern!(py, "set_result"), (result,))
        .map(drop)
}

impl Step {
    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Step::Made {
                callback,
                shell,
                context,
            } => {
                visit.call(callback)?;
                visit.call(shell)?;
                visit.call(context)
            }
            Step::StartReading { context } => visit.call(context),
            Step::Wake {
                waiter,
                result,
                context,
            } => {
                visit.call(waiter)?;
                visit.call(result)?;
                visit.call(context)
            }
            Step::Lost { exc, context } => {
                visit.call(exc)?;
                visit.call(context)
            }
        }
    }

    /// Runs the step as its Handle would run: an exception other than `SystemExit` and
    /// `KeyboardInterrupt` goes to the exception handler.
    pub(crate) fn run(&self, transport: &Bound<'_, StreamTransport>) -> PyResult<bool> {
        let py = transport.py();
        let outcome = match self {
            Step::Made {
                callback,
                shell,
                context,
            } => in_context(context.bind(py), || {
                callback.bind(py).call1((shell,)).map(drop)
            }),
            Step::StartReading { context } => {
                StreamTransport::start_reading_in(transport, context.clone_ref(py))
            }
            Step::Wake { waiter, result, .. } => {
                set_result_unless_cancelled(waiter.bind(py), result)
            }
            Step::Lost { exc, context } => in_context(context.bind(py), || {
                transport.get().call_connection_lost(py, exc.bind(py))
            }),
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(err) if handles::is_exit(py, &err) => Err(err),
            Err(err) => handles::report(&self.handle(transport)?, err).map(|()| true),
        }
    }

    /// The Handle asyncio's transport would have queued for this step.
    pub(crate) fn handle<'py>(
        &self,
        transport: &Bound<'py, StreamTransport>,
    ) -> PyResult<Bound<'py, Handle>> {
        let py = transport.py();
        let (callback, args, context) = match self {
            Step::Made {
                callback,
                shell,
                context,
            } => (
                callback.bind(py).clone(),
                PyTuple::new(py, [shell])?,
                context,
            ),
            Step::StartReading { context } => (
                transport.getattr(intern!(py, "_start_reading"))?,
                PyTuple::empty(py),
                context,
            ),
            Step::Wake {
                waiter,
                result,
                context,
            } => (
                pyapi::set_result_unless_cancelled(py)?,
                PyTuple::new(py, [waiter, result])?,
                context,
            ),
            Step::Lost { exc, context } => (
                transport.getattr(intern!(py, "_call_connection_lost"))?,
                PyTuple::new(py, [exc])?,
                context,
            ),
        };
        let loop_ = transport.get().loop_any(py);
        let handle = Handle::create(
            callback,
            args,
            Some(context.bind(py).clone()),
            &loop_,
            false,
        )?;
        Bound::new(py, handle)
    }
}
