//! `LoopCore`: the native half of `ferroloop.Loop`. It owns the ready queue, the timer heap,
//! the fd registrations and the pass of the loop (`_run_once`); the Python class adds the
//! rest of asyncio's API on top, from CPython's own code.
//!
//! The state is in `GilCell`s (the GIL serializes every access), each held for a few
//! instructions at a time: never across a call into Python and never while a Python object
//! is dropped.

use std::cell::RefMut;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::errors::{self, loop_closed, os_error, shield};
use super::fastcall;
use super::gil_cell::GilCell;
use super::handle_pool::HandlePool;
use super::handles::{self, Due, Handle, ThreadSafeHandle, TimerHandle};
use super::io::{Direction, IoCallback, IoRegistry, Registration, Released, WatchId};
use super::pyapi;
use super::queued::Queued;
use super::transports::{self, StreamTransport};
use crate::constants::MAXIMUM_SELECT_TIMEOUT;
use crate::runtime::clock;
use crate::runtime::poller::{Event, EventBuffer, Interest, PollFd, Poller};
use crate::runtime::ready::ReadyQueue;
use crate::runtime::stats::Stats;
use crate::runtime::timers::TimerHeap;
use crate::runtime::waker::Waker;

/// The waker's token; fds use their own number, which is never this.
const WAKER_TOKEN: u64 = u64::MAX;

/// While busy, the loop polls its internal fds (the signal self-pipe while no signal
/// handler is set) once in this many passes, and every fd on every pass once the user has
/// registered one.
const INTERNAL_POLL_EVERY: u32 = 32;

/// The bits of `LoopCore::debug`.
const DEBUG_ON: u8 = 1;
const DEBUG_OBJECT: u8 = 2;

/// One entry of the ready queue.
pub(crate) enum Ready {
    Handle(Queued<Handle>),
    /// A native transport's fd is ready: the transport reads or flushes without a Handle.
    Transport(Py<StreamTransport>, Direction, WatchId),
    /// A step of a native transport's set-up or tear-down, which asyncio would queue as a
    /// Handle (`transports/lifecycle.rs`).
    Step(Py<StreamTransport>, transports::Step),
}

impl Ready {
    fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Ready::Handle(h) => h.visit(visit),
            Ready::Transport(t, ..) => visit.call(t),
            Ready::Step(t, step) => {
                visit.call(t)?;
                step.visit(visit)
            }
        }
    }
}

struct Core {
    ready: ReadyQueue<Ready>,
    timers: TimerHeap<Queued<TimerHandle>>,
    io: IoRegistry,
    /// None once the loop is closed.
    poller: Option<Poller>,
    waker: Option<Waker>,
    passes_since_poll: u32,
    stats: Stats,
    spare: HandlePool,
    /// Whether a timer is due within `ulp(now)` when that exceeds the resolution (3.15).
    due_within_ulp: bool,
}

#[pyclass(frozen, subclass, weakref, module = "ferroloop._ferroloop")]
pub struct LoopCore {
    core: GilCell<Core>,
    /// Only the thread running the loop waits; the buffer is separate from `core` so the
    /// wait happens without the state lock.
    events: Mutex<(EventBuffer, Vec<Event>)>,
    closed: AtomicBool,
    stopping: AtomicBool,
    /// Callbacks run, for `stats()`; counted outside the state lock.
    callbacks_run: AtomicU64,
    /// Debug mode: its truth (DEBUG_ON), and whether `set_debug` was given something other
    /// than a bool (DEBUG_OBJECT), kept in `debug_value` for `get_debug` to return as
    /// asyncio's does.
    debug: AtomicU8,
    debug_value: ObjectSlot,
    clock_resolution: AtomicU64,
    thread_id: ObjectSlot,
    current_handle: ObjectSlot,
    /// Objects that refer to the loop, made once per run rather than once per use. Set
    /// only while running: each is a reference cycle, and an idle loop must stay
    /// free-able by reference counting.
    while_running: GilCell<Option<WhileRunning>>,
    /// Whether `call_soon_threadsafe` returns `ThreadSafeHandle`s (3.14+).
    threadsafe_handles: bool,
    /// `time()` is not the native clock: a subclass overrides it (CLOCK_OVERRIDDEN) or a
    /// test patched it on the instance (CLOCK_PATCHED). asyncio reads the time through
    /// `self.time()`, so timers then fall due by that clock, as they do there.
    clock_replaced: AtomicU8,
}

const CLOCK_OVERRIDDEN: u8 = 1;
const CLOCK_PATCHED: u8 = 2;

struct WhileRunning {
    /// `call_soon` bound to this loop, handed out by `getattr(loop, 'call_soon')`
    /// (`fastcall::CallSoonDescriptor`).
    call_soon: Py<PyAny>,
    /// `{'loop': loop}`, the keywords of a Future or Task made for this loop. A callee
    /// gets its own copy of a keywords dict, so one can serve every call.
    loop_kwargs: Py<PyDict>,
}

/// A Python object, or None, behind a lock: `_thread_id` and `_current_handle`, which other
/// threads may read (`is_running()`).
#[derive(Default)]
struct ObjectSlot(Mutex<Option<Py<PyAny>>>);

