//! The loop state asyncio keeps in private attributes (`_debug`, `_thread_id`,
//! `_current_handle`, ...), which `BaseEventLoop`'s methods read and write and other
//! threads may read (`is_running()`); and the objects the loop keeps while it runs.

use std::sync::atomic::Ordering::Relaxed;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};

use super::slots::WhileRunning;
use super::LoopCore;
use crate::py::messages;
use crate::runtime::ticks;
use pyo3::exceptions::PyAttributeError;

/// The bits of `LoopCore::debug`.
const DEBUG_ON: u8 = 1;
const DEBUG_OBJECT: u8 = 2;

/// Keeps the `WhileRunning` objects for as long as it lives (a run), and drops them
/// after, even if a panic unwinds through: each forms a cycle with the loop.
pub(super) struct KeepWhileRunning<'a, 'py>(&'a Bound<'py, LoopCore>);

impl<'a, 'py> KeepWhileRunning<'a, 'py> {
    pub(super) fn keep(slf: &'a Bound<'py, LoopCore>) -> PyResult<Self> {
        let py = slf.py();
        // `call_soon`'s method descriptor (`fastcall`), bound as `slf.call_soon` binds it
        // while the loop does not run.
        let method = py
            .get_type::<LoopCore>()
            .getattr(intern!(py, "call_soon"))?;
        let kept = WhileRunning {
            call_soon: method
                .call_method1(intern!(py, "__get__"), (slf,))?
                .unbind(),
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

impl LoopCore {
    /// `call_soon` bound to this loop, while it runs.
    pub(crate) fn bound_call_soon(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.while_running
            .borrow_mut(py)
            .as_ref()
            .map(|w| w.call_soon.clone_ref(py))
    }

    /// `{'loop': self}`: kept while the loop runs, made anew otherwise.
    pub(super) fn loop_kwargs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        if let Some(w) = slf.get().while_running.borrow_mut(py).as_ref() {
            return Ok(w.loop_kwargs.bind(py).clone());
        }
        Self::new_loop_kwargs(slf)
    }

    pub(super) fn new_loop_kwargs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
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

    /// `_debug = value`: its truth, and the object itself unless it is a bool.
    pub(super) fn set_debug_object(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
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

    pub(crate) fn debug(&self) -> bool {
        self.debug.load(Relaxed) & DEBUG_ON != 0
    }

    pub(super) fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Relaxed) {
            Err(messages::loop_closed())
        } else {
            Ok(())
        }
    }

    /// `slow_callback_duration = value`: a number of seconds, or anything else (which no
    /// callback's time reaches).
    pub(super) fn set_slow_threshold(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let value = value.ok_or_else(|| {
            PyAttributeError::new_err("cannot delete attribute 'slow_callback_duration'")
        })?;
        let secs = value.extract::<f64>().ok();
        self.activity
            .set_slow_threshold(secs.and_then(ticks::from_secs));
        self.slow_callback_duration.set(Some(value));
        Ok(())
    }

    pub(super) fn resolution(&self) -> f64 {
        f64::from_bits(self.clock_resolution.load(Relaxed))
    }
}
