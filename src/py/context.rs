//! `contextvars` from native code: copying the current context, and running code inside
//! one as `Context.run` does.
//!
//! Most callbacks are scheduled from code that has set no context variable, and each would
//! carry a copy of an empty context, allocated when it is scheduled and freed after it ran.
//! A handle keeps no such copy (`copy_current_unless_empty`): it runs in an empty context
//! of its own, which the loop makes or reuses (`EmptyContext`) when the handle runs. That
//! is the same to the callback, and a queued handle holds one object less.
//!
//! Whether the current context is empty is known without copying it where the thread
//! state's `context` field (CPython's own reference to the current context, which
//! `PyContext_CopyCurrent` copies) has been found: CPython has no function that returns
//! the current context itself, and a copy made only to be measured and freed was a
//! measurable part of each `call_soon`. The field's place is not part of the stable ABI,
//! so it is not assumed: `find_thread_context` looks for it once, entering contexts of
//! its own and watching which word of the thread state follows them, within the part of
//! the struct every supported CPython has. Where it is not found, every `call_soon` copies.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::py::args::Args;
use crate::py::gc;

/// `contextvars.copy_context()`, through the C API.
pub(crate) fn copy_current_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: PyContext_CopyCurrent returns a new reference, or NULL with an exception set;
    // from_owned_ptr_or_err takes ownership of exactly that reference.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// A copy of the current context, or None where the copy would be empty.
pub(crate) fn copy_current_unless_empty(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    match current_is_empty() {
        Some(true) => Ok(None),
        Some(false) => copy_current_context(py).map(Some),
        None => {
            // Released as a Bound: a Py dropped here would wait in PyO3's pool of deferred
            // releases.
            let copy = copy_current_context(py)?.into_bound(py);
            // SAFETY: `copy` is a live Context.
            Ok((unsafe { length(copy.as_ptr()) } != 0).then(|| copy.unbind()))
        }
    }
}

/// The byte offset of the thread state's `context` field; 0 (where `prev` lies in every
/// CPython) until `find_thread_context` has found it.
static THREAD_CONTEXT: AtomicUsize = AtomicUsize::new(0);

/// How far into the thread state the field is looked for: the smallest the struct is among
/// the supported versions (3.12's), so that looking never reads past its end.
const THREAD_STATE_WORDS: usize = 288 / std::mem::size_of::<usize>();

/// Whether the current context is empty (a thread that has used none has none yet, which
/// is the same); None where the thread state's field is not known.
#[inline(always)]
fn current_is_empty() -> Option<bool> {
    let offset = THREAD_CONTEXT.load(Relaxed);
    if offset == 0 {
        return None;
    }
    // SAFETY: callers hold the GIL, so the thread has a state; `find_thread_context` found
    // its current context at `offset`, a strong reference CPython keeps there (or NULL)
    // for as long as that context is current.
    unsafe {
        let state = ffi::PyThreadState_Get().cast::<u8>();
        let current = state.add(offset).cast::<*mut ffi::PyObject>().read();
        Some(current.is_null() || length(current) == 0)
    }
}

/// Finds the thread state's `context` field, if it can be told apart: the one word, among
/// the first `THREAD_STATE_WORDS`, that holds each of two new contexts while it is entered
/// and what it held before once it is left. Called once, with the GIL, on import, which
/// it never fails: whatever goes wrong leaves the field unknown.
pub(crate) fn find_thread_context(py: Python<'_>) {
    if let Ok(Some(offset)) = probe_thread_context(py) {
        THREAD_CONTEXT.store(offset, Relaxed);
    }
}

fn probe_thread_context(py: Python<'_>) -> PyResult<Option<usize>> {
    let entered = [new_context(py)?, new_context(py)?];
    // SAFETY: the GIL is held, so this thread has a state.
    let state = unsafe { ffi::PyThreadState_Get().cast::<*mut ffi::PyObject>() };
    let word = |i: usize| {
        debug_assert!(i < THREAD_STATE_WORDS);
        // SAFETY: `i` is below `THREAD_STATE_WORDS`, so the word lies within the smallest
        // `PyThreadState` of the supported versions; the GIL is held, so no other thread
        // changes this thread's state meanwhile.
        unsafe { state.add(i).read() }
    };
    let before: Vec<_> = (0..THREAD_STATE_WORDS).map(word).collect();
    let mut found = None;
    for context in &entered {
        let holding: Vec<usize> = in_context(context, || {
            Ok((0..THREAD_STATE_WORDS)
                .filter(|&i| word(i) == context.as_ptr())
                .collect())
        })?;
        let [only] = holding[..] else {
            return Ok(None);
        };
        if found.is_some_and(|first| first != only) || word(only) != before[only] {
            return Ok(None);
        }
        found = Some(only);
    }
    Ok(found
        .filter(|&i| i != 0)
        .map(|i| i * std::mem::size_of::<usize>()))
}

/// Where `find_thread_context` found the field, for the test that names this dependency.
#[pyfunction]
pub(crate) fn _thread_context_offset() -> Option<usize> {
    Some(THREAD_CONTEXT.load(Relaxed)).filter(|&offset| offset != 0)
}

