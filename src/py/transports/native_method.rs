//! How a transport's Python half answers for its native half: `NativeMethod` for a method,
//! `NativeAttribute` for an attribute; either without a Python frame.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A class attribute of the Python half (`SocketTransport.write = NativeMethod()`) that,
/// on first use on an instance, binds the native half's method of that name and stores it
/// in the instance's `__dict__`, where later lookups find it first: `transport.write(data)`
/// then runs no Python frame, and a connection pays only for the methods it uses. Being a
/// non-data descriptor, an assignment to the instance attribute simply replaces it.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct NativeMethod {
    native_name: Option<Py<PyString>>,
    name: std::sync::OnceLock<Py<PyString>>,
}

#[pymethods]
impl NativeMethod {
    /// `native_name`: the native method's name, when it differs from the attribute's.
    #[new]
    #[pyo3(signature = (native_name=None))]
    fn new(native_name: Option<Bound<'_, PyString>>) -> NativeMethod {
        NativeMethod {
            native_name: native_name.map(Bound::unbind),
            name: std::sync::OnceLock::new(),
        }
    }

    fn __set_name__(&self, _owner: &Bound<'_, PyAny>, name: Bound<'_, PyString>) {
        let _ = self.name.set(name.unbind());
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
        let name = this
            .name
            .get()
            .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("NativeMethod unnamed"))?
            .bind(py);
        let native_name = this.native_name.as_ref().map_or(name, |n| n.bind(py));
        let method = instance
            .getattr(intern!(py, "_native"))?
            .getattr(native_name)?;
        instance.setattr(name, &method)?;
        Ok(method)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.name.get() {
            Some(name) => format!("<NativeMethod {}>", name.bind(py)),
            None => "<NativeMethod>".to_owned(),
        }
    }
}

/// A class attribute of the Python half (`SocketTransport._closing = NativeAttribute()`)
/// that reads the native half's attribute of that name on every access, where a Python
/// `property` would run a frame. Like the plain attribute asyncio's transport has, an
/// assignment to the instance replaces it.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct NativeAttribute {
    name: std::sync::OnceLock<Py<PyString>>,
}

#[pymethods]
impl NativeAttribute {
    #[new]
    fn new() -> NativeAttribute {
        NativeAttribute {
            name: std::sync::OnceLock::new(),
        }
    }

    fn __set_name__(&self, _owner: &Bound<'_, PyAny>, name: Bound<'_, PyString>) {
        let _ = self.name.set(name.unbind());
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
        let name = slf
            .get()
            .name
            .get()
            .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("NativeAttribute unnamed"))?
            .bind(py);
        instance.getattr(intern!(py, "_native"))?.getattr(name)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.name.get() {
            Some(name) => format!("<NativeAttribute {}>", name.bind(py)),
            None => "<NativeAttribute>".to_owned(),
        }
    }
}
