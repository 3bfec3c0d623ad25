//! `SocketTransport.__del__`, natively: the `ResourceWarning` for a transport dropped
//! unclosed, as asyncio's transports give it.
//!
//! Written in Python, `__del__` runs a frame at the death of every transport, twice per
//! connection. CPython's finalizer slot calls a
//! method descriptor found on the type as an unbound method, so a C method installed as
//! the class's `__del__` runs with no frame at all.

use std::ptr;

use pyo3::exceptions::PyResourceWarning;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use super::stream::StreamTransport;
use crate::py::cmethod::{method_descriptor, MethodDef};
use crate::py::errors::shield;
use crate::py::messages;
use crate::py::pyapi;

/// `warnings.warn`, bound when the finalizer is installed, as asyncio's transports bind it
/// as `__del__`'s default `_warn`: a transport that dies at interpreter exit, after
/// `sys.meta_path` is gone, can no longer import it.
static WARN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn warn(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    WARN.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("warnings")?.getattr("warn")?.unbind())
    })
    .map(|warn| warn.bind(py))
}

static TRANSPORT_DEL: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"__del__".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: transport_del,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"__del__($self, /)\n--\n\nWarns about, and closes, a transport dropped unclosed."
        .as_ptr(),
});

unsafe extern "C" fn transport_del(
    slf: *mut ffi::PyObject,
    _noargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held and `slf` a live object (an
    // instance of the class the descriptor was made for, which it checks first).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: as above; the reference is borrowed for the call.
    let shell = unsafe { Bound::from_borrowed_ptr(py, slf) };
    match shield(|| warn_if_unclosed(&shell)) {
        // SAFETY: Py_None is a live object; the caller receives a new reference to it.
        Ok(()) => unsafe { ffi::Py_NewRef(ffi::Py_None()) },
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

/// What the Python half's `__del__` did: warn, close the socket, and on 3.13+ leave the
/// server (which tracks its transports there).
fn warn_if_unclosed(shell: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = shell.py();
    // The class default `_native = None` stands until `__init__` sets it.
    let native = shell.getattr(intern!(py, "_native"))?;
    let Ok(native) = native.cast::<StreamTransport>() else {
        return Ok(());
    };
    if !native.get().socket_open() {
        return Ok(());
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "source"), shell)?;
    warn(py)?.call(
        (
            messages::unclosed_transport(&shell.repr()?.to_string()),
            py.get_type::<PyResourceWarning>(),
        ),
        Some(&kwargs),
    )?;
    native.get().close_endpoint(py)?;
    let server = shell.getattr(intern!(py, "_server"))?;
    if !server.is_none() {
        pyapi::server_detach(&server, shell, true)?;
    }
    Ok(())
}

/// Makes the native `__del__` the finalizer of `cls` (`SocketTransport`).
pub(super) fn install(cls: &Bound<'_, PyType>) -> PyResult<()> {
    warn(cls.py())?;
    let descriptor = method_descriptor(cls, &TRANSPORT_DEL)?;
    cls.setattr(intern!(cls.py(), "__del__"), descriptor)
}
