//! `Handle` and `TimerHandle`: what `call_soon` and `call_later` return, and what the
//! ready queue and the timer heap hold.
//!
//! They carry the attributes asyncio's own Handle has (`_callback`, `_args`, `_cancelled`,
//! `_when`, `_source_traceback`, ...), so debuggers and `asyncio.events.Handle._repr_info`
//! see them as they see the stdlib's.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::{PyTraverseError, PyTypeInfo, PyVisit};

use super::errors::shield;
use super::event_loop::LoopCore;
use super::gil_cell::GilCell;
use super::pyapi;
use super::queued;
use crate::runtime::run_lock::RunLock;

/// Frozen, so PyO3 keeps no borrow flag: each borrow of one costs two atomic
/// read-modify-writes, several per `call_soon`. What changes lives in a `GilCell`, and
/// `cancelled`, read on every pass over the timer heap, in a relaxed atomic (plain loads).
#[pyclass(frozen, module = "ferroloop._ferroloop", subclass, weakref)]
pub struct Handle {
    /// Released by `Drop`, without PyO3's check for an attached thread (`release`).
    pub(crate) loop_: ManuallyDrop<Py<PyAny>>,
    cancelled: AtomicBool,
    /// A `ThreadSafeHandle`, whose runs take its lock.
    threadsafe: bool,
    state: GilCell<HandleState>,
}

struct HandleState {
    /// Replaced only while the handle is spare (`HandlePool`), when nothing else holds it.
    /// Released by `Drop`, like `Handle::loop_`.
    context: ManuallyDrop<Py<PyAny>>,
    /// Both None once the handle is cancelled (or cleared by the collector).
    callback: Option<Py<PyAny>>,
    args: Option<Py<PyTuple>>,
    source_traceback: Option<Py<PyAny>>,
    /// The repr kept by `cancel()` in debug mode.
    repr: Option<Py<PyAny>>,
}

/// `contextvars.copy_context()`, through the C API.
pub(crate) fn copy_current_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: PyContext_CopyCurrent returns a new reference, or NULL with an exception set;
    // from_owned_ptr_or_err takes ownership of exactly that reference.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// The context a handle runs in: the one given (`context=`), or a copy of the current one.
fn given_or_current(py: Python<'_>, context: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    match context {
        Some(ctx) if !ctx.is_none() => Ok(ctx.unbind()),
        _ => copy_current_context(py),
    }
}

/// Whether `loop_` is in debug mode: natively for our loop, by asking otherwise.
fn loop_debug(loop_: &Bound<'_, PyAny>) -> PyResult<bool> {
    match loop_.cast::<LoopCore>() {
        Ok(core) => Ok(core.get().debug()),
        Err(_) => loop_.call_method0("get_debug")?.is_truthy(),
    }
}

impl Handle {
    /// A handle for `callback(*args)` in `context` (a copy of the current one if None).
    /// `debug` records where it was created, as asyncio does in debug mode.
    pub(crate) fn create(
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        loop_: &Bound<'_, PyAny>,
        debug: bool,
    ) -> PyResult<Handle> {
        let py = callback.py();
        let context = given_or_current(py, context)?;
        let source_traceback = if debug {
            Some(pyapi::extract_stack(py)?.unbind())
        } else {
            None
        };
        Ok(Handle {
            loop_: ManuallyDrop::new(loop_.clone().unbind()),
            cancelled: AtomicBool::new(false),
            threadsafe: false,
            state: GilCell::new(HandleState {
                context: ManuallyDrop::new(context),
                callback: Some(callback.unbind()),
                args: Some(args.unbind()),
                source_traceback,
                repr: None,
            }),
        })
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    /// The callback and its arguments, unless cancelled.
    fn call(&self, py: Python<'_>) -> Option<(Py<PyAny>, Py<PyTuple>)> {
        self.call_in(py).map(|(callback, args, _)| (callback, args))
    }

    /// The callback, its arguments and its context, unless cancelled.
    fn call_in(&self, py: Python<'_>) -> Option<(Py<PyAny>, Py<PyTuple>, Py<PyAny>)> {
        let state = self.state.borrow_mut(py);
        match (&state.callback, &state.args) {
            (Some(cb), Some(args)) => Some((
                cb.clone_ref(py),
                args.clone_ref(py),
                state.context.clone_ref(py),
            )),
            _ => None,
        }
    }

    /// Readies a spare handle (`HandlePool`) for `callback(*args)`, as `create` would.
    pub(crate) fn refill(
        &self,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = callback.py();
        let context = given_or_current(py, context)?;
        let mut state = self.state.borrow_mut(py);
        let spare_context = std::mem::replace(&mut *state.context, context);
        state.callback = Some(callback.unbind());
        state.args = Some(args.unbind());
        drop(state);
        self.cancelled.store(false, Relaxed);
        // A spare handle's context is None.
        release(spare_context);
        Ok(())
    }

    /// Empties a handle that has run, for `HandlePool` to keep. What it held is returned,
    /// to be released with no borrow held: finalizers may run arbitrary code.
    pub(crate) fn empty(&self, py: Python<'_>) -> Emptied {
        let mut state = self.state.borrow_mut(py);
        queued::reveal_context(&state.context);
        Emptied([
            Some(std::mem::replace(&mut *state.context, py.None())),
            state.callback.take(),
            state.args.take().map(Py::into_any),
            state.source_traceback.take(),
            state.repr.take(),
        ])
    }

    /// The context's address, for the collector bookkeeping in `queued`.
    pub(crate) fn context_ptr(&self, py: Python<'_>) -> *mut ffi::PyObject {
        self.state.borrow_mut(py).context.as_ptr()
    }

    fn source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        state.source_traceback.as_ref().map(|t| t.clone_ref(py))
    }

