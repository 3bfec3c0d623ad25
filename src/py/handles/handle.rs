//! `Handle`: what `call_soon` returns and the ready queue holds. It carries the attributes
//! asyncio's own Handle has (`_callback`, `_args`, `_cancelled`, `_source_traceback`, ...),
//! so debuggers and `asyncio.events.Handle._repr_info` see it as they see the stdlib's.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyTypeInfo, PyVisit};

use super::owner::{owner, HandleLoop};
use crate::py::args::Args;
use crate::py::context::{copy_current_unless_empty, new_context};
use crate::py::gc;
use crate::py::gil_cell::GilCell;
use crate::py::pyapi;

/// Frozen, so PyO3 keeps no borrow flag: each borrow of one costs two atomic
/// read-modify-writes, several per `call_soon`. What changes lives in a `GilCell`, and
/// `cancelled`, read on every pass over the timer heap, in a relaxed atomic (plain loads).
#[pyclass(frozen, module = "ferroloop._ferroloop", subclass, weakref)]
pub(crate) struct Handle {
    /// Released by `Drop`, without PyO3's check for an attached thread (`drop_attached`).
    pub(crate) loop_: ManuallyDrop<Py<PyAny>>,
    cancelled: AtomicBool,
    /// A `ThreadSafeHandle`, whose runs take its lock.
    pub(super) threadsafe: bool,
    /// A `TimerHandle`'s: it sits in the loop's timer heap, and only then does cancelling
    /// it count towards the heap's compaction. Here, beside the other flags, rather than in
    /// `TimerHandle`, which it would make a word longer.
    pub(super) scheduled: AtomicBool,
    pub(super) state: GilCell<HandleState>,
}

pub(super) struct HandleState {
    /// None where a copy of the current context would have been empty: the handle runs in
    /// an empty context lent to it (`crate::py::context`), which is its own from when
    /// Python code asks for it (`shared_context`), or from a run that leaves a trace in it
    /// (`run`). None too while the handle is spare (`HandlePool`). Released by `Drop`,
    /// like `Handle::loop_`.
    pub(super) context: ManuallyDrop<Py<PyAny>>,
    /// Both None once the handle is cancelled (or cleared by the collector).
    pub(super) callback: Option<Py<PyAny>>,
    pub(super) args: Option<Args>,
    /// What debug mode records, apart: a flood keeps tens of thousands of handles in
    /// memory, where each word of a handle costs page faults.
    pub(super) debug: Option<Box<DebugRecord>>,
}

/// What a handle records in debug mode, as asyncio's does.
#[derive(Default)]
pub(super) struct DebugRecord {
    /// Where it was made.
    pub(super) source_traceback: Option<Py<PyAny>>,
    /// The repr kept by `cancel()`.
    pub(super) repr: Option<Py<PyAny>>,
}

impl DebugRecord {
    /// Both references, taken out.
    pub(super) fn take(&mut self) -> [Option<Py<PyAny>>; 2] {
        [self.source_traceback.take(), self.repr.take()]
    }
}

/// A handle's callback, its arguments, and its context (None: an empty one of its own).
pub(super) struct Call {
    pub(super) callback: Py<PyAny>,
    pub(super) args: Args,
    pub(super) context: Option<Py<PyAny>>,
}

/// The context a handle runs in: the one given (`context=`), or a copy of the current one,
/// None for an empty copy (`HandleState::context`).
fn given_or_current(py: Python<'_>, context: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    match context {
        Some(ctx) if !ctx.is_none() => Ok(ctx.unbind()),
        _ => Ok(copy_current_unless_empty(py)?.unwrap_or_else(|| py.None())),
    }
}

impl Handle {
    /// `Handle(callback, args, loop, context=None)`, as Python code makes one.
    pub(super) fn construct(
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyAny>,
        loop_: Bound<'_, PyAny>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        let args = args.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        let args = PyTuple::new(callback.py(), args)?;
        let debug = match owner(&loop_) {
            Some(native) => native.debug(),
            None => loop_.call_method0("get_debug")?.is_truthy()?,
        };
        Handle::create(callback, Args::tuple(args)?, context, &loop_, debug)
    }

    /// A handle for `callback(*args)` in `context` (a copy of the current one if None).
    /// `debug` records where it was created, as asyncio does in debug mode. Always inlined:
    /// returned by value, the handle was copied through the stack on its way into its
    /// object, each copy read back wider than the stores that had just written it, which
    /// stalled the CPU on every new handle (`perf annotate`).
    #[inline(always)]
    pub(crate) fn create(
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
        loop_: &Bound<'_, PyAny>,
        debug: bool,
    ) -> PyResult<Handle> {
        let py = callback.py();
        let context = given_or_current(py, context)?;
        let debug = if debug {
            Some(Box::new(DebugRecord {
                source_traceback: Some(pyapi::extract_stack(py)?.unbind()),
                repr: None,
            }))
        } else {
            None
        };
        Ok(Handle {
            loop_: ManuallyDrop::new(loop_.clone().unbind()),
            cancelled: AtomicBool::new(false),
            threadsafe: false,
            scheduled: AtomicBool::new(false),
            state: GilCell::new(HandleState {
                context: ManuallyDrop::new(context),
                callback: Some(callback.unbind()),
                args: Some(args),
                debug,
            }),
        })
    }

