//! The cycle collector: one way to report references (`Visit`, `visit_all`), and the
//! tracking primitives the loop uses to hide the handles it alone holds (`handles/queued.rs`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

/// Something that holds Python references, reported to the collector as a whole.
pub(crate) trait Visit {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError>;
}

impl<T> Visit for Py<T> {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self)
    }
}

impl<T: Visit> Visit for Option<T> {
    fn visit_with(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.as_ref().map_or(Ok(()), |v| v.visit_with(visit))
    }
}

/// A `__traverse__` body: each of `items` in turn.
pub(crate) fn visit_all(visit: &PyVisit<'_>, items: &[&dyn Visit]) -> Result<(), PyTraverseError> {
    items.iter().try_for_each(|item| item.visit_with(visit))
}

pub(crate) fn is_tracked(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: callers pass a live object and hold the GIL.
    unsafe { ffi::PyObject_GC_IsTracked(obj) != 0 }
}

/// Tracks `obj` if it is not tracked; tracking twice is a fatal error in CPython.
pub(crate) fn track(obj: *mut ffi::PyObject) {
    if !is_tracked(obj) {
        // SAFETY: `obj` is a live GC object (a Handle or a Context), untracked, and the
        // caller holds the GIL.
        unsafe { ffi::PyObject_GC_Track(obj.cast()) };
    }
}

/// Only a context copy is ever hidden. `context=` accepts any object (asyncio fails only
/// when the handle runs), and tracking an object of a non-GC type corrupts memory.
pub(crate) fn is_context(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: callers pass a live object; this compares its type pointer.
    unsafe { ffi::PyContext_CheckExact(obj) != 0 }
}

/// An object's reference count, read as the headers of the CPython this is built against
/// write it: from 3.12 on, a 64-bit build's `Py_INCREF` stores only the low 32 bits of the
/// word (the rest is unused, and on 3.14 holds flags). Read whole, as `Py_REFCNT` does
/// here, the word could not be forwarded from such a store, which stalled the CPU on the
/// checks below, made right after the counts change (`perf`).
///
/// # Safety
/// `obj` is a live object, and the caller holds the GIL.
#[inline(always)]
unsafe fn refcount(obj: *mut ffi::PyObject) -> isize {
    if cfg!(all(
        Py_3_12,
        not(Py_GIL_DISABLED),
        target_pointer_width = "64",
        target_endian = "little"
    )) {
        // SAFETY: per the contract; the count is the object's first 32 bits (`ob_refcnt`).
        unsafe { obj.cast::<u32>().read() as isize }
    } else {
        // SAFETY: per the contract.
        unsafe { ffi::Py_REFCNT(obj) }
    }
}

pub(crate) fn is_shared(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: callers pass a live object and hold the GIL.
    unsafe { refcount(obj) > 1 }
}

/// Whether only the caller's reference reaches `obj`: no other strong one, and no weak one
/// (which would see the object outlive what it was, were it reused).
pub(crate) fn is_unobserved(obj: *mut ffi::PyObject) -> bool {
    is_held_only_by(obj, 1)
}

/// Whether `holders` strong references, known to the caller, are all that reach `obj`.
pub(crate) fn is_held_only_by(obj: *mut ffi::PyObject, holders: isize) -> bool {
    // SAFETY: callers pass a live object and hold the GIL.
    if unsafe { refcount(obj) } != holders {
        return false;
    }
    // SAFETY: callers pass a live object and hold the GIL: this reads its type's
    // `tp_weaklistoffset` and, where the type has one, the head of the object's list of
    // weak references at that offset.
    unsafe {
        let offset = (*ffi::Py_TYPE(obj)).tp_weaklistoffset;
        if offset <= 0 {
            return offset == 0;
        }
        let weaklist = obj.cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>();
        (*weaklist).is_null()
    }
}

/// Tracks a handle's context again before Python code can get hold of it.
pub(crate) fn reveal_context(context: &Py<PyAny>) {
    if is_context(context.as_ptr()) {
        track(context.as_ptr());
    }
}
