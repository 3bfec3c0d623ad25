//! `Args`: a callback's arguments as a handle keeps them. The C Task's and Future's
//! callbacks take one argument (the future that is done): kept bare, it needs no tuple made
//! and freed around it, and the call passes it in place (`PyObject_CallOneArg`), where a
//! bound method puts its `self` in front of it without a tuple of its own either.

use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The arguments' tuple if the object is exactly a tuple, else the one argument itself (a
/// lone argument that is exactly a tuple is kept inside one). No flag beside it: a handle
/// stays as small as it was with a tuple always.
pub(crate) struct Args(Py<PyAny>);

/// Whether `object` is exactly a tuple.
#[inline(always)]
fn is_tuple(object: *mut ffi::PyObject) -> bool {
    // SAFETY: callers pass a live object; this compares its type pointer.
    unsafe { ffi::PyTuple_CheckExact(object) != 0 }
}

impl Args {
    /// No arguments: the empty tuple, a shared singleton.
    #[inline]
    pub(crate) fn none(py: Python<'_>) -> Self {
        Args(PyTuple::empty(py).into_any().unbind())
    }

    /// The arguments in `args`. A tuple subclass's items are copied into a tuple: an
    /// object that is not exactly a tuple stands for one argument.
    #[inline]
    pub(crate) fn tuple(args: Bound<'_, PyTuple>) -> PyResult<Self> {
        if is_tuple(args.as_ptr()) {
            return Ok(Args(args.into_any().unbind()));
        }
        Self::copied(&args)
    }

    #[cold]
    fn copied(args: &Bound<'_, PyTuple>) -> PyResult<Self> {
        let copy = PyTuple::new(args.py(), args.iter())?;
        Ok(Args(copy.into_any().unbind()))
    }

    pub(crate) fn one(arg: Bound<'_, PyAny>) -> PyResult<Self> {
        if is_tuple(arg.as_ptr()) {
            return Args::tuple(PyTuple::new(arg.py(), [arg])?);
        }
        Ok(Args(arg.unbind()))
    }

    /// As asyncio's `Handle._args` holds them: a tuple, made anew for one argument.
    pub(crate) fn to_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let object = self.0.bind(py);
        if is_tuple(object.as_ptr()) {
            // SAFETY: checked just above.
            return Ok(unsafe { object.clone().cast_into_unchecked() });
        }
        PyTuple::new(py, [object])
    }

    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        Args(self.0.clone_ref(py))
    }

    /// What the handle holds, for the collector.
    pub(crate) fn object(&self) -> &Py<PyAny> {
        &self.0
    }

    pub(crate) fn into_object(self) -> Py<PyAny> {
        self.0
    }

    /// Drops the reference, the thread known to be attached: `Py`'s own drop asks a
    /// thread-local first, a call into the TLS resolver on every run of a handle.
    pub(crate) fn release(self, py: Python<'_>) {
        self.0.drop_ref(py);
    }

    pub(crate) fn is_empty(&self) -> bool {
        let object = self.0.as_ptr();
        // SAFETY: a live tuple; this reads its size.
        is_tuple(object) && unsafe { ffi::PyTuple_GET_SIZE(object) } == 0
    }

    /// `callback(*args)`: a new reference, or NULL with an exception set.
    ///
    /// # Safety
    /// The GIL is held and `callback` is a live object.
    #[inline(always)]
    pub(crate) unsafe fn call(&self, callback: *mut ffi::PyObject) -> *mut ffi::PyObject {
        let object = self.0.as_ptr();
        // SAFETY: per the contract; `object` is a live tuple where `is_tuple` says so, and
        // the live argument otherwise.
        unsafe {
            if !is_tuple(object) {
                ffi::PyObject_CallOneArg(callback, object)
            } else if ffi::PyTuple_GET_SIZE(object) == 0 {
                ffi::PyObject_CallNoArgs(callback)
            } else {
                ffi::PyObject_Call(callback, object, ptr::null_mut())
            }
        }
    }
}
