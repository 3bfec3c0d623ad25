//! How the loop runs a transport: a ready fd (`run_event`), in debug mode as the Handle
//! asyncio would have made (`event_handle`), and the steps it queued.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{StreamTransport, WatchId};
use crate::py::args::Args;
use crate::py::context::in_context;
use crate::py::handles::{self, Handle};
use crate::py::messages;
use crate::py::report::ExceptionContext;
use crate::py::transports::lifecycle::Step;
use crate::runtime::io_registry::Direction;

/// Whether an event queued for the transport still counts: one that came through a
/// registration since removed is dropped, as asyncio's loop drops a cancelled Handle.
pub(crate) fn is_watching(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    id: WatchId,
) -> bool {
    let mut st = transport.get().state();
    *StreamTransport::watching(&mut st, direction) == Some(id)
}

/// The loop's entry point for a ready fd: runs the transport's reader or writer inside the
/// context asyncio's Handle for it would have had. Everything it needs from the state is
/// taken under one lock; the result says whether the event still counted (`is_watching`).
pub(crate) fn run_event(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    id: WatchId,
) -> PyResult<bool> {
    let py = transport.py();
    let this = transport.get();
    let (context, receiver) = {
        let mut st = this.state();
        if *StreamTransport::watching(&mut st, direction) != Some(id) {
            return Ok(false);
        }
        match direction {
            Direction::Read if st.conn_lost > 0 => return Ok(true),
            Direction::Read => (
                st.read_context.as_ref().map(|c| c.clone_ref(py)),
                st.protocol.as_ref().map(|p| (p.clone_ref(py), st.receiver)),
            ),
            Direction::Write => (st.write_context.as_ref().map(|c| c.clone_ref(py)), None),
        }
    };
    let body = || match direction {
        Direction::Read => StreamTransport::receive(transport, receiver),
        Direction::Write => this.write_ready(py),
    };
    let result = match context {
        Some(ctx) => in_context(ctx.bind(py), body),
        None => body(),
    };
    match result {
        Err(err) if !handles::is_exit(py, &err) => report_error(transport, direction, err),
        other => other,
    }
    .map(|()| true)
}

/// An exception escaping the transport's own code (a failing `_fatal_error`, say) reaches
/// the exception handler as one escaping asyncio's reader Handle would.
fn report_error(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    err: PyErr,
) -> PyResult<()> {
    let py = transport.py();
    let handle = event_handle(transport, direction)?;
    let message = messages::exception_in_callback(&handle.repr()?.to_string());
    ExceptionContext::new(py, &message, &err)?
        .with("handle", handle)?
        .report(&transport.get().loop_any(py))
}

/// The Handle asyncio's loop would hold for this event: `_read_ready` or `_write_ready` in
/// the registration's context. Debug mode runs events through it.
pub(crate) fn event_handle<'py>(
    transport: &Bound<'py, StreamTransport>,
    direction: Direction,
) -> PyResult<Bound<'py, Handle>> {
    let py = transport.py();
    let (name, context) = {
        let st = transport.get().state();
        match direction {
            Direction::Read => (
                "_read_ready",
                st.read_context.as_ref().map(|c| c.clone_ref(py)),
            ),
            Direction::Write => (
                "_write_ready",
                st.write_context.as_ref().map(|c| c.clone_ref(py)),
            ),
        }
    };
    let callback = transport.getattr(name)?;
    let this = transport.get();
    let loop_ = this.loop_any(py);
    let handle = Handle::create(
        callback,
        Args::none(py),
        context.map(|c| c.into_bound(py)),
        &loop_,
        false,
    )?;
    Bound::new(py, handle)
}

/// Runs a step as its Handle would run: an exception other than `SystemExit` and
/// `KeyboardInterrupt` goes to the exception handler.
pub(crate) fn run_step(transport: &Bound<'_, StreamTransport>, step: &Step) -> PyResult<bool> {
    let py = transport.py();
    let outcome = match step {
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
        Step::Lost { exc, context } => in_context(context.bind(py), || {
            transport.get().call_connection_lost(py, exc.bind(py))
        }),
    };
    match outcome {
        Ok(()) => Ok(true),
        Err(err) if handles::is_exit(py, &err) => Err(err),
        Err(err) => handles::report(&step_handle(transport, step)?, err).map(|()| true),
    }
}

/// The Handle asyncio's transport would have queued for this step.
pub(crate) fn step_handle<'py>(
    transport: &Bound<'py, StreamTransport>,
    step: &Step,
) -> PyResult<Bound<'py, Handle>> {
    let py = transport.py();
    let (callback, args, context) = match step {
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
        Step::Lost { exc, context } => (
            transport.getattr(intern!(py, "_call_connection_lost"))?,
            PyTuple::new(py, [exc])?,
            context,
        ),
    };
    let this = transport.get();
    let loop_ = this.loop_any(py);
    let handle = Handle::create(
        callback,
        Args::tuple(args)?,
        Some(context.bind(py).clone()),
        &loop_,
        false,
    )?;
    Bound::new(py, handle)
}
