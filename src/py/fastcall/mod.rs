//! The loop's hottest entry points as C methods: `call_soon` and its kin
//! (`call_soon_threadsafe`, `call_later`, `call_at`), `create_task` and `get_debug`.
//!
//! asyncio's C Task and Future call `loop.call_soon(callback, arg, context=ctx)` for every
//! step and every done callback, `loop.get_debug()` for every Future, and `gather` and
//! `TaskGroup` call `loop.create_task(coro)` for every coroutine. PyO3's generic
//! parser matches a keyword by decoding its name and comparing strings, and builds its
//! varargs tuple in a second pass: a sizeable share of a Task step (callgrind). These
//! methods take the arguments as the caller laid them out (`arguments`), and `call_soon`
//! sits behind a descriptor that hands out one bound method per run (`descriptor`).

mod arguments;
mod descriptor;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::py::cmethod::{method_descriptor, MethodDef};
use crate::py::event_loop::LoopCore;
use arguments::{call_at, call_later, call_soon, call_soon_threadsafe, create_task};
use descriptor::CallSoonDescriptor;

type FastCall = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

const fn method(
    name: &'static std::ffi::CStr,
    meth: FastCall,
    doc: &'static std::ffi::CStr,
) -> MethodDef {
    MethodDef(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: meth,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    })
}

static CALL_SOON: MethodDef = method(
    c"call_soon",
    call_soon,
    c"call_soon($self, callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called as soon as possible, in `context` (a copy of the current one by default).",
);

static CALL_SOON_THREADSAFE: MethodDef = method(
    c"call_soon_threadsafe",
    call_soon_threadsafe,
    c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\nLike call_soon(), but \
thread-safe: wakes the loop if it is waiting.",
);

static CALL_LATER: MethodDef = method(
    c"call_later",
    call_later,
    c"call_later($self, delay, callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called `delay` seconds from now; returns a TimerHandle.",
);

static CALL_AT: MethodDef = method(
    c"call_at",
    call_at,
    c"call_at($self, when, callback, *args, context=None)\n--\n\nLike call_later(), but at the \
loop.time() `when`.",
);

static CREATE_TASK: MethodDef = method(
    c"create_task",
    create_task,
    c"create_task($self, coro, **kwargs)\n--\n\nSchedule a coroutine object; returns a Task.",
);

/// `get_debug`, which the C Future and Task call on every construction (`future_init`):
/// a METH_NOARGS function reading one flag, without PyO3's trampoline around it.
static GET_DEBUG: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"get_debug".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: get_debug,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"get_debug($self, /)\n--\n\nWhether the loop is in debug mode.".as_ptr(),
});

unsafe extern "C" fn get_debug(
    slf: *mut ffi::PyObject,
    _noargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held, and a method descriptor checks
    // that `slf` is an instance of its type (LoopCore) before calling. Reading an atomic
    // flag, and cloning a reference under an uncontended lock, cannot panic, so no panic
    // boundary is needed; the result is returned as a new reference.
    unsafe {
        let py = Python::assume_attached();
        let core = Bound::from_borrowed_ptr(py, slf);
        core.cast_unchecked::<LoopCore>()
            .get()
            .debug_object(py)
            .into_ptr()
    }
}

/// Puts the methods on `LoopCore`'s type: `call_soon` behind a `CallSoonDescriptor`, the
/// others as plain method descriptors.
pub(crate) fn install(loop_type: &Bound<'_, PyType>) -> PyResult<()> {
    let py = loop_type.py();
    let descriptor = |def: &'static MethodDef| method_descriptor(loop_type, def);
    loop_type.setattr(
        intern!(py, "call_soon"),
        CallSoonDescriptor::wrap(descriptor(&CALL_SOON)?)?,
    )?;
    for def in [
        &CALL_SOON_THREADSAFE,
        &CALL_LATER,
        &CALL_AT,
        &CREATE_TASK,
        &GET_DEBUG,
    ] {
        let method = descriptor(def)?;
        loop_type.setattr(
            method
                .getattr(intern!(py, "__name__"))?
                .cast::<PyString>()?,
            method,
        )?;
    }
    Ok(())
}
