//! `Handle`'s Python-facing method table.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use super::handle::{asyncio_class, cancel, joined_repr, Handle};
use super::run::run;
use crate::py::context::EmptyContext;
use crate::py::errors::shield;
use crate::py::pyapi;

#[pymethods]
impl Handle {
    #[new]
    #[pyo3(signature = (callback, args, r#loop, context=None))]
    fn py_new(
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyAny>,
        r#loop: Bound<'_, PyAny>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        shield(|| Handle::construct(callback, args, r#loop, context))
    }

    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| cancel(slf))
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    fn get_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        shield(|| self.shared_context(py))
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::handle_type)
    }

    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| run(slf, &mut EmptyContext::default()).map(drop))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        shield(|| {
            if let Some(r) = slf.get().kept_repr(slf.py()) {
                return r.bind(slf.py()).str().map(|s| s.to_string());
            }
            joined_repr(&pyapi::handle_repr_info(slf.as_any())?)
        })
    }

    #[getter]
    fn _callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let state = self.state.borrow_mut(py);
        state.callback.as_ref().map(|c| c.clone_ref(py))
    }

    #[getter]
    fn _args(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        let state = self.state.borrow_mut(py);
        state
            .args
            .as_ref()
            .map(|a| a.to_tuple(py).map(Bound::unbind))
            .transpose()
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.is_cancelled()
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.loop_.clone_ref(py)
    }

    #[getter]
    fn _context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        shield(|| self.shared_context(py))
    }

    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback(py)
    }

    #[getter]
    fn _repr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.kept_repr(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.visit_references(&visit)
    }

    fn __clear__(&self) {
        let taken = Python::attach(|py| {
            self.state
                .try_borrow_mut(py)
                .ok()
                .map(|mut state| (state.callback.take(), state.args.take(), state.debug.take()))
        });
        // Released with no borrow held: finalizers may run arbitrary code.
        drop(taken);
    }
}
