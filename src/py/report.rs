//! Reports to the loop's exception handler: the context dict asyncio builds, then
//! `loop.call_exception_handler(context)`.

use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) struct ExceptionContext<'py>(Bound<'py, PyDict>);

impl<'py> ExceptionContext<'py> {
    /// `{'message': message, 'exception': err}`.
    pub(crate) fn new(py: Python<'py>, message: &str, err: &PyErr) -> PyResult<Self> {
        let context = PyDict::new(py);
        context.set_item("message", message)?;
        context.set_item("exception", err.value(py))?;
        Ok(ExceptionContext(context))
    }

    /// One more key: `handle`, `transport`, `protocol`, `source_traceback`.
    pub(crate) fn with(self, key: &str, value: impl IntoPyObject<'py>) -> PyResult<Self> {
        self.0.set_item(key, value)?;
        Ok(self)
    }

    pub(crate) fn report(self, loop_: &Bound<'py, PyAny>) -> PyResult<()> {
        loop_
            .call_method1("call_exception_handler", (self.0,))
            .map(drop)
    }
}
