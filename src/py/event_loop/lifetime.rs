//! The loop's life: made, closed, counted, and seen by the cycle collector.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::clock::CLOCK_OVERRIDDEN;
use super::queues::{IoCallback, IoDetached, Ready};
use super::slots::ObjectSlot;
use super::watch::Watch;
use super::{LoopCore, LoopState};
use crate::py::errors::os_error;
use crate::py::gc::Visit;
use crate::py::gil_cell::GilCell;
use crate::py::handles::{Handle, HandlePool, TimerHandle};
use crate::py::messages;
use crate::py::pyapi;
use crate::runtime::activity::{Activity, SpansSnapshot, BUCKET_BOUNDS_NS};
use crate::runtime::clock;
use crate::runtime::handoff::Handoff;
use crate::runtime::io_registry::IoRegistry;
use crate::runtime::pass_plan::PassPlan;
use crate::runtime::poller::EventBuffer;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::selector::Selector;
use crate::runtime::stats::Stats;
use crate::runtime::sync::lock;
use crate::runtime::ticks;
use crate::runtime::timers::TimerHeap;

impl LoopCore {
    /// A loop for an instance of `cls`, which may override `time()`.
    pub(super) fn create(cls: &Bound<'_, PyType>) -> PyResult<LoopCore> {
        let py = cls.py();
        let native_time = py.get_type::<LoopCore>().getattr(intern!(py, "time"))?;
        let overridden = !cls.getattr(intern!(py, "time"))?.is(&native_time);
        let behaviour = pyapi::behaviour(py)?;
        Ok(LoopCore {
            state: GilCell::new(LoopState {
                ready: ReadyQueue::default(),
                timers: TimerHeap::default(),
                io: IoRegistry::default(),
                selector: Some(Selector::new().map_err(os_error)?),
                plan: PassPlan::default(),
                stats: Stats::default(),
                spare: HandlePool::default(),
                due_within_ulp: behaviour.due_within_ulp,
            }),
            events: Mutex::new((EventBuffer::default(), Vec::new())),
            closed: AtomicBool::new(false),
            activity: Arc::new(Activity::new()),
            watch: Mutex::default(),
            stopping: AtomicBool::new(false),
            debug: AtomicU8::new(0),
            debug_value: ObjectSlot::default(),
            clock_resolution: AtomicU64::new(clock::resolution().to_bits()),
            thread_id: ObjectSlot::default(),
            current_handle: ObjectSlot::default(),
            slow_callback_duration: ObjectSlot::default(),
            task_factory: ObjectSlot::default(),
            while_running: GilCell::new(None),
            threadsafe_handles: behaviour.threadsafe_handles,
            clock_replaced: AtomicU8::new(if overridden { CLOCK_OVERRIDDEN } else { 0 }),
            handoff: Handoff::default(),
        })
    }

    /// Lets go of everything the loop holds and closes its epoll and eventfd descriptors.
    pub(super) fn close_native(&self, py: Python<'_>) {
        self.closed.store(true, Relaxed);
        self.stop_watch(py);
        let mut detached = IoDetached::default();
        let (ready, timers, selector) = {
            let mut state = self.state(py);
            let state = &mut *state;
            let selector = state.selector.take();
            state
                .io
                .drain(selector.as_ref().map(|s| &s.poller), &mut detached);
            (
                (state.ready.drain(), state.spare.drain()),
                state.timers.drain(),
                selector,
            )
        };
        drop((ready, timers, detached, selector));
    }

    /// Starts the watchdog and the monitor (`watch.rs`); `close` stops them.
    pub(super) fn start_watch(
        slf: &Bound<'_, Self>,
        threshold: Option<f64>,
        monitor: Option<PathBuf>,
    ) -> PyResult<()> {
        let this = slf.get();
        let started = Watch::start(slf.as_any(), &this.activity, threshold, monitor)?;
        let replaced = std::mem::replace(&mut *lock(&this.watch), started);
        replaced.stop(slf.py());
        Ok(())
    }

    fn stop_watch(&self, py: Python<'_>) {
        let watch = std::mem::take(&mut *lock(&self.watch));
        watch.stop(py);
    }

    /// Tracks again every queued handle someone else also holds (see `_reveal_shared_handles`).
    pub(super) fn reveal_shared_handles(&self, py: Python<'_>) {
        // Skipped when the collection started inside a stretch that holds the state; the
        // next full collection catches up.
        if let Ok(state) = self.state.try_borrow_mut(py) {
            for entry in state.ready.iter() {
                if let Ready::Handle(h) = entry {
                    h.reveal_if_shared(py);
                }
            }
            state.timers.iter().for_each(|t| t.reveal_if_shared(py));
        }
    }

