//! Spare Handles, refilled by `call_soon` instead of making new ones.
//!
//! A busy loop makes a Handle for each `call_soon` and drops it once it has run. Making
//! one costs an object allocation and set-up, dropping it a deallocation: a fifth of a
//! `call_soon` chain's instructions (callgrind). A handle that has run is
//! no longer observable when the loop holds its only reference and no weak reference
//! points to it, so the loop may keep the object, emptied, and hand it out again; to
//! Python that is a fresh handle that happens to reuse an address, as freed memory does.
//!
//! Only plain Handles of this loop qualify (not TimerHandles, not subclasses), and none
//! in debug mode, where a handle records where it was made. Spare handles hold nothing
//! but their loop; the loop's `__traverse__` speaks for them (`Queued::visit`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyTypeInfo, PyVisit};

use super::handle::{Emptied, Handle};
use super::queued::Queued;
use crate::py::gc;

/// Enough for steady traffic, where each callback's handle is refilled by the next one's
/// `call_soon`; a burst beyond it is freed as before.
const SPARE_HANDLES: usize = 64;

#[derive(Default)]
pub(crate) struct HandlePool {
    spare: Vec<Queued<Handle>>,
}

impl HandlePool {
    pub(crate) fn take(&mut self) -> Option<Queued<Handle>> {
        self.spare.pop()
    }

    /// Keeps `handle`, emptied, if there is room and nothing else can see it, leaving what
    /// it held in `held`, to be released once the caller lets go of the pool: finalizers
    /// may run arbitrary code. Gives the handle back otherwise.
    pub(crate) fn keep(
        &mut self,
        handle: Queued<Handle>,
        owner: &Bound<'_, PyAny>,
        held: &mut Emptied,
    ) -> Result<(), Queued<Handle>> {
        let py = owner.py();
        if self.spare.len() >= SPARE_HANDLES || !unobserved(handle.get().bind(py), owner) {
            return Err(handle);
        }
        handle.get().get().empty_into(py, held);
        self.spare.push(handle);
        Ok(())
    }

    pub(crate) fn drain(&mut self) -> Vec<Queued<Handle>> {
        std::mem::take(&mut self.spare)
    }

    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.spare.iter().try_for_each(|h| h.visit(visit))
    }
}

/// A plain Handle of `owner`'s that only the caller's reference reaches.
fn unobserved(handle: &Bound<'_, Handle>, owner: &Bound<'_, PyAny>) -> bool {
    let obj = handle.as_ptr();
    // SAFETY: `obj` is a live object; this reads its type pointer.
    let ty = unsafe { ffi::Py_TYPE(obj) };
    ty == Handle::type_object_raw(owner.py())
        && gc::is_unobserved(obj)
        && handle.get().loop_.as_ptr() == owner.as_ptr()
}