    fn kept_repr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        state.repr.as_ref().map(|r| r.clone_ref(py))
    }
}

impl Handle {
    /// Everything the handle refers to, for its own `__traverse__` and for the loop's,
    /// which speaks for the handles it hides (`queued`).
    ///
    /// Call only from a `__traverse__` implementation.
    pub(crate) fn visit_references(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.loop_)?;
        // SAFETY: callers are `__traverse__` implementations (documented above).
        // Held by this thread (being cancelled or run): its references count as external
        // for this collection, which keeps them alive; never unsound.
        if let Ok(state) = unsafe { self.state.try_borrow_in_traverse() } {
            visit.call(&*state.context)?;
            visit.call(&state.callback)?;
            visit.call(&state.args)?;
            visit.call(&state.source_traceback)?;
            visit.call(&state.repr)?;
        }
        Ok(())
    }

    /// The context, tracked first: once Python code holds it, the collector must see it.
    fn shared_context(&self, py: Python<'_>) -> Py<PyAny> {
        let state = self.state.borrow_mut(py);
        queued::reveal_context(&state.context);
        state.context.clone_ref(py)
    }

    /// Tracks the context again if it was hidden with the handle.
    pub(crate) fn reveal_context(&self, py: Python<'_>) {
        queued::reveal_context(&self.state.borrow_mut(py).context);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the field is taken once, here, and never used again.
        release(unsafe { ManuallyDrop::take(&mut self.loop_) });
    }
}

impl Drop for HandleState {
    fn drop(&mut self) {
        // A context copy hidden with its handle must be tracked again before it is freed.
        queued::reveal_context(&self.context);
        // SAFETY: the field is taken once, here, and never used again.
        release(unsafe { ManuallyDrop::take(&mut self.context) });
        let held = [
            self.callback.take(),
            self.args.take().map(Py::into_any),
            self.source_traceback.take(),
            self.repr.take(),
        ];
        held.into_iter().flatten().for_each(release);
    }
}

/// What `Handle::empty` took out, released when dropped.
pub(crate) struct Emptied([Option<Py<PyAny>>; 5]);

impl Drop for Emptied {
    fn drop(&mut self) {
        self.0.iter_mut().filter_map(Option::take).for_each(release);
    }
}

/// Drops a reference held by a handle, which is only ever dropped with the thread
/// attached (by its `tp_dealloc`, or by a failed `Py::new`). `Py`'s own `Drop` reads a
/// thread-local to check that first: a call into the TLS resolver per reference, four or
/// more per handle (callgrind).
fn release<T>(obj: Py<T>) {
    // SAFETY: see above: handles and their state are dropped only while attached.
    obj.drop_ref(unsafe { Python::assume_attached() });
}

