//! `call_soon(futures._set_result_unless_cancelled, waiter, result)` without a Handle: how
//! a transport wakes whoever waits for its set-up, and how a native connect hands its
//! caller the transport. The Handle is made only where someone could see it: in debug
//! mode, and for an error, reported as the Handle's would be.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::queues::{Ready, Wake};
use super::LoopCore;
use crate::py::args::Args;
use crate::py::handles::{self, Handle};
use crate::py::pyapi;

impl LoopCore {
    /// Queues a `Wake` where asyncio would `call_soon` its Handle (refused, as `call_soon`
    /// refuses, once the loop is closed).
    pub(crate) fn push_wake(
        &self,
        py: Python<'_>,
        waiter: Py<PyAny>,
        result: Py<PyAny>,
        context: Py<PyAny>,
    ) -> PyResult<()> {
        self.check_closed()?;
        let wake = Wake {
            waiter,
            result,
            context,
        };
        self.state(py).ready.push(Ready::Wake(Box::new(wake)));
        Ok(())
    }
}

impl Wake {
    /// `futures._set_result_unless_cancelled`, with an error reported as the Handle's.
    pub(super) fn run(&self, loop_: &Bound<'_, LoopCore>) -> PyResult<bool> {
        let py = loop_.py();
        let waiter = self.waiter.bind(py);
        let outcome = waiter
            .call_method0(intern!(py, "cancelled"))
            .and_then(|cancelled| cancelled.is_truthy())
            .and_then(|cancelled| {
                if cancelled {
                    return Ok(());
                }
                waiter
                    .call_method1(intern!(py, "set_result"), (&self.result,))
                    .map(drop)
            });
        match outcome {
            Ok(()) => Ok(true),
            Err(err) if handles::is_exit(py, &err) => Err(err),
            Err(err) => handles::report(&self.handle(loop_)?, err).map(|()| true),
        }
    }

    /// The Handle asyncio would have queued.
    pub(super) fn handle<'py>(&self, loop_: &Bound<'py, LoopCore>) -> PyResult<Bound<'py, Handle>> {
        let py = loop_.py();
        let handle = Handle::create(
            pyapi::set_result_unless_cancelled(py)?,
            Args::tuple(PyTuple::new(py, [&self.waiter, &self.result])?)?,
            Some(self.context.bind(py).clone()),
            loop_.as_any(),
            false,
        )?;
        Bound::new(py, handle)
    }
}