    /// Counters since the loop was created: cheap enough to leave on.
    pub(super) fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, ready, timers, cancelled, spare) = {
            let state = self.state(py);
            (
                state.stats,
                state.ready.len(),
                state.timers.len(),
                state.timers.cancelled_count(),
                state.spare.len(),
            )
        };
        let a = self.activity.snapshot();
        let d = PyDict::new(py);
        d.set_item("iterations", a.passes)?;
        d.set_item("callbacks", a.callbacks)?;
        d.set_item("timers_fired", s.timers_fired)?;
        d.set_item("blocking_polls", s.blocking_polls)?;
        d.set_item("nonblocking_polls", s.nonblocking_polls)?;
        d.set_item("io_events", s.io_events)?;
        d.set_item("handles_reused", s.handles_reused)?;
        d.set_item("spare_handles", spare)?;
        d.set_item("ready", ready)?;
        d.set_item("timers", timers)?;
        d.set_item("timers_cancelled", cancelled)?;
        d.set_item("lag", spans(py, &a.lag)?)?;
        d.set_item("pass_duration", spans(py, &a.pass)?)?;
        d.set_item("slow_callbacks", a.slow_callbacks)?;
        let longest = (a.longest.ticks > 0).then(|| {
            let longest = PyDict::new(py);
            longest.set_item("seconds", ticks::to_secs(a.longest.ticks))?;
            longest.set_item("callback", &a.longest.text)?;
            PyResult::Ok(longest)
        });
        d.set_item("longest_callback", longest.transpose()?)?;
        Ok(d)
    }

    /// A snapshot of the ready queue's Handles, oldest first. Native transport events have
    /// no Handle (that is their point) and are not listed.
    pub(super) fn ready_handles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Py<Handle>> = self
            .state(py)
            .ready
            .iter()
            .filter_map(|entry| match entry {
                Ready::Handle(h) => Some(h.share(py)),
                Ready::Transport(..) | Ready::Step(..) | Ready::Wake(..) => None,
            })
            .collect();
        PyList::new(py, items)
    }

    /// The scheduled timers, in firing order.
    pub(super) fn scheduled_timers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Py<TimerHandle>> = self
            .state(py)
            .timers
            .ordered()
            .into_iter()
            .map(|h| h.share(py))
            .collect();
        PyList::new(py, items)
    }

    /// Empties the ready queue or the timer heap: the one assignment to `_ready` or
    /// `_scheduled` asyncio makes (`BaseEventLoop.__init__` assigns empty containers).
    pub(super) fn reset_queue(&self, value: &Bound<'_, PyAny>, timers: bool) -> PyResult<()> {
        let py = value.py();
        if value.len()? != 0 {
            return Err(messages::queue_reset_only_to_empty(timers));
        }
        let mut state = self.state(py);
        let drained = if timers {
            (Vec::new(), state.timers.drain())
        } else {
            (state.ready.drain(), Vec::new())
        };
        drop(state);
        drop(drained);
        Ok(())
    }

    pub(super) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // A running loop is reachable from the stack of the thread that runs it, and so is
        // everything it holds: no collection can free any of it, whether or not it sees
        // these references. So they are visited only while the loop is idle, where a cycle
        // through them may be garbage: the collector may reach a running loop many times
        // in a burst of callbacks (3.14's incremental collections, any full one), each
        // time with all the burst's handles queued. (What the loop keeps only while it
        // runs, `WhileRunning`, is thus never visited.)
        // SAFETY: this is called from `__traverse__` only.
        if let Ok(Some(_)) = unsafe { self.while_running.try_borrow_in_traverse() }.as_deref() {
            return Ok(());
        }
        self.current_handle.visit(visit)?;
        self.debug_value.visit(visit)?;
        self.slow_callback_duration.visit(visit)?;
        self.task_factory.visit(visit)?;
        // The collector may run while this thread holds the state (an allocation inside
        // such a stretch); then this pass simply does not see the loop's references.
        // SAFETY: this is called from `__traverse__` only.
        if let Ok(state) = unsafe { self.state.try_borrow_in_traverse() } {
            for entry in state.ready.iter() {
                entry.visit_with(visit)?;
            }
            for t in state.timers.iter() {
                t.visit(visit)?;
            }
            state.spare.visit(visit)?;
            for (_, fileobj, reader, writer) in state.io.iter() {
                visit.call(reader.map(IoCallback::as_any))?;
                visit.call(writer.map(IoCallback::as_any))?;
                visit.call(fileobj)?;
            }
            for fileobj in state.io.lingering_fileobjs() {
                visit.call(fileobj)?;
            }
        }
        Ok(())
    }

    pub(super) fn clear(&self) {
        let mut detached = IoDetached::default();
        let taken = Python::attach(|py| {
            self.state.try_borrow_mut(py).ok().map(|mut state| {
                let state = &mut *state;
                state
                    .io
                    .drain(state.selector.as_ref().map(|s| &s.poller), &mut detached);
                (
                    state.ready.drain(),
                    state.spare.drain(),
                    state.timers.drain(),
                )
            })
        });
        let bound = Python::attach(|py| {
            self.while_running
                .try_borrow_mut(py)
                .ok()
                .and_then(|mut b| b.take())
        });
        let debug_value = self.debug_value.try_take();
        let slow = self.slow_callback_duration.try_take();
        let factory = self.task_factory.try_take();
        drop((taken, detached, bound, debug_value, slow, factory));
    }
}

/// `{'count', 'sum', 'max', 'histogram'}` in seconds; the histogram maps each bucket's upper
/// bound (the last is infinity) to its count.
fn spans<'py>(py: Python<'py>, s: &SpansSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("count", s.count)?;
    d.set_item("sum", s.sum_ns as f64 * 1e-9)?;
    d.set_item("max", s.max_ns as f64 * 1e-9)?;
    let histogram = PyDict::new(py);
    let bounds = BUCKET_BOUNDS_NS.map(|ns| ns as f64 * 1e-9);
    for (bound, count) in bounds.iter().chain([&f64::INFINITY]).zip(s.buckets) {
        histogram.set_item(bound, count)?;
    }
    d.set_item("histogram", histogram)?;
    Ok(d)
}
