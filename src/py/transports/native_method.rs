//! How a transport's Python half answers for its native half: `NativeMethod` for a method,
//! `NativeAttribute` for an attribute; either without a Python frame.

use std::sync::OnceLock;

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// The name a descriptor learns from `__set_name__`.
#[derive(Default)]
struct AttributeName(OnceLock<Py<PyString>>);

impl AttributeName {
    fn set(&self, name: Bound<'_, PyString>) {
        let _ = self.0.set(name.unbind());
    }

    fn get<'a, 'py>(&'a self, py: Python<'py>) -> PyResult<&'a Bound<'py, PyString>> {
        self.0
            .get()
            .map(|name| name.bind(py))
            .ok_or_else(|| PyTypeError::new_err("descriptor used before __set_name__"))
    }

    fn repr(&self, py: Python<'_>, kind: &str) -> String {
        match self.0.get() {
            Some(name) => format!("<{kind} {}>", name.bind(py)),
            None => format!("<{kind}>"),
        }
    }
}

/// The native half of the transport `instance`.
fn native_half<'py>(instance: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    instance.getattr(intern!(instance.py(), "_native"))
}

/// A class attribute of the Python half (`SocketTransport.write = NativeMethod()`) that,
/// on first use on an instance, binds the native half's method of that name and stores it
/// in the instance's `__dict__`, where later lookups find it first: `transport.write(data)`
/// then runs no Python frame, and a connection pays only for the methods it uses. Being a
/// non-data descriptor, an assignment to the instance attribute simply replaces it.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct NativeMethod {
    native_name: Option<Py<PyString>>,
    name: AttributeName,
}

#[pymethods]
impl NativeMethod {
    /// `native_name`: the native method's name, when it differs from the attribute's.
    #[new]
    #[pyo3(signature = (native_name=None))]
    fn new(native_name: Option<Bound<'_, PyString>>) -> NativeMethod {
        NativeMethod {
            native_name: native_name.map(Bound::unbind),
            name: AttributeName::default(),
        }
    }

    fn __set_name__(&self, _owner: &Bound<'_, PyAny>, name: Bound<'_, PyString>) {
        self.name.set(name);
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let Some(instance) = instance else {
            return Ok(slf.clone().into_any());
        };
        let this = slf.get();
        let name = this.name.get(py)?;
        let native_name = this.native_name.as_ref().map_or(name, |n| n.bind(py));
        let method = native_half(instance)?.getattr(native_name)?;
        instance.setattr(name, &method)?;
        Ok(method)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.name.repr(py, "NativeMethod")
    }
}

/// A class attribute of the Python half (`SocketTransport._closing = NativeAttribute()`)
/// that reads the native half's attribute of that name on every access, where a Python
/// `property` would run a frame. Like the plain attribute asyncio's transport has, an
/// assignment to the instance replaces it.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct NativeAttribute {
    name: AttributeName,
}

#[pymethods]
impl NativeAttribute {
    #[new]
    fn new() -> NativeAttribute {
        NativeAttribute {
            name: AttributeName::default(),
        }
    }

    fn __set_name__(&self, _owner: &Bound<'_, PyAny>, name: Bound<'_, PyString>) {
        self.name.set(name);
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(instance) = instance else {
            return Ok(slf.clone().into_any());
        };
        native_half(instance)?.getattr(slf.get().name.get(slf.py())?)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.name.repr(py, "NativeAttribute")
    }
}
