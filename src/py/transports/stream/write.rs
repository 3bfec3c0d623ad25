//! Writing: `write`, `writelines`, and flushing what the kernel did not take at once.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};

use super::{would_block, StreamTransport};
use crate::constants::LOG_THRESHOLD_FOR_CONNLOST_WRITES;
use crate::py::errors::os_error;
use crate::py::messages;
use crate::py::pyapi;
use crate::py::transports::bytes::with_bytes;
use crate::runtime::io_registry::Direction;
use crate::runtime::sys;

impl StreamTransport {
    /// `write`: straight to the socket when nothing is buffered.
    pub(super) fn write_data(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if !(data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>())
        {
            let name = data.get_type().name()?.repr()?.to_string();
            let message = &pyapi::behaviour(py)?.write_type_error;
            return Err(PyTypeError::new_err(message.replace("{!r}", &name)));
        }
        let (len, sent) = {
            let st = this.state();
            if st.eof {
                return Err(messages::write_after_eof("write"));
            }
            if st.empty_waiter.is_some() {
                return Err(messages::write_during_sendfile("write"));
            }
            let len = with_bytes(data, <[u8]>::len)?;
            if len == 0 {
                return Ok(());
            }
            if st.conn_lost > 0 {
                drop(st);
                return this.note_write_after_loss(py).map(drop);
            }
            if !st.buffer.is_empty() {
                (len, 0)
            } else {
                // Optimization, as asyncio's: try to send now.
                match with_bytes(data, |bytes| sys::send(this.fd, bytes))? {
                    Ok(n) if n == len => return Ok(()),
                    Ok(n) => (len, n),
                    Err(err) if would_block(&err) => (len, 0),
                    Err(err) => {
                        drop(st);
                        return this.fatal_error(py, os_error(err), messages::FATAL_WRITE);
                    }
                }
            }
        };
        Self::buffer_rest(slf, data, len, sent)
    }

    /// 3.12+'s `writelines`: everything goes into the buffer, then one flush. 3.14's also
    /// drops the data once the connection is lost (as `write` does), never buffers an
    /// empty chunk, and pauses the protocol past the high-water mark.
    pub(super) fn writelines_buffered(
        slf: &Bound<'_, Self>,
        list_of_data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        {
            let st = this.state();
            if st.eof {
                return Err(messages::write_after_eof("writelines"));
            }
            if st.empty_waiter.is_some() {
                return Err(messages::write_during_sendfile("writelines"));
            }
        }
        // asyncio tests the argument's truth before iterating it: `writelines(None)`
        // does nothing.
        if !list_of_data.is_truthy()? {
            return Ok(());
        }
        let like_write = pyapi::behaviour(py)?.writelines_like_write;
        if like_write && this.note_write_after_loss(py)? {
            return Ok(());
        }
        let chunks: Vec<Bound<'_, PyAny>> = list_of_data.try_iter()?.collect::<PyResult<_>>()?;
        if chunks.is_empty() {
            return Ok(());
        }
        let was_empty = this.state().buffer.is_empty();
        for chunk in &chunks {
            let len = with_bytes(chunk, <[u8]>::len)?;
            if len == 0 && like_write {
                continue;
            }
            match chunk.cast::<PyBytes>() {
                Ok(b) => this.state().buffer.push_shared(b.clone().unbind(), len, 0),
                Err(_) => {
                    let data = with_bytes(chunk, <[u8]>::to_vec)?;
                    this.state().buffer.push_owned(&data);
                }
            }
        }
        if like_write && this.state().buffer.is_empty() {
            return Ok(());
        }
        this.write_ready(py)?;
        let pending = !this.state().buffer.is_empty();
        if pending && was_empty && this.state().conn_lost == 0 {
            this.set_write_context(py)?;
            Self::watch(slf, Direction::Write)?;
        }
        if pending && like_write {
            this.maybe_pause_protocol(py)?;
        }
        Ok(())
    }

    /// `_write_send` / `_write_sendmsg`: flush what the kernel takes now.
    pub(super) fn write_ready(&self, py: Python<'_>) -> PyResult<()> {
        let flushed = {
            let mut st = self.state();
            if st.buffer.is_empty() || st.conn_lost > 0 {
                return Ok(());
            }
            match st.buffer.flush(py, self.fd) {
                Err(err) if would_block(&err) => return Ok(()),
                Err(err) => {
                    st.buffer.clear();
                    Err(err)
                }
                Ok(_) => Ok(()),
            }
        };
        if let Err(err) = flushed {
            self.unwatch(py, Direction::Write)?;
            let exc = os_error(err);
            let waiter = self.state().empty_waiter.as_ref().map(|w| w.clone_ref(py));
            self.fatal_error(py, exc.clone_ref(py), messages::FATAL_WRITE)?;
            if let Some(waiter) = waiter {
                waiter.call_method1(py, "set_exception", (exc.into_value(py),))?;
            }
            return Ok(());
        }
        self.maybe_resume_protocol(py)?;
        let (emptied, waiter, closing, eof) = {
            let st = self.state();
            (
                st.buffer.is_empty(),
                st.empty_waiter.as_ref().map(|w| w.clone_ref(py)),
                st.closing,
                st.eof,
            )
        };
        if !emptied {
            return Ok(());
        }
        self.unwatch(py, Direction::Write)?;
        if let Some(waiter) = waiter {
            waiter.call_method1(py, intern!(py, "set_result"), (py.None(),))?;
        }
        if closing && self.flushed_close_completes(py)? {
            self.call_connection_lost(py, &py.None().into_bound(py))?;
        } else if eof {
            sys::shutdown_write(self.fd).map_err(os_error)?;
        }
        Ok(())
    }

    /// Queues what the kernel did not take and arms the writer.
    fn buffer_rest(
        slf: &Bound<'_, Self>,
        data: &Bound<'_, PyAny>,
        len: usize,
        sent: usize,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if this.state().buffer.is_empty() {
            this.set_write_context(py)?;
            Self::watch(slf, Direction::Write)?;
        }
        this.push_data(data, len, sent)?;
        this.maybe_pause_protocol(py)
    }

    /// The context asyncio's writer Handle would run in: a copy of the current one, taken
    /// at the write that arms the writer.
    fn set_write_context(&self, py: Python<'_>) -> PyResult<()> {
        let context = self.step_context(py)?;
        let old = self.state().write_context.replace(context);
        drop(old);
        Ok(())
    }

    /// Buffers `data[sent..]`: bytes by reference, any other buffer copied.
    fn push_data(&self, data: &Bound<'_, PyAny>, len: usize, sent: usize) -> PyResult<()> {
        match data.cast::<PyBytes>() {
            Ok(b) => self
                .state()
                .buffer
                .push_shared(b.clone().unbind(), len, sent),
            Err(_) => {
                let rest = with_bytes(data, |bytes| bytes[sent..].to_vec())?;
                self.state().buffer.push_owned(&rest);
            }
        }
        Ok(())
    }

    /// What a write does once the connection is lost: counts it, warning from
    /// `LOG_THRESHOLD_FOR_CONNLOST_WRITES` on; whether it was lost.
    fn note_write_after_loss(&self, py: Python<'_>) -> PyResult<bool> {
        let warn = {
            let mut st = self.state();
            if st.conn_lost == 0 {
                return Ok(false);
            }
            st.conn_lost += 1;
            st.conn_lost > LOG_THRESHOLD_FOR_CONNLOST_WRITES
        };
        if warn {
            pyapi::transport_logger(py)?.call_method1("warning", (messages::SEND_RAISED,))?;
        }
        Ok(true)
    }
}
