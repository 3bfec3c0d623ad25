//! What `LoopCore` keeps besides its scheduling state: objects other threads may read
//! (`ObjectSlot`), and those it keeps while it runs (`WhileRunning`).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{PyTraverseError, PyVisit};

use crate::runtime::sync::lock;

/// A Python object, or None, behind a lock: `_thread_id` and `_current_handle`, which other
/// threads may read.
#[derive(Default)]
pub(super) struct ObjectSlot(Mutex<Option<Py<PyAny>>>);

impl ObjectSlot {
    pub(super) fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        lock(&self.0).as_ref().map(|o| o.clone_ref(py))
    }

    pub(super) fn is_set(&self) -> bool {
        lock(&self.0).is_some()
    }

    /// Replaces the value (None for Python's None). The old value is dropped after the
    /// lock is released: its finalizer may run code that reads this slot.
    pub(super) fn set(&self, value: Option<Bound<'_, PyAny>>) {
        let new = value.filter(|v| !v.is_none()).map(Bound::unbind);
        let old = std::mem::replace(&mut *lock(&self.0), new);
        drop(old);
    }

    /// For the collector, which must not wait: a slot another thread holds is skipped.
    pub(super) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self.0.try_lock() {
            Ok(value) => visit.call(value.as_ref()),
            Err(_) => Ok(()),
        }
    }

    pub(super) fn try_take(&self) -> Option<Py<PyAny>> {
        self.0.try_lock().ok().and_then(|mut v| v.take())
    }
}

pub(super) struct WhileRunning {
    /// `call_soon` bound to this loop, handed out by `getattr(loop, 'call_soon')`
    /// (`fastcall::CallSoonDescriptor`).
    pub(super) call_soon: Py<PyAny>,
    /// `{'loop': loop}`, the keywords of a Future or Task made for this loop. A callee
    /// gets its own copy of a keywords dict, so one can serve every call.
    pub(super) loop_kwargs: Py<PyDict>,
}
