//! Running a handle as `Handle._run` does, and reporting what its callback raised.

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;

use super::handle::Handle;
use super::threadsafe::ThreadSafeHandle;
use crate::py::args::Args;
use crate::py::context::{call_in_context, is_untouched, EmptyContext};
use crate::py::gc;
use crate::py::messages;
use crate::py::pyapi;
use crate::py::report::ExceptionContext;

/// Whether an exception must propagate out of the loop rather than reach the exception
/// handler (asyncio lets only these two through).
pub(crate) fn is_exit(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py)
}

/// Runs a handle as `Handle._run` does: `SystemExit` and `KeyboardInterrupt` propagate,
/// any other exception goes to the loop's exception handler. A cancelled handle (its
/// callback already released) is a no-op; the result says whether the callback ran.
/// Inlined into the loop's pass, so that a plain handle pays only the test.
/// A handle with no context of its own runs in `empty`'s.
#[inline(always)]
pub(crate) fn run(handle: &Bound<'_, Handle>, empty: &mut EmptyContext) -> PyResult<bool> {
    if handle.get().threadsafe && !only_the_loop_reaches(handle) {
        return run_threadsafe(handle, empty);
    }
    run_unlocked(handle, empty)
}

/// Whether no code but the loop's can get hold of `handle` while it runs: the caller's is
/// its only reference, no weak one points to it, and the collector does not list it
/// (`Queued::hidden`). Then no other thread can wait on a `_ThreadSafeHandle`'s lock, and
/// taking it (two atomic read-modify-writes on memory a flood has left cold) would change
/// nothing: the callback of a `call_soon_threadsafe` whose handle was dropped runs as a
/// plain one.
fn only_the_loop_reaches(handle: &Bound<'_, Handle>) -> bool {
    let ptr = handle.as_ptr();
    gc::is_unobserved(ptr) && !gc::is_tracked(ptr)
}

/// `_ThreadSafeHandle._run`: `run`, holding the handle's lock.
fn run_threadsafe(handle: &Bound<'_, Handle>, empty: &mut EmptyContext) -> PyResult<bool> {
    ThreadSafeHandle::run_locked(handle.cast::<ThreadSafeHandle>()?, || {
        run_unlocked(handle, empty)
    })
}

fn run_unlocked(handle: &Bound<'_, Handle>, empty: &mut EmptyContext) -> PyResult<bool> {
    let py = handle.py();
    let h = handle.get();
    let Some(call) = h.call_in(py) else {
        return Ok(false);
    };
    let (callback, args) = (call.callback.into_bound(py), call.args);
    // A handle without a context of its own runs in `empty`'s, lent to it for the run:
    // made its own meanwhile if someone else holds the handle, and kept for the next
    // handle after if the run left no trace in it.
    let (context, lent, adopted) = match call.context {
        Some(context) => (context.into_bound(py), false, false),
        None => {
            let context = empty.take(py)?;
            let adopted = gc::is_shared(handle.as_ptr());
            if adopted {
                h.adopt_context(&context);
            }
            (context, true, adopted)
        }
    };
    let called = call_in_context(&context, &callback, &args);
    if lent {
        // Held by the handle and by this frame, and by nothing else.
        if adopted && is_untouched(&context, 2) {
            h.disown_context(py);
        }
        empty.give_back(context);
    }
    match called {
        Ok(()) => {
            args.release(py);
            Ok(true)
        }
        Err(err) if is_exit(py, &err) => Err(err),
        Err(err) => report_error(handle, &callback, &args, err).map(|()| true),
    }
}

/// Reports `err`, raised by what `handle` stands for, as `run` would have: for work the
/// loop does without a Handle, which makes one only when there is an error to report.
pub(crate) fn report(handle: &Bound<'_, Handle>, err: PyErr) -> PyResult<()> {
    let py = handle.py();
    match handle.get().call(py) {
        Some((callback, args)) => report_error(handle, callback.bind(py), &args, err),
        None => Ok(()),
    }
}

fn report_error(
    handle: &Bound<'_, Handle>,
    callback: &Bound<'_, PyAny>,
    args: &Args,
    err: PyErr,
) -> PyResult<()> {
    let py = handle.py();
    let loop_ = handle.get().loop_.bind(py);
    let source_traceback = handle.get().source_traceback(py);
    let debug = handle.get().loop_debug(py)?;
    let source = pyapi::format_callback_source(py, callback, &args.to_tuple(py)?, debug)?;
    let mut context = ExceptionContext::new(
        py,
        &messages::exception_in_callback(&source.str()?.to_string()),
        &err,
    )?
    .with("handle", handle)?;
    if let Some(tb) = source_traceback {
        context = context.with("source_traceback", tb)?;
    }
    context.report(loop_)
}