/// Cancels a handle: drops its callback and arguments so they can be collected, and in
/// debug mode keeps its repr for later warnings, as asyncio's `Handle.cancel` does.
pub(crate) fn cancel(handle: &Bound<'_, Handle>) -> PyResult<()> {
    let py = handle.py();
    let h = handle.get();
    // A load and a store, not a swap: the GIL already makes this exclusive.
    if h.cancelled.load(Relaxed) {
        return Ok(());
    }
    h.cancelled.store(true, Relaxed);
    // Like asyncio, the repr kept in debug mode is taken once the handle reads as cancelled.
    let repr = if loop_debug(h.loop_.bind(py))? {
        Some(handle.repr()?.into_any().unbind())
    } else {
        None
    };
    let released = {
        let mut state = h.state.borrow_mut(py);
        if repr.is_some() {
            state.repr = repr;
        }
        (state.callback.take(), state.args.take())
    };
    // The callback and its arguments are released here, with no borrow held: their
    // finalizers may run arbitrary code.
    drop(released);
    Ok(())
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
fn call_in_context(
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

/// Whether an exception must propagate out of the loop rather than reach the exception
/// handler (asyncio lets only these two through).
pub(crate) fn is_exit(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py)
}

/// Runs a handle as `Handle._run` does: `SystemExit` and `KeyboardInterrupt` propagate,
/// any other exception goes to the loop's exception handler. A cancelled handle (its
/// callback already released) is a no-op; the result says whether the callback ran.
/// Inlined into the loop's pass, so that a plain handle pays only the test.
#[inline(always)]
pub(crate) fn run(handle: &Bound<'_, Handle>) -> PyResult<bool> {
    if handle.get().threadsafe {
        return run_threadsafe(handle);
    }
    run_unlocked(handle)
}

/// `_ThreadSafeHandle._run`: `run`, holding the handle's lock.
fn run_threadsafe(handle: &Bound<'_, Handle>) -> PyResult<bool> {
    let threadsafe = handle.cast::<ThreadSafeHandle>()?;
    let _held = Held::new(handle.py(), &threadsafe.get().lock);
    run_unlocked(handle)
}

fn run_unlocked(handle: &Bound<'_, Handle>) -> PyResult<bool> {
    let py = handle.py();
    let h = handle.get();
    let Some((callback, args, context)) = h.call_in(py) else {
        return Ok(false);
    };
    let (callback, args, context) = (
        callback.into_bound(py),
        args.into_bound(py),
        context.into_bound(py),
    );
    match call_in_context(&context, &callback, &args) {
        Ok(()) => Ok(true),
        Err(err) if is_exit(py, &err) => Err(err),
        Err(err) => report_error(handle, &callback, &args, err).map(|()| true),
    }
}

/// Reports `err`, raised by what `handle` stands for, as `run` would have: for work the
/// loop does without a Handle, which makes one only when there is an error to report.
pub(crate) fn report(handle: &Bound<'_, Handle>, err: PyErr) -> PyResult<()> {
    let py = handle.py();
    match handle.get().call(py) {
        Some((callback, args)) => report_error(handle, callback.bind(py), args.bind(py), err),
        None => Ok(()),
    }
}

fn report_error(
    handle: &Bound<'_, Handle>,
    callback: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    err: PyErr,
) -> PyResult<()> {
    let py = handle.py();
    let loop_ = handle.get().loop_.bind(py);
    let source_traceback = handle.get().source_traceback(py);
    let source = pyapi::format_callback_source(py, callback, args, loop_debug(loop_)?)?;
    let context = PyDict::new(py);
    context.set_item(
        "message",
        format!("Exception in callback {}", source.str()?),
    )?;
    context.set_item("exception", err.value(py))?;
    context.set_item("handle", handle)?;
    if let Some(tb) = source_traceback {
        context.set_item("source_traceback", tb)?;
    }
    loop_.call_method1("call_exception_handler", (context,))?;
    Ok(())
}

fn joined_repr(info: &Bound<'_, PyAny>) -> PyResult<String> {
    let parts: Vec<String> = info
        .try_iter()?
        .map(|p| p.and_then(|p| p.str().map(|s| s.to_string())))
        .collect::<PyResult<_>>()?;
    Ok(format!("<{}>", parts.join(" ")))
}

#[pymethods]
impl Handle {
    #[new]
    #[pyo3(signature = (callback, args, r#loop, context=None))]
    fn py_new(
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyAny>,
        r#loop: Bound<'_, PyAny>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        shield(|| {
            let args = args.try_iter()?.collect::<PyResult<Vec<_>>>()?;
            let args = PyTuple::new(callback.py(), args)?;
            let debug = loop_debug(&r#loop)?;
            Handle::create(callback, args, context, &r#loop, debug)
        })
    }

    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| cancel(slf))
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.shared_context(py)
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::handle_type)
    }

    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| run(slf).map(drop))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        shield(|| {
            if let Some(r) = slf.get().kept_repr(slf.py()) {
                return r.bind(slf.py()).str().map(|s| s.to_string());
            }
            joined_repr(&pyapi::handle_repr_info(slf.as_any())?)
        })
    }

    #[getter]
    fn _callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        state.callback.as_ref().map(|c| c.clone_ref(py))
    }

    #[getter]
    fn _args(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        let state = self.state.borrow_mut(py);
        state.args.as_ref().map(|a| a.clone_ref(py))
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.is_cancelled()
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.loop_.clone_ref(py)
    }

    #[getter]
    fn _context(&self, py: Python<'_>) -> Py<PyAny> {
        self.shared_context(py)
    }

    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback(py)
    }

    #[getter]
    fn _repr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.kept_repr(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.visit_references(&visit)
    }

    fn __clear__(&self) {
        let taken = Python::attach(|py| {
            self.state.try_borrow_mut(py).ok().map(|mut state| {
                (
                    state.callback.take(),
                    state.args.take(),
                    state.source_traceback.take(),
                    state.repr.take(),
                )
            })
        });
        // Released with no borrow held: finalizers may run arbitrary code.
        drop(taken);
    }
}