impl ObjectSlot {
    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        lock(&self.0).as_ref().map(|o| o.clone_ref(py))
    }

    fn is_set(&self) -> bool {
        lock(&self.0).is_some()
    }

    /// Replaces the value (None for Python's None). The old value is dropped after the
    /// lock is released: its finalizer may run code that reads this slot.
    fn set(&self, value: Option<Bound<'_, PyAny>>) {
        let new = value.filter(|v| !v.is_none()).map(Bound::unbind);
        let old = std::mem::replace(&mut *lock(&self.0), new);
        drop(old);
    }
}

/// Keeps the `WhileRunning` objects for as long as it lives (a run), and drops them
/// after, even if a panic unwinds through: each forms a cycle with the loop.
struct KeepWhileRunning<'a, 'py>(&'a Bound<'py, LoopCore>);

impl<'a, 'py> KeepWhileRunning<'a, 'py> {
    fn keep(slf: &'a Bound<'py, LoopCore>) -> PyResult<Self> {
        let py = slf.py();
        let kept = WhileRunning {
            call_soon: fastcall::bind_call_soon(slf)?,
            loop_kwargs: LoopCore::new_loop_kwargs(slf)?.unbind(),
        };
        *slf.get().while_running.borrow_mut(py) = Some(kept);
        Ok(KeepWhileRunning(slf))
    }
}

impl Drop for KeepWhileRunning<'_, '_> {
    fn drop(&mut self) {
        let taken = self.0.get().while_running.borrow_mut(self.0.py()).take();
        drop(taken);
    }
}

/// Releases what a registry change took out: after a change that succeeded its Handles are
/// cancelled (transports need nothing); after one that failed they are only dropped.
fn release<T>(py: Python<'_>, result: io::Result<T>, released: Released) -> PyResult<T> {
    let value = result.map_err(os_error)?;
    for old in released.callbacks() {
        if let IoCallback::Handle(h) = old {
            handles::cancel(h.bind(py))?;
        }
    }
    Ok(value)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock was already turned into RuntimeError; the state it guards is
    // plain data and still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `selectors._fileobj_to_fd`: an int, or an object whose `fileno()` gives one. None for
/// an int too large for any fd: asyncio looks it up (not found) or hands it to epoll,
/// which refuses it (`too_large_fd`).
fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<Option<RawFd>> {
    let fd = if fileobj.is_instance_of::<PyInt>() {
        fileobj.clone()
    } else {
        fileobj
            .call_method0("fileno")
            .and_then(|n| {
                n.call_method0("__index__")
                    .or_else(|_| n.call_method0("__int__"))
            })
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "Invalid file object: {}",
                    fileobj.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?
    };
    // Any fd fits a C int; only a refused one pays for Python's comparison.
    let fits = fd.extract::<RawFd>().ok();
    let negative = match fits {
        Some(n) => n < 0,
        None => fd.lt(0)?,
    };
    if negative {
        return Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {fd}"
        )));
    }
    Ok(fits)
}

/// What epoll's registration says of an fd past the C int range.
fn too_large_fd() -> PyErr {
    pyo3::exceptions::PyOverflowError::new_err("Python int too large to convert to C int")
}

/// A float from `delay` or `when`, with the TypeError `time() + delay` would raise.
fn seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    value.extract::<f64>().map_err(|err| {
        if err.is_instance_of::<PyTypeError>(value.py()) {
            let ty = value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            PyTypeError::new_err(format!(
                "unsupported operand type(s) for +: 'float' and '{ty}'"
            ))
        } else {
            err
        }
    })
}

impl Core {
    /// Moves due timers to the ready queue, then takes the ready queue as the pass's batch.
    fn collect_ready(
        &mut self,
        py: Python<'_>,
        now: Option<f64>,
        resolution: f64,
        batch: &mut VecDeque<Ready>,
    ) {
        if !self.timers.is_empty() {
            let now = now.unwrap_or_else(clock::monotonic);
            // 3.15 keeps the window from vanishing once the clock reads coarser than its
            // resolution (after long uptimes).
            let window = if self.due_within_ulp {
                resolution.max(clock::ulp(now))
            } else {
                resolution
            };
            let end_time = now + window;
            while let Some(timer) = self.timers.pop_due(end_time) {
                timer.get().get().unscheduled();
                self.stats.timers_fired += 1;
                self.ready.push(Ready::Handle(timer.into_handle(py)));
            }
        }
        self.ready.take_batch(batch);
    }
}

impl LoopCore {
    fn core(&self, py: Python<'_>) -> RefMut<'_, Core> {
        self.core.borrow_mut(py)
    }

    fn note_time_attribute(&self, name: &Bound<'_, PyString>, set: bool) {
        if name.to_str().is_ok_and(|n| n == "time") {
            if set {
                self.clock_replaced.fetch_or(CLOCK_PATCHED, Relaxed);
            } else {
                self.clock_replaced.fetch_and(!CLOCK_PATCHED, Relaxed);
            }
        }
    }

    /// The time by `self.time()` when that is not the native clock; None when it is. The
    /// test is on every pass, the call almost never.
    #[inline(always)]
    fn replaced_now(slf: &Bound<'_, Self>) -> PyResult<Option<f64>> {
        if slf.get().clock_replaced.load(Relaxed) == 0 {
            return Ok(None);
        }
        Self::python_time(slf).map(Some)
    }

    #[cold]
    #[inline(never)]
    fn python_time(slf: &Bound<'_, Self>) -> PyResult<f64> {
        seconds(&slf.call_method0(intern!(slf.py(), "time"))?)
    }

    /// What asyncio's `self.time()` answers.
    fn now(slf: &Bound<'_, Self>) -> PyResult<f64> {
        Ok(Self::replaced_now(slf)?.unwrap_or_else(clock::monotonic))
    }

    /// `call_soon` bound to this loop, while it runs.
    pub(crate) fn bound_call_soon(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.while_running
            .borrow_mut(py)
            .as_ref()
            .map(|w| w.call_soon.clone_ref(py))
    }

    /// `{'loop': self}`: kept while the loop runs, made anew otherwise.
    fn loop_kwargs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        if let Some(w) = slf.get().while_running.borrow_mut(py).as_ref() {
            return Ok(w.loop_kwargs.bind(py).clone());
        }
        Self::new_loop_kwargs(slf)
    }

