//! Tear-down: `close`, `abort`, `_force_close`, `_fatal_error` and
//! `_call_connection_lost`.

use pyo3::exceptions::PyConnectionError;
use pyo3::intern;
use pyo3::prelude::*;

use super::{Endpoint, StreamTransport};
use crate::py::handles::is_exit;
use crate::py::messages;
use crate::py::pyapi;
use crate::runtime::io_registry::Direction;
use crate::runtime::sys;

/// The rest of `_call_connection_lost`'s `finally`: the Python half lets go of the loop
/// and of its server, which learns that one connection fewer is open.
fn detach_shell(shell: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = shell.py();
    shell.setattr(intern!(py, "_loop"), py.None())?;
    let server = shell.getattr(intern!(py, "_server"))?;
    if !server.is_none() {
        pyapi::server_detach(&server, shell, false)?;
        shell.setattr(intern!(py, "_server"), py.None())?;
    }
    Ok(())
}

impl StreamTransport {
    /// `_fatal_error`, on the Python half: logs or reports, then force-closes.
    pub(super) fn fatal_error(&self, py: Python<'_>, err: PyErr, message: &str) -> PyResult<()> {
        let shell = self.state().shell.as_ref().map(|s| s.clone_ref(py));
        match shell {
            Some(shell) => shell
                .call_method1(py, "_fatal_error", (err.into_value(py), message))
                .map(drop),
            None => Ok(()),
        }
    }

    /// Runs a protocol callback's outcome through asyncio's rule: SystemExit and
    /// KeyboardInterrupt propagate, anything else is fatal to the connection.
    pub(super) fn protocol_outcome<T>(
        &self,
        py: Python<'_>,
        result: PyResult<T>,
        message: &str,
    ) -> PyResult<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(err) if is_exit(py, &err) => Err(err),
            Err(err) => self.fatal_error(py, err, message).map(|()| None),
        }
    }

    /// `_SelectorSocketTransport._call_connection_lost`: tells the protocol (if it was
    /// told of the connection), then closes the socket and lets go of the loop and the
    /// server, whatever the protocol raised; then fails a pending empty waiter.
    pub(super) fn call_connection_lost(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (protocol, waiter, shell, rest) = {
            let mut st = self.state();
            let connected = st.protocol_connected;
            let protocol = st.protocol.take().filter(|_| connected);
            let rest = (st.read_context.take(), st.write_context.take());
            (
                protocol,
                st.empty_waiter.as_ref().map(|w| w.clone_ref(py)),
                st.shell.take(),
                rest,
            )
        };
        drop(rest);
        let told = match protocol {
            Some(protocol) => protocol
                .call_method1(py, intern!(py, "connection_lost"), (exc,))
                .map(drop),
            None => Ok(()),
        };
        // The `finally` of asyncio's method: its error, if any, is the one raised.
        self.close_endpoint(py)?;
        if let Some(shell) = shell {
            detach_shell(shell.bind(py))?;
        }
        told?;
        if let Some(waiter) = waiter {
            let err = PyConnectionError::new_err(messages::CLOSED_BY_PEER);
            waiter.call_method1(py, intern!(py, "set_exception"), (err,))?;
        }
        Ok(())
    }

    /// Closes the socket (the bare fd, or the socket object that owns it), once.
    pub(crate) fn close_endpoint(&self, py: Python<'_>) -> PyResult<()> {
        let endpoint = std::mem::replace(&mut self.state().endpoint, Endpoint::Closed);
        match endpoint {
            Endpoint::Fd => {
                sys::close(self.fd);
                Ok(())
            }
            Endpoint::Socket(sock) => sock.call_method0(py, intern!(py, "close")).map(drop),
            Endpoint::Lent | Endpoint::Closed => Ok(()),
        }
    }

    /// `_SelectorTransport.close`.
    pub(super) fn close_transport(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let flushed = {
            let mut st = this.state();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
            if st.buffer.is_empty() {
                st.conn_lost += 1;
            }
            st.buffer.is_empty()
        };
        this.unwatch(py, Direction::Read)?;
        if flushed {
            this.unwatch(py, Direction::Write)?;
            Self::schedule_connection_lost(slf, py.None())?;
        }
        Ok(())
    }

    /// `_SelectorTransport._force_close`.
    pub(super) fn force_close(slf: &Bound<'_, Self>, exc: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (had_buffer, was_closing) = {
            let mut st = this.state();
            if st.conn_lost > 0 {
                return Ok(());
            }
            let had_buffer = !st.buffer.is_empty();
            st.buffer.clear();
            let was_closing = st.closing;
            st.closing = true;
            st.conn_lost += 1;
            (had_buffer, was_closing)
        };
        if had_buffer {
            this.unwatch(py, Direction::Write)?;
        }
        if !was_closing {
            this.unwatch(py, Direction::Read)?;
        }
        Self::schedule_connection_lost(slf, exc)
    }

    /// Whether a `close()` whose buffer has just drained calls `connection_lost` now:
    /// always before 3.14; from 3.14 only if the connection is not lost already, and then
    /// it counts as lost (gh-156512: never twice).
    pub(super) fn flushed_close_completes(&self, py: Python<'_>) -> PyResult<bool> {
        if !pyapi::behaviour(py)?.flushed_close_counts_conn_lost {
            return Ok(true);
        }
        let mut st = self.state();
        if st.conn_lost > 0 {
            return Ok(false);
        }
        st.conn_lost += 1;
        Ok(true)
    }
}
