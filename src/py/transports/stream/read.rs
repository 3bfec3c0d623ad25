//! Reading: `_read_ready` and what it calls, as `selector_events.py` writes them.

use pyo3::intern;
use pyo3::prelude::*;

use super::{would_block, Callee, Receiver, StreamTransport};
use crate::constants::MAX_READ;
use crate::py::errors::os_error;
use crate::py::messages;
use crate::py::transports::bytes::{recv_bytes, with_writable};
use crate::runtime::io_registry::Direction;
use crate::runtime::sys;

impl StreamTransport {
    /// `_read_ready`: one read, handed to the protocol.
    pub(super) fn read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let receiver = {
            let st = this.state();
            if st.conn_lost > 0 {
                return Ok(());
            }
            st.protocol.as_ref().map(|p| (p.clone_ref(py), st.receiver))
        };
        Self::receive(slf, receiver)
    }

    /// Reads once and hands the data to `protocol` the way it takes it.
    pub(super) fn receive(
        slf: &Bound<'_, Self>,
        receiver: Option<(Py<PyAny>, Receiver)>,
    ) -> PyResult<()> {
        let py = slf.py();
        match receiver {
            Some((protocol, Receiver::Buffered)) => {
                Self::read_into_protocol(slf, protocol.bind(py))
            }
            Some((protocol, Receiver::Data)) => Self::read_data(slf, protocol.bind(py)),
            None => Ok(()),
        }
    }

    /// `_read_ready__data_received`.
    fn read_data(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let (py, this) = (slf.py(), slf.get());
        let read = recv_bytes(py, this.fd, MAX_READ);
        let data = match read {
            Err(err) if would_block(&err) => return Ok(()),
            Err(err) => return this.fatal_error(py, os_error(err), messages::FATAL_READ),
            Ok(data) => data,
        };
        if data.as_bytes().is_empty() {
            return Self::read_eof(slf);
        }
        let result = protocol.call_method1(intern!(py, "data_received"), (data,));
        this.protocol_outcome(py, result, messages::DATA_RECEIVED_FAILED)
            .map(drop)
    }

    /// `_read_ready__get_buffer`.
    fn read_into_protocol(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let (py, this) = (slf.py(), slf.get());
        let buf = protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|buf| {
                if buf.len()? == 0 {
                    Err(messages::empty_buffer())
                } else {
                    Ok(buf)
                }
            });
        let Some(buf) = this.protocol_outcome(py, buf, messages::GET_BUFFER_FAILED)? else {
            return Ok(());
        };
        let nbytes = match with_writable(&buf, |bytes| sys::recv(this.fd, bytes)) {
            Err(err) => return this.fatal_error(py, err, messages::FATAL_READ),
            Ok(Err(err)) if would_block(&err) => return Ok(()),
            Ok(Err(err)) => return this.fatal_error(py, os_error(err), messages::FATAL_READ),
            Ok(Ok(n)) => n,
        };
        if nbytes == 0 {
            return Self::read_eof(slf);
        }
        let result = protocol.call_method1(intern!(py, "buffer_updated"), (nbytes,));
        this.protocol_outcome(py, result, messages::BUFFER_UPDATED_FAILED)
            .map(drop)
    }

    /// `_read_ready__on_eof`.
    fn read_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let (py, this) = (slf.py(), slf.get());
        this.debug_log(py, messages::RECEIVED_EOF)?;
        let Some(Callee { protocol, .. }) = this.callee(py) else {
            return Ok(());
        };
        let keep_open = protocol
            .call_method0(py, intern!(py, "eof_received"))
            .and_then(|k| k.is_truthy(py));
        match this.protocol_outcome(py, keep_open, messages::EOF_RECEIVED_FAILED)? {
            // Keep the connection open so the protocol can still write, but stop reading.
            Some(true) => this.unwatch(py, Direction::Read),
            Some(false) => Self::close_transport(slf),
            None => Ok(()),
        }
    }

    /// `_SelectorTransport._add_reader`: reads only while not closing and not paused.
    pub(super) fn start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::start_reading_in(slf, slf.get().step_context(slf.py())?)
    }

    /// `start_reading`, with the context the reader's callbacks run in.
    pub(super) fn start_reading_in(slf: &Bound<'_, Self>, context: Py<PyAny>) -> PyResult<()> {
        {
            let st = slf.get().state();
            if st.closing || st.paused {
                return Ok(());
            }
        }
        let old = slf.get().state().read_context.replace(context);
        drop(old);
        Self::watch(slf, Direction::Read)
    }
}
