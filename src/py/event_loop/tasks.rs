//! `create_future` and `create_task`, without a Python frame in the common case.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::LoopCore;
use crate::py::pyapi;

impl LoopCore {
    pub(super) fn new_future(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        // A Future made without `loop=` takes the running loop: the same future, without
        // the keyword parsing in CPython's `Future.__init__`.
        if pyapi::is_running_loop(slf.as_any())? {
            return Ok(pyapi::future_type(py)?.call0()?.unbind());
        }
        let kwargs = Self::loop_kwargs(slf)?;
        Ok(pyapi::future_type(py)?.call((), Some(&kwargs))?.unbind())
    }

    /// `Task(coro, loop=self, **kwargs)`; with a task factory, in debug mode, or with
    /// keywords this CPython's `create_task` does not pass to Task (anything but `name`
    /// and `context` before 3.14), CPython's own `BaseEventLoop.create_task` does it,
    /// given exactly the caller's keywords.
    pub(crate) fn new_task(
        slf: &Bound<'_, Self>,
        coro: Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let kwargs = kwargs.filter(|k| !k.is_empty());
        // `loop=` among them is CPython's error to raise.
        let task_keywords = |k: &Bound<'_, PyDict>| {
            k.keys().iter().all(|key| {
                let is = |name| key.eq(name).unwrap_or(false);
                if pyapi::version_at_least(py, (3, 14)) {
                    !is(intern!(py, "loop"))
                } else {
                    is(intern!(py, "name")) || is(intern!(py, "context"))
                }
            })
        };
        let simple =
            !this.debug() && kwargs.is_none_or(task_keywords) && !this.task_factory.is_set();
        if !simple {
            return Ok(pyapi::base_create_task(py)?
                .call((slf, coro), kwargs)?
                .unbind());
        }
        this.check_closed()?;
        let task = pyapi::task_type(py)?;
        // As in `new_future`: the running loop needs no `loop=`, and a call without
        // keywords skips their parsing. A Task class patched in gets `loop=` as
        // `BaseEventLoop.create_task` gives it.
        let running = pyapi::is_asyncio_task(&task)? && pyapi::is_running_loop(slf.as_any())?;
        match (kwargs, running) {
            (None, true) => Ok(task.call1((coro,))?.unbind()),
            (None, false) => {
                let kwargs = Self::loop_kwargs(slf)?;
                Ok(task.call((coro,), Some(&kwargs))?.unbind())
            }
            (Some(kwargs), true) => Ok(task.call((coro,), Some(kwargs))?.unbind()),
            (Some(kwargs), false) => {
                let all = Self::new_loop_kwargs(slf)?;
                all.update(kwargs.as_mapping())?;
                Ok(task.call((coro,), Some(&all))?.unbind())
            }
        }
    }
}
