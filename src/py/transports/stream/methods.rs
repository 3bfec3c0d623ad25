//! `StreamTransport`'s Python-facing method table.

use std::os::fd::RawFd;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use super::{receiver_for, StreamTransport};
use crate::py::errors::{os_error, shield};
use crate::py::messages;
use crate::runtime::io_registry::Direction;
use crate::runtime::sys;

#[pymethods]
impl StreamTransport {
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        shield(|| Self::write_data(slf, data))
    }

    /// 3.12+'s `writelines`: everything goes into the buffer, then one flush.
    fn _writelines_buffered(
        slf: &Bound<'_, Self>,
        list_of_data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        shield(|| Self::writelines_buffered(slf, list_of_data))
    }

    fn write_eof(&self) -> PyResult<()> {
        shield(|| {
            let mut st = self.state();
            if st.closing || st.eof {
                return Ok(());
            }
            st.eof = true;
            if st.buffer.is_empty() {
                sys::shutdown_write(self.fd).map_err(os_error)?;
            }
            Ok(())
        })
    }

    fn can_write_eof(&self) -> bool {
        true
    }

    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::close_transport(slf))
    }

    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::force_close(slf, slf.py().None()))
    }

    fn _force_close(slf: &Bound<'_, Self>, exc: Py<PyAny>) -> PyResult<()> {
        shield(|| Self::force_close(slf, exc))
    }

    fn is_closing(&self) -> bool {
        self.state().closing
    }

    fn is_reading(&self) -> bool {
        Self::is_reading_state(&self.state())
    }

    fn pause_reading(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| {
            {
                let mut st = self.state();
                if !Self::is_reading_state(&st) {
                    return Ok(());
                }
                st.paused = true;
            }
            self.unwatch(py, Direction::Read)?;
            self.debug_log(py, messages::PAUSES_READING)
        })
    }

    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            {
                let mut st = slf.get().state();
                if st.closing || !st.paused {
                    return Ok(());
                }
                st.paused = false;
            }
            Self::start_reading(slf)?;
            slf.get().debug_log(slf.py(), messages::RESUMES_READING)
        })
    }

    /// Called once `connection_made` has run, as asyncio's transports start reading.
    fn _start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::start_reading(slf))
    }

    fn _read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::read_ready(slf))
    }

    fn _write_ready(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| self.write_ready(py))
    }

    fn get_write_buffer_size(&self) -> usize {
        self.state().buffer.len()
    }

    fn get_write_buffer_limits(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let st = self.state();
        match &st.limits {
            Some(limits) => Ok(limits.clone_ref(py)),
            None => Ok((st.low_water, st.high_water)
                .into_pyobject(py)?
                .into_any()
                .unbind()),
        }
    }

    /// Sets limits the Python half validated, then pauses the protocol if now above them.
    fn _set_write_buffer_limits(
        &self,
        high: &Bound<'_, PyAny>,
        low: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        shield(|| self.set_write_buffer_limits(high, low))
    }

    fn set_protocol(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        shield(|| {
            let receiver = receiver_for(protocol)?;
            let old = {
                let mut st = self.state();
                st.protocol_connected = true;
                st.receiver = receiver;
                st.protocol.replace(protocol.clone().unbind())
            };
            drop(old);
            Ok(())
        })
    }

    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state().protocol.as_ref().map(|p| p.clone_ref(py))
    }

    fn _make_empty_waiter(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        shield(|| {
            if self.state().empty_waiter.is_some() {
                return Err(messages::empty_waiter_set());
            }
            let waiter = self.loop_any(py).call_method0("create_future")?.unbind();
            let empty = {
                let mut st = self.state();
                st.empty_waiter = Some(waiter.clone_ref(py));
                st.buffer.is_empty()
            };
            if empty {
                waiter.call_method1(py, intern!(py, "set_result"), (py.None(),))?;
            }
            Ok(waiter)
        })
    }

    fn _reset_empty_waiter(&self) {
        let old = self.state().empty_waiter.take();
        drop(old);
    }

    fn _call_connection_lost(&self, py: Python<'_>, exc: Bound<'_, PyAny>) -> PyResult<()> {
        shield(|| self.call_connection_lost(py, &exc))
    }

    /// asyncio's transport `__init__` scheduling what follows it: `connection_made`, then
    /// reading, then (given a waiter) waking the waiter.
    #[pyo3(signature = (protocol, waiter=None))]
    fn _schedule_connection_made(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
        waiter: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        shield(|| Self::schedule_connection_made(slf, protocol, waiter))
    }

    /// The socket object: the one given, or for a bare fd one made now, which owns the fd
    /// from then on; None once closed.
    #[getter]
    fn _sock(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        shield(|| self.socket(py))
    }

    /// Whether the transport still holds an open socket (closed by connection_lost).
    #[getter]
    fn _socket_open(&self) -> bool {
        self.socket_open()
    }

    #[getter]
    fn _sock_args(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.sock_args.as_ref().map(|a| a.clone_ref(py))
    }

    #[getter]
    fn _sock_fd(&self) -> RawFd {
        self.fd
    }

    #[getter]
    fn _protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state().protocol.as_ref().map(|p| p.clone_ref(py))
    }

    /// As `set_write_buffer_limits` was given it (`get_write_buffer_limits()[0]`).
    #[getter]
    fn _low_water(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get_write_buffer_limits(py)?
            .bind(py)
            .get_item(0)
            .map(Bound::unbind)
    }

    #[getter]
    fn _high_water(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get_write_buffer_limits(py)?
            .bind(py)
            .get_item(1)
            .map(Bound::unbind)
    }

    #[getter]
    fn _conn_lost(&self) -> u64 {
        self.state().conn_lost
    }

    #[getter]
    fn _closing(&self) -> bool {
        self.state().closing
    }

    #[getter]
    fn _paused(&self) -> bool {
        self.state().paused
    }

    #[getter]
    fn _eof(&self) -> bool {
        self.state().eof
    }

    #[getter]
    fn _protocol_paused(&self) -> bool {
        self.state().protocol_paused
    }

    #[getter]
    fn _empty_waiter(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state().empty_waiter.as_ref().map(|w| w.clone_ref(py))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.traverse(&visit)
    }

    fn __clear__(&self) {
        self.clear();
    }
}
