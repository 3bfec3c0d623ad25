//! `LoopCore.call_soon`'s entry point, parsing its vectorcall arguments by hand.
//!
//! asyncio's C Task and Future call `loop.call_soon(callback, arg, context=ctx)` for every
//! step and every done callback. PyO3's generic parser matches a keyword by decoding its
//! name and comparing strings, and its varargs tuple is built through a second pass: with
//! its trampoline, about 500 instructions per call, 5 % of a Task step (callgrind). This
//! entry point takes the arguments as the caller laid them out and recognises `context`
//! by pointer (it is interned wherever Python code writes it) before comparing text.

use std::ptr;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};

use super::errors::shield;
use super::event_loop::LoopCore;

struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definition is never mutated and points only at 'static data (C strings and a
// function), so sharing it between threads is sound.
unsafe impl Sync for MethodDef {}

static CALL_SOON: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"call_soon".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: call_soon,
    },
    ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"call_soon(callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called as soon as possible, in `context` (a copy of the current one by default)."
        .as_ptr(),
});

/// Puts `call_soon` on `LoopCore`'s type, as a method descriptor like any other.
pub fn install(loop_type: &Bound<'_, PyType>) -> PyResult<()> {
    let py = loop_type.py();
    // SAFETY: `loop_type` is a live type object; `CALL_SOON` is 'static, and CPython only
    // reads a PyMethodDef through the pointer despite its `*mut` type. The call returns a
    // new reference or NULL with an exception set.
    let descriptor = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyDescr_NewMethod(
                loop_type.as_ptr().cast(),
                ptr::from_ref(&CALL_SOON.0).cast_mut(),
            ),
        )?
    };
    loop_type.setattr(intern!(py, "call_soon"), descriptor)
}

/// The METH_FASTCALL | METH_KEYWORDS function behind `LoopCore.call_soon`.
unsafe extern "C" fn call_soon(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the vectorcall protocol: `args` holds `nargs` positional arguments followed
    // by one value per name in `kwnames` (a tuple, or NULL for none), all borrowed for the
    // duration of the call, and `slf` is the object the descriptor was bound to.
    let result = shield(|| unsafe { parse_and_call(py, slf, args, nargsf, kwnames) });
    match result {
        Ok(handle) => handle.into_ptr(),
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

/// # Safety
/// The arguments are those of a vectorcall, as `call_soon` receives them.
unsafe fn parse_and_call(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<super::handles::Handle>> {
    // SAFETY (whole body): per the caller's contract, every pointer read here is a live,
    // borrowed object, and `args` has `nargs + len(kwnames)` entries.
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf) }.cast_into::<LoopCore>()?;
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) } as usize;
    let item = |i: usize| unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
    if nargs == 0 {
        return Err(PyTypeError::new_err(
            "call_soon() missing 1 required positional argument: 'callback'",
        ));
    }
    let mut context = None;
    if !kwnames.is_null() {
        let names = unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?;
        let wanted = intern!(py, "context");
        for (i, name) in names.iter().enumerate() {
            if name.is(wanted) || name.cast::<PyString>()?.to_cow()? == "context" {
                context = Some(item(nargs + i));
            } else {
                return Err(PyTypeError::new_err(format!(
                    "call_soon() got an unexpected keyword argument '{name}'"
                )));
            }
        }
    }
    let rest = PyTuple::new(py, (1..nargs).map(item))?;
    LoopCore::schedule_soon(&slf, item(0), rest, context)
}
