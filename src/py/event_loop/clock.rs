//! The loop's clock. `time()` is the native monotonic clock unless a subclass overrides
//! it (`CLOCK_OVERRIDDEN`) or a test patched it on the instance (`CLOCK_PATCHED`):
//! asyncio reads the time through `self.time()`, so timers then fall due by that clock,
//! as they do there.

use std::sync::atomic::Ordering::Relaxed;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::LoopCore;
use crate::py::messages;
use crate::runtime::clock;

pub(super) const CLOCK_OVERRIDDEN: u8 = 1;
const CLOCK_PATCHED: u8 = 2;

impl LoopCore {
    /// Follows an assignment to (`set`) or deletion of an instance attribute.
    pub(super) fn note_time_attribute(&self, name: &Bound<'_, PyString>, set: bool) {
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
    pub(super) fn replaced_now(slf: &Bound<'_, Self>) -> PyResult<Option<f64>> {
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
    pub(super) fn now(slf: &Bound<'_, Self>) -> PyResult<f64> {
        Ok(Self::replaced_now(slf)?.unwrap_or_else(clock::monotonic))
    }
}

/// A float from `delay` or `when`, with the TypeError `time() + delay` would raise.
pub(super) fn seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    value.extract::<f64>().map_err(|err| {
        if err.is_instance_of::<pyo3::exceptions::PyTypeError>(value.py()) {
            let ty = value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            messages::unsupported_addition(&ty)
        } else {
            err
        }
    })
}