    /// Whether its loop is in debug mode.
    pub(super) fn loop_debug(&self, py: Python<'_>) -> PyResult<bool> {
        let loop_ = self.loop_.bind(py);
        match owner(loop_) {
            Some(owner) => Ok(owner.debug()),
            None => loop_.call_method0("get_debug")?.is_truthy(),
        }
    }

    /// Its loop, natively, if it can be reached so.
    pub(super) fn owner<'a>(&'a self, py: Python<'a>) -> Option<&'a dyn HandleLoop> {
        owner(self.loop_.bind(py))
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    /// A TimerHandle in its loop's timer heap.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.scheduled.load(Relaxed)
    }

    /// A TimerHandle has left its loop's timer heap (fired, or purged once cancelled).
    pub(crate) fn unscheduled(&self) {
        self.scheduled.store(false, Relaxed);
    }

    /// The callback and its arguments, unless cancelled.
    pub(super) fn call(&self, py: Python<'_>) -> Option<(Py<PyAny>, Args)> {
        self.call_in(py).map(|call| (call.callback, call.args))
    }

    /// What a run calls, unless cancelled.
    pub(super) fn call_in(&self, py: Python<'_>) -> Option<Call> {
        let state = self.state.borrow_mut(py);
        match (&state.callback, &state.args) {
            (Some(cb), Some(args)) => Some(Call {
                callback: cb.clone_ref(py),
                args: args.clone_ref(py),
                context: (!state.context.is_none(py)).then(|| state.context.clone_ref(py)),
            }),
            _ => None,
        }
    }

    /// Makes `context`, the empty context a handle without one is about to run in, its own
    /// (`HandleState::context`): for a handle someone else holds, who may ask for it
    /// (`get_context()`) during the run or after, and must see what the callback set in it.
    pub(super) fn adopt_context(&self, context: &Bound<'_, PyAny>) {
        self.replace_context(context.py(), context.clone().unbind());
    }

    /// Undoes `adopt_context`, once the run has left the context as it found it.
    pub(super) fn disown_context(&self, py: Python<'_>) {
        self.replace_context(py, py.None());
    }

    fn replace_context(&self, py: Python<'_>, context: Py<PyAny>) {
        let mut state = self.state.borrow_mut(py);
        let replaced = std::mem::replace(&mut *state.context, context);
        drop(state);
        drop_attached(replaced);
    }

    /// Readies a spare handle (`HandlePool`) for `callback(*args)`, as `create` would.
    pub(crate) fn refill(
        &self,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = callback.py();
        let context = given_or_current(py, context)?;
        let mut state = self.state.borrow_mut(py);
        let spare_context = std::mem::replace(&mut *state.context, context);
        state.callback = Some(callback.unbind());
        state.args = Some(args);
        drop(state);
        self.cancelled.store(false, Relaxed);
        // A spare handle's context is None.
        drop_attached(spare_context);
        Ok(())
    }

    /// Empties a handle that has run, for `HandlePool` to keep. What it held goes into
    /// `held`, an empty `Emptied`, to be released with no borrow held: finalizers may run
    /// arbitrary code. Written in place: returned by value, the references were copied
    /// through the stack in a way that stalled the CPU on every handle (`perf`).
    pub(crate) fn empty_into(&self, py: Python<'_>, held: &mut Emptied) {
        let mut state = self.state.borrow_mut(py);
        gc::reveal_context(&state.context);
        debug_assert!(held.0.iter().all(Option::is_none));
        let [source_traceback, repr] = state.debug.take().map_or([None, None], |mut d| d.take());
        // Replacing the `ManuallyDrop` drops nothing, and there is nothing to drop.
        held.0 = ManuallyDrop::new([
            Some(std::mem::replace(&mut *state.context, py.None())),
            state.callback.take(),
            state.args.take().map(Args::into_object),
            source_traceback,
            repr,
        ]);
    }

    /// The context's address, for the collector bookkeeping in `queued`.
    pub(crate) fn context_ptr(&self, py: Python<'_>) -> *mut ffi::PyObject {
        self.state.borrow_mut(py).context.as_ptr()
    }

    pub(super) fn source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        let debug = state.debug.as_ref()?;
        debug.source_traceback.as_ref().map(|t| t.clone_ref(py))
    }

    pub(super) fn kept_repr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        let debug = state.debug.as_ref()?;
        debug.repr.as_ref().map(|r| r.clone_ref(py))
    }
}