/// What `call_soon_threadsafe` returns on 3.14+, as asyncio's `_ThreadSafeHandle`: its
/// callback runs holding a reentrant lock, which `cancel()` and `cancelled()` take too,
/// so a thread that cancels a running callback waits until it has finished. Never a
/// spare handle (`HandlePool` keeps plain Handles only).
#[pyclass(frozen, module = "ferroloop._ferroloop", extends = Handle, name = "_ThreadSafeHandle")]
pub struct ThreadSafeHandle {
    lock: RunLock,
}

/// What `handle.__class__` answers: for an instance of exactly `T`, asyncio's own class
/// of that handle, so that `isinstance(handle, asyncio.Handle)` holds as on asyncio's loop
/// (`type(handle)` is still ferroloop's); for a subclass, the subclass.
fn asyncio_class<'py, T: PyTypeInfo>(
    obj: &Bound<'py, PyAny>,
    asyncio_type: fn(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let own = obj.get_type();
    if own.is(T::type_object(py)) {
        asyncio_type(py)
    } else {
        Ok(own.into_any())
    }
}

/// A hold of a `RunLock`, waited for with the GIL released, let go when dropped.
struct Held<'a>(&'a RunLock);

impl<'a> Held<'a> {
    fn new(py: Python<'_>, lock: &'a RunLock) -> Self {
        if !lock.try_acquire() {
            py.detach(|| lock.acquire());
        }
        Held(lock)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl ThreadSafeHandle {
    /// `base`, made by `Handle::create`, as a thread-safe handle.
    pub(crate) fn around(mut base: Handle) -> PyClassInitializer<ThreadSafeHandle> {
        base.threadsafe = true;
        PyClassInitializer::from(base).add_subclass(ThreadSafeHandle {
            lock: RunLock::default(),
        })
    }
}

#[pymethods]
impl ThreadSafeHandle {
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let _held = Held::new(slf.py(), &slf.get().lock);
            cancel(slf.as_super())
        })
    }

    fn cancelled(slf: &Bound<'_, Self>) -> bool {
        let _held = Held::new(slf.py(), &slf.get().lock);
        slf.as_super().get().is_cancelled()
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::threadsafe_handle_type)
    }
}

/// A due time as seconds, with the object it was given as, if any (`call_at`'s `when`).
pub(crate) type Due<'a, 'py> = (f64, Option<&'a Bound<'py, PyAny>>);

/// A handle with a due time. `scheduled` is true while it sits in the loop's timer heap;
/// only then does cancelling it count towards the heap's compaction threshold.
#[pyclass(frozen, module = "ferroloop._ferroloop", extends = Handle, subclass)]
pub struct TimerHandle {
    pub(crate) when: f64,
    /// The int `call_at` was given, which `when()` returns as asyncio's does (and aiohttp
    /// checks, having rounded its timeouts up to whole seconds); None for a float.
    given: Option<Py<PyAny>>,
    scheduled: AtomicBool,
}

impl TimerHandle {
    pub(crate) fn is_cancelled(timer: &Bound<'_, TimerHandle>) -> bool {
        timer.as_super().get().is_cancelled()
    }

    pub(crate) fn is_scheduled(&self) -> bool {
        self.scheduled.load(Relaxed)
    }

    /// It has left the loop's timer heap (fired, or purged once cancelled).
    pub(crate) fn unscheduled(&self) {
        self.scheduled.store(false, Relaxed);
    }

