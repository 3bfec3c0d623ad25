//! Methods defined the way C types define theirs: a static `PyMethodDef` and a method
//! descriptor on the type, so a call runs the function with no bound object made and no
//! Python frame (`fastcall`, the transport's finalizer).

use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

pub(crate) struct MethodDef(pub(crate) ffi::PyMethodDef);

// SAFETY: the definition is never mutated and points only at 'static data (C strings and a
// function), so sharing it between threads is sound.
unsafe impl Sync for MethodDef {}

/// A method descriptor for `def` on `ty`, as a C type's methods are: called on an
/// instance, it runs `def`'s function with no bound object made and no Python frame.
pub(crate) fn method_descriptor<'py>(
    ty: &Bound<'py, PyType>,
    def: &'static MethodDef,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `ty` is a live type object; `def` is 'static, and CPython only reads a
    // PyMethodDef through the pointer despite its `*mut` type. The call returns a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            ty.py(),
            ffi::PyDescr_NewMethod(ty.as_ptr().cast(), ptr::from_ref(&def.0).cast_mut()),
        )
    }
}