    fn new_loop_kwargs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let kwargs = PyDict::new(slf.py());
        kwargs.set_item(intern!(slf.py(), "loop"), slf)?;
        Ok(kwargs)
    }

    /// `get_debug()`: what `set_debug` was given.
    pub(crate) fn debug_object(&self, py: Python<'_>) -> Py<PyAny> {
        let state = self.debug.load(Relaxed);
        if state & DEBUG_OBJECT != 0 {
            // An empty slot here is None, which the slot does not hold.
            return self.debug_value.get(py).unwrap_or_else(|| py.None());
        }
        PyBool::new(py, state & DEBUG_ON != 0)
            .to_owned()
            .into_any()
            .unbind()
    }

    pub(crate) fn debug(&self) -> bool {
        self.debug.load(Relaxed) & DEBUG_ON != 0
    }

    fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Relaxed) {
            Err(loop_closed())
        } else {
            Ok(())
        }
    }

    fn resolution(&self) -> f64 {
        f64::from_bits(self.clock_resolution.load(Relaxed))
    }

    /// asyncio checks callbacks only in debug mode; a non-callable is refused always, since
    /// it can only fail later, far from the mistake.
    fn check_callback(
        slf: &Bound<'_, Self>,
        callback: &Bound<'_, PyAny>,
        method: &str,
        thread_check: bool,
    ) -> PyResult<()> {
        if slf.get().debug() {
            if thread_check {
                slf.call_method0("_check_thread")?;
            }
            slf.call_method1("_check_callback", (callback, method))?;
        } else if !callback.is_callable() {
            return Err(if pyapi::is_coroutine(callback)? {
                errors::coroutine_callback(method)
            } else {
                errors::not_callable(method, &callback.repr()?.to_string())
            });
        }
        Ok(())
    }

    /// Queues a step of a native transport's life, where `call_soon` would have queued
    /// its Handle (and, as `call_soon` would, refuses once the loop is closed).
    pub(crate) fn queue_step(
        &self,
        py: Python<'_>,
        transport: Py<StreamTransport>,
        step: transports::Step,
    ) -> PyResult<()> {
        self.check_closed()?;
        self.core(py).ready.push(Ready::Step(transport, step));
        Ok(())
    }

    /// `call_soon`, whose entry point (`fastcall.rs`) parses the arguments.
    pub(crate) fn schedule_soon(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        Self::queue_soon(slf, false, callback, args, context)
    }

    /// `call_soon_threadsafe`, whose entry point is in `fastcall.rs`.
    pub(crate) fn schedule_soon_threadsafe(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        Self::queue_soon(slf, true, callback, args, context)
    }

    /// A Handle at the back of the ready queue. `call_soon` checks the calling thread in
    /// debug mode; `call_soon_threadsafe` does not, and wakes a loop blocked in its poll.
    /// Always inlined: left to the compiler it was not, at 40 instructions per `call_soon`.
    #[inline(always)]
    fn queue_soon(
        slf: &Bound<'_, Self>,
        threadsafe: bool,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let method = if threadsafe {
            "call_soon_threadsafe"
        } else {
            "call_soon"
        };
        slf.get().check_closed()?;
        Self::check_callback(slf, &callback, method, !threadsafe)?;
        let handle = if threadsafe && slf.get().threadsafe_handles {
            let py = slf.py();
            let debug = slf.get().debug();
            let base = Handle::create(callback, args, context, slf.as_any(), debug)?;
            Bound::new(py, ThreadSafeHandle::around(base))?
                .into_super()
                .unbind()
        } else {
            Self::new_handle(slf, callback, args, context)?
        };
        let queued = Queued::hidden(handle.bind(slf.py()));
        let mut core = slf.get().core(slf.py());
        core.ready.push(Ready::Handle(queued));
        if threadsafe {
            if let Some(waker) = &core.waker {
                waker.wake();
            }
        }
        Ok(handle)
    }

    /// `call_later`, whose entry point is in `fastcall.rs`.
    pub(crate) fn schedule_later(
        slf: &Bound<'_, Self>,
        delay: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if delay.is_none() {
            return Err(PyTypeError::new_err("delay must not be None"));
        }
        let when = Self::now(slf)? + seconds(&delay)?;
        Self::schedule_checked_at(slf, (when, None), callback, args, context)
    }

    /// `call_at`, whose entry point is in `fastcall.rs`.
    pub(crate) fn schedule_at_time(
        slf: &Bound<'_, Self>,
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if when.is_none() {
            return Err(PyTypeError::new_err("when cannot be None"));
        }
        let seconds = seconds(&when)?;
        Self::schedule_checked_at(slf, (seconds, Some(&when)), callback, args, context)
    }

    /// What `call_later` and `call_at` share once `when` is known: asyncio's checks (both
    /// name `call_at` in their errors, as asyncio's `call_later` calls `call_at`), then
    /// the TimerHandle.
    fn schedule_checked_at(
        slf: &Bound<'_, Self>,
        when: Due<'_, '_>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        slf.get().check_closed()?;
        Self::check_callback(slf, &callback, "call_at", true)?;
        Self::schedule_at(slf, when, callback, args, context)
    }

    /// A spare handle refilled, or a new one.
    fn new_handle(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let this = slf.get();
        let debug = this.debug();
        let spare = if debug {
            None
        } else {
            let mut core = this.core(py);
            let spare = core.spare.take();
            core.stats.handles_reused += u64::from(spare.is_some());
            spare
        };
        if let Some(spare) = spare {
            let handle = spare.into_inner();
            handle.get().refill(callback, args, context)?;
            return Ok(handle);
        }
        let handle = Handle::create(callback, args, context, slf.as_any(), debug)?;
        Py::new(py, handle)
    }

    fn schedule_at(
        slf: &Bound<'_, Self>,
        when: Due<'_, '_>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        let py = slf.py();
        let base = Handle::create(callback, args, context, slf.as_any(), slf.get().debug())?;
        let timer = Py::new(
            py,
            PyClassInitializer::from(base).add_subclass(TimerHandle::new(when, true)),
        )?;
        slf.get()
            .core(py)
            .timers
            .push(when.0, Queued::hidden(timer.bind(py)));
        Ok(timer)
    }

    pub(crate) fn timer_handle_cancelled(&self, timer: &Bound<'_, TimerHandle>) {
        let py = timer.py();
        if timer.get().is_scheduled() {
            self.core(py).timers.note_cancelled();
        }
    }

    fn set_io(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        direction: Direction,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let this = slf.get();
        this.check_closed()?;
        let fd = this.registered_fd(fileobj)?.ok_or_else(too_large_fd)?;
        let handle = Self::new_handle(slf, callback, args, context)?;
        let by_object = (!fileobj.is_instance_of::<PyInt>()).then(|| fileobj.clone().unbind());
        let callback = IoCallback::Handle(handle.clone_ref(py));
        this.register(py, fd, direction, callback, by_object)?;
        Ok(handle)
    }

    fn clear_io(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        direction: Direction,
    ) -> PyResult<bool> {
        let this = slf.get();
        if this.closed.load(Relaxed) {
            return Ok(false);
        }
        match this.registered_fd(fileobj)? {
            Some(fd) => this.unregister(slf.py(), fd, direction),
            None => Ok(false),
        }
    }

    /// The fd of `fileobj` as the selectors module finds it: its own, or, when that cannot
    /// be read (a socket closed or detached since), the one it was registered by.
    fn registered_fd(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<Option<RawFd>> {
        let py = fileobj.py();
        match fileobj_to_fd(fileobj) {
            Err(err) if err.is_instance_of::<PyValueError>(py) => {
                self.core(py).io.fd_of(fileobj).map(Some).ok_or(err)
            }
            found => found,
        }
    }

    /// Sets the reader or writer of `fd`. A Handle it replaces is cancelled, as asyncio's
    /// selector loop does.
    fn register(
        &self,
        py: Python<'_>,
        fd: RawFd,
        direction: Direction,
        callback: IoCallback,
        fileobj: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.check_closed()?;
        let mut released = Released::default();
        let result = {
            let mut core = self.core(py);
            let core = &mut *core;
            let poller = core.poller.as_ref().ok_or_else(loop_closed)?;
            core.io
                .set(poller, fd, direction, callback, fileobj, &mut released)
        };
        release(py, result, released)
    }

    /// Clears the reader or writer of `fd`, cancelling a Handle; whether there was one.
    pub(crate) fn unregister(
        &self,
        py: Python<'_>,
        fd: RawFd,
        direction: Direction,
    ) -> PyResult<bool> {
        let mut released = Released::default();
        let result = {
            let mut core = self.core(py);
            let core = &mut *core;
            match core.poller.as_ref() {
                Some(poller) => core.io.clear(poller, fd, direction, &mut released),
                None => Ok(false),
            }
        };
        release(py, result, released)
    }

    /// Registers a native transport as the reader or writer of its fd.
    pub(crate) fn watch_transport(
        &self,
        transport: &Bound<'_, StreamTransport>,
        fd: RawFd,
        direction: Direction,
        id: WatchId,
    ) -> PyResult<()> {
        let callback = IoCallback::Transport(transport.clone().unbind(), id);
        self.register(transport.py(), fd, direction, callback, None)
    }

    /// Unregisters the reader or writer of `fd` (a no-op when there is none).
    pub(crate) fn unwatch(&self, py: Python<'_>, fd: RawFd, direction: Direction) -> PyResult<()> {
        self.unregister(py, fd, direction).map(drop)
    }

    /// One pass: purge cancelled timers, poll, queue I/O and due timers, then run exactly
    /// what was ready when the pass began. `batch` is empty on entry and on return; the run
    /// loop keeps it from pass to pass for its allocation.
    fn run_once(slf: &Bound<'_, Self>, batch: &mut VecDeque<Ready>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut purged = Vec::new();
        let now = Self::replaced_now(slf)?;
        let poll = {
            let mut core = this.core(py);
            let core = &mut *core;
            core.stats.iterations += 1;
            core.timers
                .purge(|t| TimerHandle::is_cancelled(t.get().bind(py)), &mut purged);
            let timeout = if !core.ready.is_empty() || this.stopping.load(Relaxed) {
                Some(0.0)
            } else {
                core.timers.next_when().map(|when| {
                    let now = now.unwrap_or_else(clock::monotonic);
                    (when - now).clamp(0.0, MAXIMUM_SELECT_TIMEOUT)
                })
            };
            let timeout = clock::timeout(timeout);
            let blocking = timeout != Some(Duration::ZERO);
            // A pass with work queued skips the syscall when no fd but the loop's own could
            // have anything to say, and checks those every INTERNAL_POLL_EVERY passes.
            let must_poll = blocking
                || core.io.has_user_fds()
                || (!core.io.is_empty() && core.passes_since_poll >= INTERNAL_POLL_EVERY);
            if must_poll {
                core.passes_since_poll = 0;
                let poll_fd = core
                    .poller
                    .as_ref()
                    .map(Poller::poll_fd)
                    .ok_or_else(loop_closed)?;
                if blocking {
                    core.stats.blocking_polls += 1;
                    if let Some(waker) = &core.waker {
                        waker.enter_blocking();
                    }
                } else {
                    core.stats.nonblocking_polls += 1;
                }
                Some((timeout, poll_fd))
            } else {
                core.passes_since_poll += 1;
                core.collect_ready(py, now, this.resolution(), batch);
                None
            }
        };
        Self::release_purged(purged);
        if let Some((timeout, poll_fd)) = poll {
            Self::poll(slf, timeout, poll_fd, batch)?;
        }
        Self::run_batch(slf, batch)
    }

    /// Timers leaving the heap unfired are no longer scheduled; released without the lock.
    fn release_purged(purged: Vec<Queued<TimerHandle>>) {
        for timer in &purged {
            timer.get().get().unscheduled();
        }
    }

    /// Waits for I/O (releasing the GIL when the wait may block) and queues what it reports,
    /// then takes the pass's batch.
    fn poll(
        slf: &Bound<'_, Self>,
        timeout: Option<Duration>,
        poll_fd: PollFd,
        batch: &mut VecDeque<Ready>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut events_guard = lock(&this.events);
        let (buffer, events) = &mut *events_guard;
        events.clear();
        let blocking = timeout != Some(Duration::ZERO);
        let polled = if blocking {
            py.detach(|| poll_fd.wait(buffer, timeout, events))
        } else {
            poll_fd.wait(buffer, timeout, events)
        };
        let mut released = Released::default();
        // asyncio reads the clock again after the wait.
        let now = Self::replaced_now(slf)?;
        {
            let mut core = this.core(py);
            let core = &mut *core;
            if blocking {
                if let Some(waker) = &core.waker {
                    waker.leave_blocking();
                }
            }
            if let Some(poller) = core.poller.as_ref() {
                for &event in events.iter() {
                    if event.token == WAKER_TOKEN {
                        if let Some(waker) = &core.waker {
                            waker.drain();
                        }
                        continue;
                    }
                    core.stats.io_events += 1;
                    core.io
                        .dispatch(py, poller, event, &mut core.ready, &mut released);
                }
            }
            core.collect_ready(py, now, this.resolution(), batch);
        }
        drop(events_guard);
        drop(released);
        if let Err(err) = polled {
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(os_error(err));
            }
        }
        if blocking {
            // A signal that interrupted the wait runs its Python handler now, so Ctrl-C
            // raises KeyboardInterrupt here as it would in the stdlib loop.
            py.check_signals()?;
        }
        Ok(())
    }

    /// Runs the batch. If `SystemExit` or `KeyboardInterrupt` escapes a callback, the rest
    /// of the batch goes back to the front of the ready queue, to run first next time.
    fn run_batch(slf: &Bound<'_, Self>, batch: &mut VecDeque<Ready>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let debug = this.debug();
        let mut ran = 0u64;
        let mut outcome = Ok(());
        while let Some(entry) = batch.pop_front() {
            let result = match &entry {
                Ready::Handle(queued) if debug => Self::run_debug(slf, queued.get().bind(py)),
                Ready::Handle(queued) => handles::run(queued.get().bind(py)),
                // In debug mode a transport's event runs as the Handle asyncio would have
                // made, so slow-callback warnings and `_current_handle` see it.
                Ready::Transport(t, direction, id) if debug => {
                    if transports::is_watching(t.bind(py), *direction, *id) {
                        transports::event_handle(t.bind(py), *direction)
                            .and_then(|handle| Self::run_debug(slf, &handle))
                    } else {
                        Ok(false)
                    }
                }
                Ready::Transport(t, direction, id) => {
                    transports::run_event(t.bind(py), *direction, *id)
                }
                Ready::Step(t, step) if debug => step
                    .handle(t.bind(py))
                    .and_then(|handle| Self::run_debug(slf, &handle)),
                Ready::Step(t, step) => step.run(t.bind(py)),
            };
            match result {
                Ok(did_run) => {
                    ran += u64::from(did_run);
                    if let Ready::Handle(queued) = entry {
                        Self::retire(slf, queued, debug);
                    }
                }
                Err(err) => {
                    this.core(py).ready.requeue_front(batch);
                    outcome = Err(err);
                    break;
                }
            }
        }
        // A load and a store rather than an atomic add: only the GIL holder gets here.
        let before = this.callbacks_run.load(Relaxed);
        this.callbacks_run.store(before + ran, Relaxed);
        outcome
    }

    /// Lets go of a handle that has run: into the pool of spare ones if it may go there.
    fn retire(slf: &Bound<'_, Self>, handle: Queued<Handle>, debug: bool) {
        let py = slf.py();
        if debug {
            return handle.release(py);
        }
        let kept = slf.get().core(py).spare.keep(handle, slf.as_any());
        match kept {
            Ok(held) => drop(held),
            Err(handle) => handle.release(py),
        }
    }

    /// Runs a handle timing it, and warns when it took `slow_callback_duration` or more.
    fn run_debug(slf: &Bound<'_, Self>, handle: &Bound<'_, Handle>) -> PyResult<bool> {
        let this = slf.get();
        this.current_handle.set(Some(handle.clone().into_any()));
        let t0 = clock::monotonic();
        let result = handles::run(handle);
        let dt = clock::monotonic() - t0;
        this.current_handle.set(None);
        if !result? {
            return Ok(false);
        }
        let slow: f64 = slf.getattr("slow_callback_duration")?.extract()?;
        if dt >= slow {
            pyapi::loop_logger(slf.py())?.call_method1(
                "warning",
                (
                    "Executing %s took %.3f seconds",
                    pyapi::format_handle(handle.as_any())?,
                    dt,
                ),
            )?;
        }
        Ok(true)
    }
}