    /// `when` as a float, and the object it came from, kept when it is an int or a bool
    /// (not a float, and holding no references the collector would have to see).
    pub(crate) fn new(when: Due<'_, '_>, scheduled: bool) -> Self {
        let (seconds, given) = when;
        let kept = given.filter(|given| {
            given.is_exact_instance_of::<PyInt>() || given.is_exact_instance_of::<PyBool>()
        });
        TimerHandle {
            when: seconds,
            given: kept.map(|given| given.clone().unbind()),
            scheduled: AtomicBool::new(scheduled),
        }
    }

    fn when_object<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.given {
            Some(given) => given.bind(py).clone(),
            None => PyFloat::new(py, self.when).into_any(),
        }
    }
}

/// What asyncio's TimerHandle compares: when, callback, args and cancelled.
struct TimerKey {
    when: f64,
    callback: Option<Py<PyAny>>,
    args: Option<Py<PyTuple>>,
    cancelled: bool,
}

fn timer_key(timer: &Bound<'_, TimerHandle>) -> TimerKey {
    let py = timer.py();
    let h = timer.as_super().get();
    let (callback, args) = h.call(py).unzip();
    TimerKey {
        when: timer.get().when,
        callback,
        args,
        cancelled: h.is_cancelled(),
    }
}

fn same_timer(py: Python<'_>, a: &TimerKey, b: &TimerKey) -> PyResult<bool> {
    let eq = |x: &Option<Py<PyAny>>, y: &Option<Py<PyAny>>| -> PyResult<bool> {
        match (x, y) {
            (Some(x), Some(y)) => x.bind(py).eq(y.bind(py)),
            (None, None) => Ok(true),
            _ => Ok(false),
        }
    };
    let args = |t: &Option<Py<PyTuple>>| t.as_ref().map(|t| t.clone_ref(py).into_any());
    Ok(a.when == b.when
        && eq(&a.callback, &b.callback)?
        && eq(&args(&a.args), &args(&b.args))?
        && a.cancelled == b.cancelled)
}

#[pymethods]
impl TimerHandle {
    #[new]
    #[pyo3(signature = (when, callback, args, r#loop, context=None))]
    fn py_new(
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyAny>,
        r#loop: Bound<'_, PyAny>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<TimerHandle>> {
        let seconds = when.extract::<f64>()?;
        let base = Handle::py_new(callback, args, r#loop, context)?;
        let timer = TimerHandle::new((seconds, Some(&when)), false);
        Ok(PyClassInitializer::from(base).add_subclass(timer))
    }

    fn when<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.when_object(py)
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::timer_handle_type)
    }

    #[getter]
    fn _when<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.when_object(py)
    }

    #[getter]
    fn _scheduled(&self) -> bool {
        self.is_scheduled()
    }

    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let h = slf.as_super().get();
            let loop_ = h.loop_.clone_ref(slf.py());
            if !h.is_cancelled() {
                match loop_.bind(slf.py()).cast::<LoopCore>() {
                    Ok(core) => core.get().timer_handle_cancelled(slf),
                    Err(_) => {
                        drop(loop_.call_method1(slf.py(), "_timer_handle_cancelled", (slf,))?)
                    }
                }
            }
            cancel(slf.as_super())
        })
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        shield(|| {
            let py = slf.py();
            if let Some(r) = slf.as_super().get().kept_repr(py) {
                return r.bind(py).str().map(|s| s.to_string());
            }
            let info = pyapi::handle_repr_info(slf.as_any())?.cast_into::<PyList>()?;
            let cancelled = timer_key(slf).cancelled;
            let when = format!("when={}", slf.get().when_object(py).str()?);
            info.insert(if cancelled { 2 } else { 1 }, PyString::new(py, &when))?;
            joined_repr(&info)
        })
    }

    fn __hash__(&self) -> isize {
        // hash(float): equal `when`s hash alike, as asyncio's TimerHandle does.
        Python::attach(|py| PyFloat::new(py, self.when).hash().unwrap_or(0))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<TimerHandle>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (timer_key(slf), timer_key(other));
        let same = || same_timer(py, &a, &b);
        let result = match op {
            CompareOp::Lt => a.when < b.when,
            CompareOp::Gt => a.when > b.when,
            CompareOp::Le => a.when < b.when || same()?,
            CompareOp::Ge => a.when > b.when || same()?,
            CompareOp::Eq => same()?,
            CompareOp::Ne => !same()?,
        };
        Ok(pyo3::types::PyBool::new(py, result)
            .to_owned()
            .into_any()
            .unbind())
    }
}