/// The number of variables set in `context`, a Context: its type's own length slot, as
/// `len()` would call it, without `PyObject_Size`'s search for the slot.
///
/// # Safety
/// `context` is a live Context, and the caller holds the GIL.
unsafe fn length(context: *mut ffi::PyObject) -> isize {
    // SAFETY: per the contract. The type, `PyContext_Type`, has a mapping length slot
    // (`len(context)`), which takes the object and cannot fail.
    unsafe {
        let mapping = (*ffi::Py_TYPE(context)).tp_as_mapping;
        if let Some(len) = mapping.as_ref().and_then(|mapping| mapping.mp_length) {
            return len(context);
        }
        ffi::PyObject_Size(context)
    }
}

/// `contextvars.Context()`, through the C API.
pub(crate) fn new_context(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyContext_New returns a new reference, or NULL with an exception set;
    // from_owned_ptr_or_err takes ownership of exactly that reference.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_New()) }
}

/// The empty context a callback ran in, kept for the next one when nothing else can tell:
/// it is still empty, and neither a strong nor a weak reference to it is left (a `Token`
/// of a variable set while it ran keeps one, for instance).
#[derive(Default)]
pub(crate) struct EmptyContext(Option<Py<PyAny>>);

impl EmptyContext {
    /// An empty context nothing else refers to.
    pub(crate) fn take<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0.take().map(|kept| kept.into_bound(py)) {
            // Checked again: the collector lists it (`gc.get_objects()`) while it waits.
            Some(kept) if gc::is_unobserved(kept.as_ptr()) => Ok(kept),
            _ => new_context(py),
        }
    }

    /// Keeps `context`, which a callback ran in, if it can pass for a new one.
    pub(crate) fn give_back(&mut self, context: Bound<'_, PyAny>) {
        if is_untouched(&context, 1) {
            self.0 = Some(context.unbind());
        }
    }
}

/// Whether `context` is empty and only its `holders` known references reach it, so that
/// a new empty context could take its place unnoticed.
pub(crate) fn is_untouched(context: &Bound<'_, PyAny>, holders: isize) -> bool {
    // SAFETY: `context` is a live Context (only contexts reach here) and the GIL is held.
    gc::is_held_only_by(context.as_ptr(), holders) && unsafe { length(context.as_ptr()) } == 0
}

/// `body`'s result, run inside `context`; None if entering or leaving the context failed,
/// with the exception set (a result `body` made is dropped then). An exception `body` set
/// stays set across the exit, as `Context.run` leaves it.
#[inline(always)]
fn entered<R>(context: &Bound<'_, PyAny>, body: impl FnOnce() -> R) -> Option<R> {
    // SAFETY: `context` is a live object for the duration of the call; PyContext_Enter
    // type-checks it and sets an exception when it is not a Context or already entered.
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } < 0 {
        return None;
    }
    let result = body();
    // SAFETY: this thread entered `context` just above and has not exited it.
    if unsafe { ffi::PyContext_Exit(context.as_ptr()) } < 0 {
        return None;
    }
    Some(result)
}

/// Runs `body` inside `context`, as `Context.run` would.
pub(crate) fn in_context<R>(
    context: &Bound<'_, PyAny>,
    body: impl FnOnce() -> PyResult<R>,
) -> PyResult<R> {
    entered(context, body).unwrap_or_else(|| Err(PyErr::fetch(context.py())))
}

/// `call_in_context` when `context=` was given something other than a Context: asyncio
/// calls `context.run(callback, *args)`, and this fails (or runs) exactly as it does there.
/// Out of line, so that the common call stays small.
#[cold]
#[inline(never)]
fn call_in_other_context(
    context: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    args: &Args,
) -> PyResult<()> {
    let py = context.py();
    let all: Vec<_> = std::iter::once(callback.clone())
        .chain(args.to_tuple(py)?.iter())
        .collect();
    let all = PyTuple::new(py, all)?;
    context
        .call_method1(pyo3::intern!(py, "run"), all)
        .map(drop)
}

/// Runs `callback(*args)` inside `context`.
pub(crate) fn call_in_context(
    context: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    args: &Args,
) -> PyResult<()> {
    // SAFETY: `context` is a live object; this compares its type pointer.
    if unsafe { ffi::PyContext_CheckExact(context.as_ptr()) } == 0 {
        return call_in_other_context(context, callback, args);
    }
    // The call's result as a bare reference, not a `PyResult`: that, several words wide,
    // was copied through the stack around `PyContext_Exit` in a way that stalled the CPU
    // on every call (`perf`).
    let py = context.py();
    let called = entered(context, || {
        // SAFETY: the GIL is held and `callback` is a live object; the call returns a new
        // reference, or NULL with an exception set.
        unsafe { Bound::from_owned_ptr_or_opt(py, args.call(callback.as_ptr())) }
    });
    match called {
        Some(Some(_result)) => Ok(()),
        _ => Err(PyErr::fetch(py)),
    }
}