impl Handle {
    /// Everything the handle refers to, for its own `__traverse__` and for the loop's,
    /// which speaks for the handles it hides (`queued`).
    ///
    /// Call only from a `__traverse__` implementation. Visited field by field rather than
    /// through `gc::visit_all`: a collection runs this for every handle the loop holds.
    pub(crate) fn visit_references(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.loop_)?;
        // SAFETY: callers are `__traverse__` implementations (documented above).
        // Held by this thread (being cancelled or run): its references count as external
        // for this collection, which keeps them alive; never unsound.
        if let Ok(state) = unsafe { self.state.try_borrow_in_traverse() } {
            // A handle without a context of its own holds None there, and one without
            // arguments the empty tuple: neither can be in a cycle, and they are the common
            // case, so they are not visited.
            // SAFETY: `context` is a live object; this compares its address.
            if unsafe { ffi::Py_IsNone(state.context.as_ptr()) } == 0 {
                visit.call(&*state.context)?;
            }
            visit.call(&state.callback)?;
            if let Some(args) = state.args.as_ref().filter(|args| !args.is_empty()) {
                visit.call(args.object())?;
            }
            if let Some(debug) = &state.debug {
                visit.call(&debug.source_traceback)?;
                visit.call(&debug.repr)?;
            }
        }
        Ok(())
    }

    /// The context, tracked first: once Python code holds it, the collector must see it.
    /// An empty context of its own is made now, and kept: from here on it is the one the
    /// handle runs in, whatever the caller sets in it.
    pub(super) fn shared_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.state.borrow_mut(py).context.is_none(py) {
            self.replace_context(py, new_context(py)?.unbind());
        }
        let state = self.state.borrow_mut(py);
        gc::reveal_context(&state.context);
        Ok(state.context.clone_ref(py))
    }

    /// Tracks the context again if it was hidden with the handle.
    pub(crate) fn reveal_context(&self, py: Python<'_>) {
        gc::reveal_context(&self.state.borrow_mut(py).context);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the field is taken once, here, and never used again.
        drop_attached(unsafe { ManuallyDrop::take(&mut self.loop_) });
    }
}

impl Drop for HandleState {
    fn drop(&mut self) {
        // A context copy hidden with its handle must be tracked again before it is freed.
        gc::reveal_context(&self.context);
        // SAFETY: the field is taken once, here, and never used again.
        drop_attached(unsafe { ManuallyDrop::take(&mut self.context) });
        let [source_traceback, repr] = self.debug.take().map_or([None, None], |mut d| d.take());
        let held = [
            self.callback.take(),
            self.args.take().map(Args::into_object),
            source_traceback,
            repr,
        ];
        held.into_iter().flatten().for_each(drop_attached);
    }
}

/// What `Handle::empty_into` took out, released when dropped. The references are released
/// by `Drop` alone (hence `ManuallyDrop`): the compiler's own drop of the array, run after
/// it, was a call per handle to look at five Nones.
#[derive(Default)]
pub(crate) struct Emptied(ManuallyDrop<[Option<Py<PyAny>>; 5]>);

impl Drop for Emptied {
    fn drop(&mut self) {
        self.0
            .iter_mut()
            .filter_map(Option::take)
            .for_each(drop_attached);
    }
}

/// Drops a reference held by a handle, which is only ever dropped with the thread
/// attached (by its `tp_dealloc`, or by a failed `Py::new`). `Py`'s own `Drop` reads a
/// thread-local to check that first: a call into the TLS resolver per reference, several
/// per handle.
fn drop_attached<T>(obj: Py<T>) {
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
    let repr = if h.loop_debug(py)? {
        Some(handle.repr()?.into_any().unbind())
    } else {
        None
    };
    let released = {
        let mut state = h.state.borrow_mut(py);
        if repr.is_some() {
            state.debug.get_or_insert_with(Box::default).repr = repr;
        }
        (state.callback.take(), state.args.take())
    };
    // The callback and its arguments are released here, with no borrow held: their
    // finalizers may run arbitrary code.
    drop(released);
    Ok(())
}

pub(super) fn joined_repr(info: &Bound<'_, PyAny>) -> PyResult<String> {
    let parts: Vec<String> = info
        .try_iter()?
        .map(|p| p.and_then(|p| p.str().map(|s| s.to_string())))
        .collect::<PyResult<_>>()?;
    Ok(format!("<{}>", parts.join(" ")))
}

/// What `handle.__class__` answers: for an instance of exactly `T`, asyncio's own class
/// of that handle, so that `isinstance(handle, asyncio.Handle)` holds as on asyncio's loop
/// (`type(handle)` is still ferroloop's); for a subclass, the subclass.
pub(super) fn asyncio_class<'py, T: PyTypeInfo>(
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