#[pymethods]
impl LoopCore {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LoopCore> {
        let py = _args.py();
        shield(|| {
            let native_time = py.get_type::<LoopCore>().getattr(intern!(py, "time"))?;
            let overridden = !cls.getattr(intern!(py, "time"))?.is(&native_time);
            let poller = Poller::new().map_err(os_error)?;
            let waker = Waker::new().map_err(os_error)?;
            poller
                .register(waker.fd(), Interest::READABLE, WAKER_TOKEN)
                .map_err(os_error)?;
            Ok(LoopCore {
                core: GilCell::new(Core {
                    ready: ReadyQueue::default(),
                    timers: TimerHeap::default(),
                    io: IoRegistry::default(),
                    poller: Some(poller),
                    waker: Some(waker),
                    passes_since_poll: 0,
                    stats: Stats::default(),
                    spare: HandlePool::default(),
                    due_within_ulp: pyapi::behaviour(py)?.due_within_ulp,
                }),
                events: Mutex::new((EventBuffer::default(), Vec::new())),
                closed: AtomicBool::new(false),
                callbacks_run: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                debug: AtomicU8::new(0),
                debug_value: ObjectSlot::default(),
                clock_resolution: AtomicU64::new(clock::resolution().to_bits()),
                thread_id: ObjectSlot::default(),
                current_handle: ObjectSlot::default(),
                while_running: GilCell::new(None),
                threadsafe_handles: pyapi::behaviour(py)?.threadsafe_handles,
                clock_replaced: AtomicU8::new(if overridden { CLOCK_OVERRIDDEN } else { 0 }),
            })
        })
    }

