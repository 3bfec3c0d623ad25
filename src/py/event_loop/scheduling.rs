//! `call_soon`, `call_soon_threadsafe`, `call_later` and `call_at` (whose entry points in
//! `fastcall/` parse the arguments).

use pyo3::prelude::*;

use super::clock::seconds;
use super::queues::Ready;
use super::LoopCore;
use crate::py::args::Args;
use crate::py::handles::{
    Due, Handle, HandleLoop, Queued, SpareKind, ThreadSafeHandle, TimerHandle,
};
use crate::py::messages;
use crate::py::pyapi;
use crate::runtime::{handoff, sys};

impl LoopCore {
    /// asyncio checks callbacks only in debug mode; a non-callable is refused always, since
    /// it can only fail later, far from the mistake. Inlined: on every call the whole check
    /// is two tests.
    #[inline(always)]
    fn check_callback(
        slf: &Bound<'_, Self>,
        callback: &Bound<'_, PyAny>,
        method: &str,
        thread_check: bool,
    ) -> PyResult<()> {
        if !slf.get().debug() && callback.is_callable() {
            return Ok(());
        }
        Self::check_callback_fully(slf, callback, method, thread_check)
    }

    #[cold]
    fn check_callback_fully(
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
                messages::coroutine_callback(method)
            } else {
                messages::not_callable(method, &callback.repr()?.to_string())
            });
        }
        Ok(())
    }

    pub(crate) fn call_soon(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        Self::push_soon(slf, false, callback, args, context)
    }

    pub(crate) fn call_soon_threadsafe(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        Self::push_soon(slf, true, callback, args, context)
    }

    /// A Handle at the back of the ready queue. `call_soon` checks the calling thread in
    /// debug mode; `call_soon_threadsafe` does not, and wakes a loop blocked in its poll.
    /// Always inlined: left to the compiler it was not, at a measurable cost per call.
    #[inline(always)]
    fn push_soon(
        slf: &Bound<'_, Self>,
        threadsafe: bool,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let method = if threadsafe {
            "call_soon_threadsafe"
        } else {
            "call_soon"
        };
        slf.get().check_closed()?;
        Self::check_callback(slf, &callback, method, !threadsafe)?;
        let kind = if threadsafe && slf.get().threadsafe_handles {
            SpareKind::ThreadSafe
        } else {
            SpareKind::Plain
        };
        let handle = Self::make_handle(slf, kind, callback, args, context)?;
        let queued = Queued::hidden(handle.bind(slf.py()));
        let mut state = slf.get().state(slf.py());
        state.ready.push(Ready::Handle(queued));
        if threadsafe {
            if let Some(selector) = &state.selector {
                selector.wake();
            }
            if handoff::due(state.ready.len()) {
                drop(state);
                Self::let_the_loop_run(slf);
            }
        }
        Ok(handle)
    }

    /// A thread other than the loop's, having just queued a multiple of `handoff::EVERY`
    /// callbacks, lets the GIL go until the loop has moved on (`runtime::handoff`).
    #[cold]
    #[inline(never)]
    fn let_the_loop_run(slf: &Bound<'_, Self>) {
        let py = slf.py();
        let this = slf.get();
        let elsewhere = this.thread_id.get(py).is_some_and(|id| {
            id.bind(py)
                .extract::<u64>()
                .is_ok_and(|id| id != sys::thread_id())
        });
        if elsewhere {
            let activity = &this.activity;
            py.detach(|| this.handoff.wait(|| activity.progress()));
        }
    }

    pub(crate) fn call_later(
        slf: &Bound<'_, Self>,
        delay: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if delay.is_none() {
            return Err(messages::delay_none());
        }
        let when = Self::now(slf)? + seconds(&delay)?;
        Self::push_timer(slf, (when, None), callback, args, context)
    }

    pub(crate) fn call_at(
        slf: &Bound<'_, Self>,
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if when.is_none() {
            return Err(messages::when_none());
        }
        let seconds = seconds(&when)?;
        Self::push_timer(slf, (seconds, Some(&when)), callback, args, context)
    }

    /// What `call_later` and `call_at` share once `when` is known: asyncio's checks (both
    /// name `call_at` in their errors, as asyncio's `call_later` calls `call_at`), then
    /// the TimerHandle, into the heap.
    fn push_timer(
        slf: &Bound<'_, Self>,
        when: Due<'_, '_>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        let py = slf.py();
        slf.get().check_closed()?;
        Self::check_callback(slf, &callback, "call_at", true)?;
        let base = Handle::create(callback, args, context, slf.as_any(), slf.get().debug())?;
        let timer = Py::new(py, TimerHandle::around(base, when, true))?;
        slf.get()
            .state(py)
            .timers
            .push(when.0, Queued::hidden(timer.bind(py)));
        Ok(timer)
    }

    /// A spare handle of that kind refilled, or a new one.
    pub(super) fn make_handle(
        slf: &Bound<'_, Self>,
        kind: SpareKind,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let this = slf.get();
        let debug = this.debug();
        let spare = if debug {
            None
        } else {
            let mut state = this.state(py);
            let spare = state.spare.take(kind);
            state.stats.handles_reused += u64::from(spare.is_some());
            spare
        };
        if let Some(spare) = spare {
            let handle = spare.into_inner();
            handle.get().refill(callback, args, context)?;
            return Ok(handle);
        }
        Self::new_handle(slf, kind, callback, args, context, debug)
    }

    /// A new handle of that kind. Kept out of `make_handle`, whose path through a spare
    /// handle is the one steady traffic takes: with `Handle::create` inlined there, that
    /// path timed slower (a `call_soon` chain on 3.14, interleaved runs).
    #[inline(never)]
    fn new_handle(
        slf: &Bound<'_, Self>,
        kind: SpareKind,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Bound<'_, PyAny>>,
        debug: bool,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let handle = Handle::create(callback, args, context, slf.as_any(), debug)?;
        match kind {
            SpareKind::Plain => Py::new(py, handle),
            SpareKind::ThreadSafe => Ok(Bound::new(py, ThreadSafeHandle::around(handle))?
                .into_super()
                .unbind()),
        }
    }

    /// `_timer_handle_cancelled`: a timer cancelled while in the heap counts towards the
    /// heap's compaction.
    pub(crate) fn timer_handle_cancelled(&self, timer: &Bound<'_, TimerHandle>) {
        if timer.as_super().get().is_scheduled() {
            HandleLoop::timer_cancelled(self, timer.py());
        }
    }
}
