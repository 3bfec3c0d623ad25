//! `LoopCore`: the native half of `ferroloop.Loop`. It owns the ready queue, the timer heap,
//! the fd registrations and the pass of the loop (`_run_once`); the Python class adds the
//! rest of asyncio's API on top, from CPython's own code.
//!
//! The state is in `GilCell`s (the GIL serializes every access), each held for a few
//! instructions at a time: never across a call into Python and never while a Python object
//! is dropped.
//!
//! - `methods`: the Python-facing method table, which only parses and delegates;
//! - `scheduling`: `call_soon`, `call_later`, `call_at` and the queues they fill;
//! - `fds`: file objects to fds, and the readers and writers registered on them;
//! - `run_once`: one pass of the loop;
//! - `tasks`: `create_future` and `create_task` without a Python frame;
//! - `clock`: `time()`, replaced by a subclass or a patch;
//! - `queues`: what the ready queue and the fd registry hold;
//! - `attributes`, `slots`: asyncio's private loop attributes, some read by other threads;
//! - `lifetime`: creation, closing, counters and the collector's view;
//! - `links`: how the handles and transports it makes reach it;
//! - `wake`: waking a waiter without a Handle;
//! - `watch`: the watchdog and the monitor, and what they say of a callback.

mod attributes;
mod clock;
mod fds;
mod lifetime;
pub(crate) mod links;
mod methods;
mod queues;
mod run_once;
mod scheduling;
mod slots;
mod tasks;
mod wake;
mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use super::gil_cell::GilCell;
use super::handles::{HandlePool, Queued, TimerHandle};
use crate::runtime::activity::Activity;
use crate::runtime::handoff::Handoff;
use crate::runtime::io_registry::IoRegistry;
use crate::runtime::pass_plan::PassPlan;
use crate::runtime::poller::{Event, EventBuffer};
use crate::runtime::ready::ReadyQueue;
use crate::runtime::selector::Selector;
use crate::runtime::stats::Stats;
use crate::runtime::timers::TimerHeap;

use queues::{IoCallback, Ready};
use slots::{ObjectSlot, WhileRunning};
use watch::Watch;

/// What the loop schedules, behind one `GilCell`.
struct LoopState {
    ready: ReadyQueue<Ready>,
    timers: TimerHeap<Queued<TimerHandle>>,
    io: IoRegistry<IoCallback, Py<PyAny>>,
    /// None once the loop is closed.
    selector: Option<Selector>,
    plan: PassPlan,
    stats: Stats,
    spare: HandlePool,
    /// Whether a timer is due within `ulp(now)` when that exceeds the resolution (3.15).
    due_within_ulp: bool,
}

#[pyclass(frozen, subclass, weakref, module = "ferroloop._ferroloop")]
pub(crate) struct LoopCore {
    state: GilCell<LoopState>,
    /// Only the thread running the loop waits; the buffer is separate from `state` so the
    /// wait happens without the state held.
    events: Mutex<(EventBuffer, Vec<Event>)>,
    closed: AtomicBool,
    stopping: AtomicBool,
    /// The always-on counters and the running callback, for any thread (`runtime::activity`).
    activity: Arc<Activity>,
    /// The watchdog and the monitor, when asked for (`watch.rs`).
    watch: Mutex<Watch>,
    /// Debug mode: its truth (`DEBUG_ON`), and whether `set_debug` was given something
    /// other than a bool (`DEBUG_OBJECT`), kept in `debug_value` for `get_debug` to return
    /// as asyncio's does.
    debug: AtomicU8,
    debug_value: ObjectSlot,
    clock_resolution: AtomicU64,
    thread_id: ObjectSlot,
    current_handle: ObjectSlot,
    /// What `slow_callback_duration` was set to; the activity keeps it in ticks.
    slow_callback_duration: ObjectSlot,
    /// `_task_factory`, which `create_task` asks about on every call: kept here, where
    /// asking costs a load, not an attribute lookup.
    task_factory: ObjectSlot,
    /// Objects that refer to the loop, made once per run rather than once per use. Set
    /// only while running: each is a reference cycle, and an idle loop must stay
    /// free-able by reference counting.
    while_running: GilCell<Option<WhileRunning>>,
    /// Whether `call_soon_threadsafe` returns `ThreadSafeHandle`s (3.14+).
    threadsafe_handles: bool,
    /// `time()` is not the native clock (`clock.rs`).
    clock_replaced: AtomicU8,
    /// When a thread that floods the loop last waited for it in vain.
    handoff: Handoff,
}

impl LoopCore {
    fn state(&self, py: Python<'_>) -> std::cell::RefMut<'_, LoopState> {
        self.state.borrow_mut(py)
    }
}