    /// Attributes set on the loop go to its `__dict__` as on any object; setting `time`
    /// (`mock.patch.object(loop, "time")`) makes the loop read its clock through it.
    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyString>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        shield(|| {
            // SAFETY: `slf`, `name` and `value` are live objects for the duration of the
            // call, and generic attribute assignment is what an object without a setter of
            // its own does; it raises (returns -1 with an exception set) or succeeds.
            let set = unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(slf.as_ptr(), name.as_ptr(), value.as_ptr())
            };
            if set < 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            slf.get().note_time_attribute(name, true);
            Ok(())
        })
    }

    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        shield(|| {
            // SAFETY: as in `__setattr__`; a null value asks for the attribute's deletion.
            let deleted = unsafe {
                let null = std::ptr::null_mut();
                pyo3::ffi::PyObject_GenericSetAttr(slf.as_ptr(), name.as_ptr(), null)
            };
            if deleted < 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            slf.get().note_time_attribute(name, false);
            Ok(())
        })
    }

    fn time(&self) -> f64 {
        clock::monotonic()
    }

    fn _timer_handle_cancelled(&self, handle: &Bound<'_, TimerHandle>) -> PyResult<()> {
        shield(|| {
            self.timer_handle_cancelled(handle);
            Ok(())
        })
    }

    fn create_future(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        shield(|| {
            let py = slf.py();
            // A Future made without `loop=` takes the running loop: the same future,
            // without the keyword parsing (250 instructions in CPython's `Future.__init__`).
            if pyapi::is_running_loop(slf.as_any())? {
                return Ok(pyapi::future_type(py)?.call0()?.unbind());
            }
            let kwargs = Self::loop_kwargs(slf)?;
            Ok(pyapi::future_type(py)?.call((), Some(&kwargs))?.unbind())
        })
    }

    /// `Task(coro, loop=self, **kwargs)` without a Python frame in the common case; with
    /// a task factory, in debug mode, or with keywords this CPython's `create_task` does
    /// not pass to Task (anything but `name` and `context` before 3.14), CPython's own
    /// `BaseEventLoop.create_task` does it, given exactly the caller's keywords.
    #[pyo3(signature = (coro, **kwargs))]
    fn create_task(
        slf: &Bound<'_, Self>,
        coro: Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            let kwargs = kwargs.filter(|k| !k.is_empty());
            // `loop=` among them is CPython's error to raise.
            let task_keywords = |k: &Bound<'_, PyDict>| {
                k.keys().iter().all(|key| {
                    let is = |name| key.eq(name).unwrap_or(false);
                    if pyapi::version_at_least(py, (3, 14)) {
                        !is(pyo3::intern!(py, "loop"))
                    } else {
                        is(pyo3::intern!(py, "name")) || is(pyo3::intern!(py, "context"))
                    }
                })
            };
            let simple = !this.debug()
                && kwargs.is_none_or(task_keywords)
                && slf.getattr(pyo3::intern!(py, "_task_factory"))?.is_none();
            if !simple {
                return Ok(pyapi::base_create_task(py)?
                    .call((slf, coro), kwargs)?
                    .unbind());
            }
            this.check_closed()?;
            let task = pyapi::task_type(py)?;
            // As in `create_future`: the running loop needs no `loop=`, and a call without
            // keywords skips their parsing. A Task class patched in gets `loop=` as
            // `BaseEventLoop.create_task` gives it.
            let running = pyapi::is_asyncio_task(&task)? && pyapi::is_running_loop(slf.as_any())?;
            match (kwargs, running) {
                (None, true) => Ok(task.call1((coro,))?.unbind()),
                (None, false) => {
                    let kwargs = Self::loop_kwargs(slf)?;
                    Ok(task.call((coro,), Some(&kwargs))?.unbind())
                }
                (Some(kwargs), true) => Ok(task.call((coro,), Some(kwargs))?.unbind()),
                (Some(kwargs), false) => {
                    let all = Self::new_loop_kwargs(slf)?;
                    all.update(kwargs.as_mapping())?;
                    Ok(task.call((coro,), Some(&all))?.unbind())
                }
            }
        })
    }

    fn stop(&self) {
        self.stopping.store(true, Relaxed);
    }

    fn is_running(&self) -> bool {
        self.thread_id.is_set()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    fn _run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::run_once(slf, &mut VecDeque::new()))
    }

    /// The body of `run_forever`, between its set-up and clean-up (done in Python).
    fn _run_until_stopped(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mut batch = VecDeque::new();
        shield(|| {
            let _kept = KeepWhileRunning::keep(slf)?;
            loop {
                Self::run_once(slf, &mut batch)?;
                if slf.get().stopping.load(Relaxed) {
                    return Ok(());
                }
            }
        })
    }

    /// `context=` is 3.15's: a transport's reader runs in the transport's context.
    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_reader(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        shield(|| Self::set_io(slf, fd, Direction::Read, callback, args, context))
    }

    /// `context=` is 3.15's: a transport's reader runs in the transport's context.
    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_writer(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        shield(|| Self::set_io(slf, fd, Direction::Write, callback, args, context))
    }

    fn _remove_reader(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        shield(|| Self::clear_io(slf, fd, Direction::Read))
    }

    fn _remove_writer(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        shield(|| Self::clear_io(slf, fd, Direction::Write))
    }

    /// Marks one of the loop's own fds (the signal self-pipe), which a busy loop polls
    /// only every INTERNAL_POLL_EVERY passes rather than on every pass; or, with
    /// `internal` false, has it polled on every pass as the user's fds are.
    fn _set_internal_fd(&self, py: Python<'_>, fd: RawFd, internal: bool) {
        self.core(py).io.set_internal(fd, internal);
    }

    /// `(fd, reader, writer)` for every registered fd.
    fn _io_registrations(&self, py: Python<'_>) -> Vec<Registration> {
        self.core(py).io.snapshot(py)
    }

    /// The fd a registration of `fileobj` is under (the selector view's `get_key`).
    fn _registered_fd(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
        shield(|| self.registered_fd(fileobj)?.ok_or_else(too_large_fd))
    }

    /// Releases everything the loop holds and closes its epoll and eventfd descriptors.
    fn _close_native(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| {
            self.closed.store(true, Relaxed);
            let mut released = Released::default();
            let (ready, timers, poller, waker) = {
                let mut core = self.core(py);
                let core = &mut *core;
                let poller = core.poller.take();
                core.io.drain(poller.as_ref(), &mut released);
                (
                    (core.ready.drain(), core.spare.drain()),
                    core.timers.drain(),
                    poller,
                    core.waker.take(),
                )
            };
            drop((ready, timers, released, poller, waker));
            Ok(())
        })
    }

    /// Tracks again every queued handle someone else also holds. The package calls this
    /// before each full collection, so that a dropped, unclosed loop whose queues hold such
    /// handles (a sleeping task's timer) is still found to be garbage.
    fn _reveal_shared_handles(&self, py: Python<'_>) {
        // Skipped when the collection started inside a stretch that holds the state; the
        // next full collection catches up.
        if let Ok(core) = self.core.try_borrow_mut(py) {
            for entry in core.ready.iter() {
                if let Ready::Handle(h) = entry {
                    h.reveal_if_shared(py);
                }
            }
            core.timers.iter().for_each(|t| t.reveal_if_shared(py));
        }
    }

    /// Counters since the loop was created: cheap enough to leave on.
    fn _stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, ready, timers, cancelled) = {
            let core = self.core(py);
            (
                core.stats,
                core.ready.len(),
                core.timers.len(),
                core.timers.cancelled_count(),
            )
        };
        let d = PyDict::new(py);
        d.set_item("iterations", s.iterations)?;
        d.set_item("callbacks", self.callbacks_run.load(Relaxed))?;
        d.set_item("timers_fired", s.timers_fired)?;
        d.set_item("blocking_polls", s.blocking_polls)?;
        d.set_item("nonblocking_polls", s.nonblocking_polls)?;
        d.set_item("io_events", s.io_events)?;
        d.set_item("handles_reused", s.handles_reused)?;
        d.set_item("ready", ready)?;
        d.set_item("timers", timers)?;
        d.set_item("timers_cancelled", cancelled)?;
        Ok(d)
    }

    // asyncio's loop state, as the attributes BaseEventLoop's methods read and write.

    #[getter]
    fn _closed(&self) -> bool {
        self.closed.load(Relaxed)
    }
    #[setter(_closed)]
    fn set_closed(&self, value: bool) {
        self.closed.store(value, Relaxed);
    }

    #[getter]
    fn _stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }
    #[setter(_stopping)]
    fn set_stopping(&self, value: bool) {
        self.stopping.store(value, Relaxed);
    }

    #[getter]
    fn _debug(&self, py: Python<'_>) -> Py<PyAny> {
        self.debug_object(py)
    }
    #[setter(_debug)]
    fn set_debug(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        let on = if value.is_truthy()? { DEBUG_ON } else { 0 };
        let kept = if value.is_exact_instance_of::<PyBool>() {
            self.debug.store(on, Relaxed);
            None
        } else {
            self.debug.store(on | DEBUG_OBJECT, Relaxed);
            Some(value)
        };
        self.debug_value.set(kept);
        Ok(())
    }

    #[getter]
    fn _clock_resolution(&self) -> f64 {
        self.resolution()
    }
    #[setter(_clock_resolution)]
    fn set_clock_resolution(&self, value: f64) {
        self.clock_resolution.store(value.to_bits(), Relaxed);
    }

    #[getter]
    fn _thread_id(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.thread_id.get(py)
    }
    #[setter(_thread_id)]
    fn set_thread_id(&self, value: Option<Bound<'_, PyAny>>) {
        self.thread_id.set(value);
    }

    #[getter]
    fn _current_handle(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.current_handle.get(py)
    }
    #[setter(_current_handle)]
    fn set_current_handle(&self, value: Option<Bound<'_, PyAny>>) {
        self.current_handle.set(value);
    }

    #[getter]
    fn _timer_cancelled_count(&self, py: Python<'_>) -> usize {
        self.core(py).timers.cancelled_count()
    }
    #[setter(_timer_cancelled_count)]
    fn set_timer_cancelled_count(&self, py: Python<'_>, value: usize) {
        self.core(py).timers.set_cancelled_count(value);
    }

    /// A snapshot of the ready queue's Handles, oldest first. Native transport events have
    /// no Handle (that is their point) and are not listed.
    #[getter]
    fn _ready<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Py<Handle>> = self
            .core(py)
            .ready
            .iter()
            .filter_map(|entry| match entry {
                Ready::Handle(h) => Some(h.share(py)),
                Ready::Transport(..) | Ready::Step(..) => None,
            })
            .collect();
        PyList::new(py, items)
    }
    /// Assigning an empty container empties the queue (BaseEventLoop's `__init__` does).
    #[setter(_ready)]
    fn set_ready(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = value.py();
        if value.len()? != 0 {
            return Err(PyRuntimeError::new_err(
                "ferroloop's ready queue can only be reset to empty",
            ));
        }
        let drained = self.core(py).ready.drain();
        drop(drained);
        Ok(())
    }

    /// The scheduled timers, in firing order.
    #[getter]
    fn _scheduled<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Py<TimerHandle>> = self
            .core(py)
            .timers
            .ordered()
            .into_iter()
            .map(|h| h.share(py))
            .collect();
        PyList::new(py, items)
    }
    #[setter(_scheduled)]
    fn set_scheduled(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = value.py();
        if value.len()? != 0 {
            return Err(PyRuntimeError::new_err(
                "ferroloop's timer heap can only be reset to empty",
            ));
        }
        let drained = self.core(py).timers.drain();
        drop(drained);
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The collector may run while this thread holds the state (an allocation inside
        // such a stretch); then this pass simply does not see the loop's references.
        // SAFETY: this is `__traverse__`.
        if let Ok(core) = unsafe { self.core.try_borrow_in_traverse() } {
            for entry in core.ready.iter() {
                entry.visit(&visit)?;
            }
            for t in core.timers.iter() {
                t.visit(&visit)?;
            }
            core.spare.visit(&visit)?;
            let mut result = Ok(());
            core.io.visit(|h| {
                if result.is_ok() {
                    result = visit.call(h);
                }
            });
            result?;
        }
        for slot in [&self.current_handle, &self.debug_value] {
            if let Ok(h) = slot.0.try_lock() {
                visit.call(h.as_ref())?;
            }
        }
        // SAFETY: this is `__traverse__`.
        if let Ok(kept) = unsafe { self.while_running.try_borrow_in_traverse() } {
            if let Some(w) = kept.as_ref() {
                visit.call(&w.call_soon)?;
                visit.call(&w.loop_kwargs)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let mut released = Released::default();
        let taken = Python::attach(|py| {
            self.core.try_borrow_mut(py).ok().map(|mut core| {
                let core = &mut *core;
                core.io.drain(core.poller.as_ref(), &mut released);
                (core.ready.drain(), core.spare.drain(), core.timers.drain())
            })
        });
        let bound = Python::attach(|py| {
            self.while_running
                .try_borrow_mut(py)
                .ok()
                .and_then(|mut b| b.take())
        });
        let debug_value = self
            .debug_value
            .0
            .try_lock()
            .ok()
            .and_then(|mut v| v.take());
        drop((taken, released, bound, debug_value));
    }
}
