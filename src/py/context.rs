//! `contextvars` from native code: copying the current context, and running code inside
//! one as `Context.run` does.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// `contextvars.copy_context()`, through the C API.
pub(crate) fn copy_current_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: PyContext_CopyCurrent returns a new reference, or NULL with an exception set;
    // from_owned_ptr_or_err takes ownership of exactly that reference.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// Runs `body` inside `context`, as `Context.run` would.
pub(crate) fn in_context<R>(
    context: &Bound<'_, PyAny>,
    body: impl FnOnce() -> PyResult<R>,
) -> PyResult<R> {
    let py = context.py();
    // SAFETY: `context` is a live object for the duration of the call; PyContext_Enter
    // type-checks it and sets an exception when it is not a Context or already entered.
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    let result = body();
    // SAFETY: this thread entered `context` just above and has not exited it.
    if unsafe { ffi::PyContext_Exit(context.as_ptr()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    result
}

/// Runs `callback(*args)` inside `context`.
pub(crate) fn call_in_context(
    context: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<()> {
    // SAFETY: `context` is a live object; this compares its type pointer.
    if unsafe { ffi::PyContext_CheckExact(context.as_ptr()) } == 0 {
        // asyncio calls `context.run(callback, *args)`: whatever `context=` was given,
        // this fails (or runs) exactly as it does there.
        let py = context.py();
        let all: Vec<_> = std::iter::once(callback.clone())
            .chain(args.iter())
            .collect();
        let all = PyTuple::new(py, all)?;
        return context
            .call_method1(pyo3::intern!(py, "run"), all)
            .map(drop);
    }
    in_context(context, || {
        if args.is_empty() {
            callback.call0()
        } else {
            callback.call1(args)
        }
        .map(drop)
    })
}
