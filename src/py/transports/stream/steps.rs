//! What the transport queues on the loop where asyncio's transport calls `call_soon`: each
//! a `Step` (`transports/lifecycle.rs`), run by `events.rs`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;

use super::{Endpoint, StreamTransport};
use crate::py::transports::lifecycle::Step;

impl StreamTransport {
    /// `call_soon(self._call_connection_lost, exc)`, queued as a step, in a copy of the
    /// current context as `call_soon` would make it.
    pub(super) fn schedule_connection_lost(slf: &Bound<'_, Self>, exc: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if this.state().shell.is_none() {
            return Ok(());
        }
        let context = this.step_context(py)?;
        this.owner(py)?
            .push_step(py, slf.clone().unbind(), Step::Lost { exc, context })
    }

    /// asyncio's transport `__init__` scheduling what follows it: the protocol's
    /// `connection_made`, then reading, then (given a waiter) waking the waiter; each in a
    /// copy of the current context, as `call_soon` would.
    pub(crate) fn schedule_connection_made(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
        waiter: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let shell = this.state().shell.as_ref().map(|s| s.clone_ref(py));
        let Some(shell) = shell else {
            return Err(PyRuntimeError::new_err("the transport is already closed"));
        };
        let made = Step::Made {
            callback: protocol.getattr(intern!(py, "connection_made"))?.unbind(),
            shell,
            context: this.step_context(py)?,
        };
        let loop_ = this.owner(py)?;
        loop_.push_step(py, slf.clone().unbind(), made)?;
        let context = this.step_context(py)?;
        loop_.push_step(py, slf.clone().unbind(), Step::StartReading { context })?;
        if let Some(waiter) = waiter {
            let context = this.step_context(py)?;
            loop_.push_wake(py, waiter.unbind(), py.None(), context)?;
        }
        // Set up: a bare fd is the transport's from here on.
        let mut st = this.state();
        if matches!(st.endpoint, Endpoint::Lent) {
            st.endpoint = Endpoint::Fd;
        }
        Ok(())
    }
}
