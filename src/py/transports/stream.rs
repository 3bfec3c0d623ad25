//! The native half of a TCP or Unix stream transport: the state and the hot paths of
//! CPython's `_SelectorSocketTransport`, in Rust.
//!
//! The loop calls `run_event` when the fd is ready; reading goes through one reusable buffer
//! into an exact-size `bytes` for `data_received` (or straight into the protocol's buffer
//! for a BufferedProtocol), and `write` tries the socket before buffering anything. The
//! transport owns the fd (or the socket object that owns it) and closes it in
//! `_call_connection_lost`. The Python half (`ferroloop._transports.SocketTransport`, an
//! `asyncio.Transport`) does what is rare: set-up, `_fatal_error`, repr and finalization.
//! Each behaviour follows `selector_events.py` line by line; the comments name the CPython
//! method a function mirrors.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyInt, PyMemoryView, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::buffer::WriteBuffer;
use super::lifecycle::Step;
use crate::constants::{DEFAULT_HIGH_WATER, LOG_THRESHOLD_FOR_CONNLOST_WRITES, MAX_READ};
use crate::py::errors::{os_error, shield};
use crate::py::event_loop::{lock, LoopCore};
use crate::py::gil_cell::GilCell;
use crate::py::handles::{self, copy_current_context, in_context, Handle};
use crate::py::io::{Direction, WatchId};
use crate::py::pyapi;
use crate::runtime::sys;

/// The read buffer's alignment.
const PAGE: usize = 4096;

thread_local! {
    /// The read buffer: one per thread, so one per loop. Reads copy out of it into the
    /// `bytes` they hand over before any Python code runs.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How the protocol takes data, decided when it is set, as asyncio decides it. Its methods
/// are looked up at each call, as asyncio's transport looks them up: a protocol may
/// replace them, or a test patch them, while connected.
#[derive(Clone, Copy)]
enum Receiver {
    Data,
    Buffered,
}

/// What holds the transport's fd.
enum Endpoint {
    /// A bare fd still its caller's, until set-up succeeds (`_schedule_connection_made`):
    /// a transport that fails to set up leaves the caller to close it.
    Lent,
    /// A bare fd the transport owns and closes; its socket object is made if asked for.
    Fd,
    /// The socket object, which owns the fd: the transport closes it.
    Socket(Py<PyAny>),
    Closed,
}

struct State {
    endpoint: Endpoint,
    protocol: Option<Py<PyAny>>,
    protocol_connected: bool,
    receiver: Receiver,
    /// The Python half, until connection_lost has run.
    shell: Option<Py<PyAny>>,
    /// The contexts asyncio's reader and writer Handles would run in.
    read_context: Option<Py<PyAny>>,
    write_context: Option<Py<PyAny>>,
    buffer: WriteBuffer,
    conn_lost: u64,
    /// The registration through which the loop watches the fd for reading / writing,
    /// if it does: an event counts only if it came through the current one.
    reading: Option<WatchId>,
    writing: Option<WatchId>,
    /// How many registrations there have been, to number the next.
    watches: u32,
    closing: bool,
    paused: bool,
    eof: bool,
    protocol_paused: bool,
    high_water: usize,
    low_water: usize,
    /// `(low, high)` as `set_write_buffer_limits` was given them (a float, say), which
    /// `get_write_buffer_limits` returns as asyncio's does; the thresholds above are the
    /// integers the buffer's size is compared with to the same effect.
    limits: Option<Py<PyAny>>,
    empty_waiter: Option<Py<PyAny>>,
}

#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub struct StreamTransport {
    state: Mutex<State>,
    /// The context every callback of the transport runs in, when it was given one (3.15's
    /// transports take their server's, or their `create_connection` caller's); without
    /// one, each callback runs in a copy of the context current when it was scheduled,
    /// as `call_soon` and asyncio's reader and writer Handles make them. Set once; outside
    /// `state`, so that reading it takes no lock.
    context: GilCell<Option<Py<PyAny>>>,
    loop_: Py<LoopCore>,
    fd: RawFd,
    /// (family, type, proto) of a transport made on a bare fd: its socket object's kind.
    sock_args: Option<Py<PyAny>>,
}

/// Everything a protocol callback needs, taken from the state so no lock is held while
/// Python runs.
struct Callee {
    shell: Py<PyAny>,
    protocol: Py<PyAny>,
}

/// The rest of `_call_connection_lost`'s `finally`: the Python half lets go of the loop
/// and of its server, which learns that one connection fewer is open.
fn release_shell(shell: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = shell.py();
    shell.setattr(intern!(py, "_loop"), py.None())?;
    let server = shell.getattr(intern!(py, "_server"))?;
    if !server.is_none() {
        pyapi::server_detach(&server, shell, false)?;
        shell.setattr(intern!(py, "_server"), py.None())?;
    }
    Ok(())
}

fn receiver_for(protocol: &Bound<'_, PyAny>) -> PyResult<Receiver> {
    Ok(
        if protocol.is_instance(&pyapi::buffered_protocol_type(protocol.py())?)? {
            Receiver::Buffered
        } else {
            Receiver::Data
        },
    )
}

/// Calls `f` with the address and length of `obj`'s buffer, exported with `flags` and
/// released afterwards.
fn with_buffer<R>(
    obj: &Bound<'_, PyAny>,
    flags: std::os::raw::c_int,
    f: impl FnOnce(*mut u8, usize) -> R,
) -> PyResult<R> {
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: `view` is writable storage for a Py_buffer; on success it is released below.
    if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) } < 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    // SAFETY: PyObject_GetBuffer succeeded, so `view` is initialised.
    let mut view = unsafe { view.assume_init() };
    let result = f(
        view.buf.cast::<u8>(),
        usize::try_from(view.len).unwrap_or(0),
    );
    // SAFETY: `view` was filled by PyObject_GetBuffer and is released exactly once.
    unsafe { ffi::PyBuffer_Release(&mut view) };
    Ok(result)
}

/// Calls `f` with the bytes of a bytes-like object (any buffer, as `socket.send` takes).
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    with_buffer(data, ffi::PyBUF_SIMPLE, |ptr, len| {
        if len == 0 {
            f(&[])
        } else {
            // SAFETY: a PyBUF_SIMPLE export is `len` contiguous bytes at `ptr`, valid
            // until `with_buffer` releases it after `f` returns.
            f(unsafe { std::slice::from_raw_parts(ptr, len) })
        }
    })
}

/// Calls `f` with the writable bytes of the protocol's buffer (`socket.recv_into`).
fn with_writable<R>(buf: &Bound<'_, PyAny>, f: impl FnOnce(&mut [u8]) -> R) -> PyResult<R> {
    with_buffer(buf, ffi::PyBUF_WRITABLE, |ptr, len| {
        if len == 0 {
            f(&mut [])
        } else {
            // SAFETY: a PyBUF_WRITABLE export is `len` contiguous writable bytes at `ptr`,
            // ours alone until `with_buffer` releases it after `f` returns.
            f(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
        }
    })
}

fn would_block(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

impl StreamTransport {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn loop_core(&self) -> &LoopCore {
        self.loop_.get()
    }

    pub(super) fn loop_any<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.loop_.bind(py).clone().into_any()
    }

    fn debug(&self) -> bool {
        self.loop_core().debug()
    }

    /// The context a callback scheduled now runs in: the transport's own, if it has one,
    /// else a copy of the current one.
    fn step_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let own = self
            .context
            .borrow_mut(py)
            .as_ref()
            .map(|c| c.clone_ref(py));
        own.map_or_else(|| copy_current_context(py), Ok)
    }

    fn callee(&self, py: Python<'_>) -> Option<Callee> {
        let st = self.state();
        Some(Callee {
            shell: st.shell.as_ref()?.clone_ref(py),
            protocol: st.protocol.as_ref()?.clone_ref(py),
        })
    }

    fn watching(st: &mut State, direction: Direction) -> &mut Option<WatchId> {
        match direction {
            Direction::Read => &mut st.reading,
            Direction::Write => &mut st.writing,
        }
    }

    fn watch(slf: &Bound<'_, Self>, direction: Direction) -> PyResult<()> {
        let this = slf.get();
        let id = {
            let mut st = this.state();
            st.watches = st.watches.wrapping_add(1);
            WatchId(st.watches)
        };
        this.loop_core()
            .watch_transport(slf, this.fd, direction, id)?;
        *Self::watching(&mut this.state(), direction) = Some(id);
        Ok(())
    }

    fn unwatch(&self, py: Python<'_>, direction: Direction) -> PyResult<()> {
        *Self::watching(&mut self.state(), direction) = None;
        self.loop_core().unwatch(py, self.fd, direction)
    }

    fn debug_log(&self, py: Python<'_>, message: &str) -> PyResult<()> {
        if self.debug() {
            if let Some(shell) = self.state().shell.as_ref().map(|s| s.clone_ref(py)) {
                pyapi::transport_logger(py)?.call_method1("debug", (message, shell))?;
            }
        }
        Ok(())
    }

    /// `_fatal_error`, on the Python half: logs or reports, then force-closes.
    fn fatal_error(&self, py: Python<'_>, err: PyErr, message: &str) -> PyResult<()> {
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
    fn protocol_outcome<T>(
        &self,
        py: Python<'_>,
        result: PyResult<T>,
        message: &str,
    ) -> PyResult<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(err) if handles::is_exit(py, &err) => Err(err),
            Err(err) => self.fatal_error(py, err, message).map(|()| None),
        }
    }

    /// `_read_ready`: one read, handed to the protocol.
    fn read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let receiver = {
            let st = this.state();
            if st.conn_lost > 0 {
                return Ok(());
            }
            st.protocol.as_ref().map(|p| (p.clone_ref(py), st.receiver))
        };
        this.receive(py, receiver)
    }

    /// Reads once and hands the data to `protocol` the way it takes it.
    fn receive(&self, py: Python<'_>, receiver: Option<(Py<PyAny>, Receiver)>) -> PyResult<()> {
        match receiver {
            Some((protocol, Receiver::Buffered)) => self.read_into_protocol(py, protocol.bind(py)),
            Some((protocol, Receiver::Data)) => self.read_data(py, protocol.bind(py)),
            None => Ok(()),
        }
    }

    /// `_read_ready__data_received`.
    fn read_data(&self, py: Python<'_>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let read = READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                if buf.len() < MAX_READ + PAGE {
                    buf.resize(MAX_READ + PAGE, 0);
                }
                // The kernel's copy into a page-aligned buffer runs several times faster
                // than into malloc's 16-byte alignment (measured: 100 KiB echo, 2x rps).
                let start = buf.as_ptr().align_offset(PAGE);
                let buf = &mut buf[start..start + MAX_READ];
                sys::recv(self.fd, buf).map(|n| PyBytes::new(py, &buf[..n]))
            }
            // Only a nested read could hold it; give it a buffer of its own.
            Err(_) => {
                let mut buf = vec![0u8; MAX_READ];
                sys::recv(self.fd, &mut buf).map(|n| PyBytes::new(py, &buf[..n]))
            }
        });
        let data = match read {
            Err(err) if would_block(&err) => return Ok(()),
            Err(err) => {
                return self.fatal_error(py, os_error(err), "Fatal read error on socket transport")
            }
            Ok(data) => data,
        };
        if data.as_bytes().is_empty() {
            return self.read_eof(py);
        }
        let result = protocol.call_method1(intern!(py, "data_received"), (data,));
        self.protocol_outcome(
            py,
            result,
            "Fatal error: protocol.data_received() call failed.",
        )
        .map(drop)
    }

    /// `_read_ready__get_buffer`.
    fn read_into_protocol(&self, py: Python<'_>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        const GET_BUFFER_FAILED: &str = "Fatal error: protocol.get_buffer() call failed.";
        let buf = protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|buf| {
                if buf.len()? == 0 {
                    Err(PyRuntimeError::new_err(
                        "get_buffer() returned an empty buffer",
                    ))
                } else {
                    Ok(buf)
                }
            });
        let Some(buf) = self.protocol_outcome(py, buf, GET_BUFFER_FAILED)? else {
            return Ok(());
        };
        let nbytes = match with_writable(&buf, |bytes| sys::recv(self.fd, bytes)) {
            Err(err) => return self.fatal_error(py, err, "Fatal read error on socket transport"),
            Ok(Err(err)) if would_block(&err) => return Ok(()),
            Ok(Err(err)) => {
                return self.fatal_error(py, os_error(err), "Fatal read error on socket transport")
            }
            Ok(Ok(n)) => n,
        };
        if nbytes == 0 {
            return self.read_eof(py);
        }
        let result = protocol.call_method1(intern!(py, "buffer_updated"), (nbytes,));
        self.protocol_outcome(
            py,
            result,
            "Fatal error: protocol.buffer_updated() call failed.",
        )
        .map(drop)
    }

    /// `_read_ready__on_eof`.
    fn read_eof(&self, py: Python<'_>) -> PyResult<()> {
        self.debug_log(py, "%r received EOF")?;
        let Some(Callee { protocol, .. }) = self.callee(py) else {
            return Ok(());
        };
        let keep_open = protocol
            .call_method0(py, intern!(py, "eof_received"))
            .and_then(|k| k.is_truthy(py));
        match self.protocol_outcome(
            py,
            keep_open,
            "Fatal error: protocol.eof_received() call failed.",
        )? {
            // Keep the connection open so the protocol can still write, but stop reading.
            Some(true) => self.unwatch(py, Direction::Read),
            Some(false) => self.close_transport(py),
            None => Ok(()),
        }
    }

    /// `_write_send` / `_write_sendmsg`: flush what the kernel takes now.
    fn write_ready(&self, py: Python<'_>) -> PyResult<()> {
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
            self.fatal_error(
                py,
                exc.clone_ref(py),
                "Fatal write error on socket transport",
            )?;
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

    /// `_FlowControlMixin._maybe_pause_protocol`.
    fn maybe_pause_protocol(&self, py: Python<'_>) -> PyResult<()> {
        {
            let mut st = self.state();
            if st.buffer.len() <= st.high_water || st.protocol_paused {
                return Ok(());
            }
            st.protocol_paused = true;
        }
        self.call_flow_control(py, "pause_writing")
    }

    /// `_FlowControlMixin._maybe_resume_protocol`.
    fn maybe_resume_protocol(&self, py: Python<'_>) -> PyResult<()> {
        {
            let mut st = self.state();
            if !(st.protocol_paused && st.buffer.len() <= st.low_water) {
                return Ok(());
            }
            st.protocol_paused = false;
        }
        self.call_flow_control(py, "resume_writing")
    }

    fn call_flow_control(&self, py: Python<'_>, method: &str) -> PyResult<()> {
        let Some(Callee { shell, protocol }) = self.callee(py) else {
            return Ok(());
        };
        match protocol.call_method0(py, method) {
            Ok(_) => Ok(()),
            Err(err) if handles::is_exit(py, &err) => Err(err),
            Err(err) => {
                let context = PyDict::new(py);
                context.set_item("message", format!("protocol.{method}() failed"))?;
                context.set_item("exception", err.value(py))?;
                context.set_item("transport", shell)?;
                context.set_item("protocol", protocol)?;
                self.loop_
                    .call_method1(py, "call_exception_handler", (context,))
                    .map(drop)
            }
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
            release_shell(shell.bind(py))?;
        }
        told?;
        if let Some(waiter) = waiter {
            let err = PyConnectionError::new_err("Connection is closed by peer");
            waiter.call_method1(py, intern!(py, "set_exception"), (err,))?;
        }
        Ok(())
    }

    /// `call_soon(futures._set_result_unless_cancelled, waiter, result)`, queued as a step.
    pub(crate) fn wake_soon(
        slf: &Bound<'_, Self>,
        waiter: &Bound<'_, PyAny>,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let step = Step::Wake {
            waiter: waiter.clone().unbind(),
            result: result.clone().unbind(),
            context: slf.get().step_context(py)?,
        };
        slf.get()
            .loop_core()
            .queue_step(py, slf.clone().unbind(), step)
    }

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

    /// Schedules `_call_connection_lost(exc)`, in a copy of the current context as
    /// `call_soon` would.
    fn schedule_connection_lost(&self, py: Python<'_>, exc: Py<PyAny>) -> PyResult<()> {
        let shell = self.state().shell.as_ref().map(|s| s.clone_ref(py));
        if let Some(shell) = shell {
            // The Python half's `_core` is this object, which a `&self` cannot name.
            let this = shell
                .bind(py)
                .getattr(intern!(py, "_core"))?
                .cast_into::<StreamTransport>()?
                .unbind();
            let context = self.step_context(py)?;
            self.loop_core()
                .queue_step(py, this, Step::Lost { exc, context })?;
        }
        Ok(())
    }

    /// `_SelectorTransport.close`.
    fn close_transport(&self, py: Python<'_>) -> PyResult<()> {
        let flushed = {
            let mut st = self.state();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
            if st.buffer.is_empty() {
                st.conn_lost += 1;
            }
            st.buffer.is_empty()
        };
        self.unwatch(py, Direction::Read)?;
        if flushed {
            self.unwatch(py, Direction::Write)?;
            self.schedule_connection_lost(py, py.None())?;
        }
        Ok(())
    }

    /// `_SelectorTransport._force_close`.
    fn force_close(&self, py: Python<'_>, exc: Py<PyAny>) -> PyResult<()> {
        if self.state().conn_lost > 0 {
            return Ok(());
        }
        let (had_buffer, was_closing) = {
            let mut st = self.state();
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
            self.unwatch(py, Direction::Write)?;
        }
        if !was_closing {
            self.unwatch(py, Direction::Read)?;
        }
        self.schedule_connection_lost(py, exc)
    }

    /// `_SelectorTransport._add_reader`: reads only while not closing and not paused.
    fn start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
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

    /// Whether a `close()` whose buffer has just drained calls `connection_lost` now:
    /// always before 3.14; from 3.14 only if the connection is not lost already, and then
    /// it counts as lost (gh-156512: never twice).
    fn flushed_close_completes(&self, py: Python<'_>) -> PyResult<bool> {
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
            pyapi::transport_logger(py)?
                .call_method1("warning", ("socket.send() raised exception.",))?;
        }
        Ok(true)
    }

    fn is_reading_state(st: &State) -> bool {
        !st.closing && !st.paused
    }
}

/// The integer a buffer size is compared with in place of a validated (non-negative)
/// limit: its floor, capped, so `size > limit` and `size <= limit` come out as asyncio's
/// comparisons with the limit itself do (a float, an int past any size, infinity).
fn threshold(limit: &Bound<'_, PyAny>) -> PyResult<usize> {
    if let Ok(n) = limit.extract::<usize>() {
        return Ok(n);
    }
    if limit.is_instance_of::<PyInt>() {
        return Ok(usize::MAX);
    }
    let x: f64 = limit.extract()?;
    // `as` saturates: infinity and anything past usize::MAX become usize::MAX.
    Ok(x.floor() as usize)
}

/// Whether an event queued for the transport still counts: one that came through a
/// registration since removed is dropped, as asyncio's loop drops a cancelled Handle.
pub(crate) fn is_watching(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    id: WatchId,
) -> bool {
    let mut st = transport.get().state();
    *StreamTransport::watching(&mut st, direction) == Some(id)
}

/// The loop's entry point for a ready fd: runs the transport's reader or writer inside the
/// context asyncio's Handle for it would have had. Everything it needs from the state is
/// taken under one lock; the result says whether the event still counted (`is_watching`).
pub(crate) fn run_event(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    id: WatchId,
) -> PyResult<bool> {
    let py = transport.py();
    let this = transport.get();
    let (context, receiver) = {
        let mut st = this.state();
        if *StreamTransport::watching(&mut st, direction) != Some(id) {
            return Ok(false);
        }
        match direction {
            Direction::Read if st.conn_lost > 0 => return Ok(true),
            Direction::Read => (
                st.read_context.as_ref().map(|c| c.clone_ref(py)),
                st.protocol.as_ref().map(|p| (p.clone_ref(py), st.receiver)),
            ),
            Direction::Write => (st.write_context.as_ref().map(|c| c.clone_ref(py)), None),
        }
    };
    let body = || match direction {
        Direction::Read => this.receive(py, receiver),
        Direction::Write => this.write_ready(py),
    };
    let result = match context {
        Some(ctx) => in_context(ctx.bind(py), body),
        None => body(),
    };
    match result {
        Err(err) if !handles::is_exit(py, &err) => report_error(transport, direction, err),
        other => other,
    }
    .map(|()| true)
}

/// An exception escaping the transport's own code (a failing `_fatal_error`, say) reaches
/// the exception handler as one escaping asyncio's reader Handle would.
fn report_error(
    transport: &Bound<'_, StreamTransport>,
    direction: Direction,
    err: PyErr,
) -> PyResult<()> {
    let py = transport.py();
    let handle = event_handle(transport, direction)?;
    let context = PyDict::new(py);
    context.set_item(
        "message",
        format!("Exception in callback {}", handle.repr()?),
    )?;
    context.set_item("exception", err.value(py))?;
    context.set_item("handle", handle)?;
    transport
        .get()
        .loop_
        .call_method1(py, "call_exception_handler", (context,))
        .map(drop)
}

/// The Handle asyncio's loop would hold for this event: `_read_ready` or `_write_ready` in
/// the registration's context. Debug mode runs events through it.
pub(crate) fn event_handle<'py>(
    transport: &Bound<'py, StreamTransport>,
    direction: Direction,
) -> PyResult<Bound<'py, Handle>> {
    let py = transport.py();
    let (name, context) = {
        let st = transport.get().state();
        match direction {
            Direction::Read => (
                "_read_ready",
                st.read_context.as_ref().map(|c| c.clone_ref(py)),
            ),
            Direction::Write => (
                "_write_ready",
                st.write_context.as_ref().map(|c| c.clone_ref(py)),
            ),
        }
    };
    let callback = transport.getattr(name)?;
    let loop_ = transport.get().loop_any(py);
    let handle = Handle::create(
        callback,
        PyTuple::empty(py),
        context.map(|c| c.into_bound(py)),
        &loop_,
        false,
    )?;
    Bound::new(py, handle)
}

impl Drop for StreamTransport {
    fn drop(&mut self) {
        // A bare fd still owned here was never closed by the Python half (whose __del__
        // closes it with a ResourceWarning): close it rather than leak it.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(state.endpoint, Endpoint::Fd) {
            sys::close(self.fd);
        }
    }
}

#[pymethods]
impl StreamTransport {
    /// The native half of `shell` on `fd`. `sock` is the socket object that owns the fd;
    /// without one, `sock_args` gives the kind of socket the bare fd is, and the transport
    /// takes the fd over once set up (`_schedule_connection_made`).
    #[new]
    #[pyo3(signature = (r#loop, fd, protocol, shell, sock=None, sock_args=None, context=None))]
    fn py_new(
        r#loop: &Bound<'_, PyAny>,
        fd: RawFd,
        protocol: &Bound<'_, PyAny>,
        shell: &Bound<'_, PyAny>,
        sock: Option<Bound<'_, PyAny>>,
        sock_args: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<StreamTransport> {
        shield(|| {
            let loop_ = r#loop
                .cast::<LoopCore>()
                .map_err(|_| PyTypeError::new_err("a ferroloop loop is required"))?
                .clone()
                .unbind();
            let endpoint = match (sock, &sock_args) {
                (Some(sock), _) => Endpoint::Socket(sock.unbind()),
                (None, Some(_)) => Endpoint::Lent,
                (None, None) => {
                    return Err(PyTypeError::new_err(
                        "a socket object or its kind is required",
                    ))
                }
            };
            Ok(StreamTransport {
                state: Mutex::new(State {
                    endpoint,
                    protocol: Some(protocol.clone().unbind()),
                    protocol_connected: true,
                    receiver: receiver_for(protocol)?,
                    shell: Some(shell.clone().unbind()),
                    read_context: None,
                    write_context: None,
                    buffer: WriteBuffer::default(),
                    conn_lost: 0,
                    reading: None,
                    writing: None,
                    watches: 0,
                    closing: false,
                    paused: false,
                    eof: false,
                    protocol_paused: false,
                    high_water: DEFAULT_HIGH_WATER,
                    low_water: DEFAULT_HIGH_WATER / 4,
                    limits: None,
                    empty_waiter: None,
                }),
                context: GilCell::new(context.filter(|c| !c.is_none()).map(Bound::unbind)),
                loop_,
                fd,
                sock_args: sock_args.map(Bound::unbind),
            })
        })
    }

    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        shield(|| {
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
                    return Err(PyRuntimeError::new_err(
                        "Cannot call write() after write_eof()",
                    ));
                }
                if st.empty_waiter.is_some() {
                    return Err(PyRuntimeError::new_err(
                        "unable to write; sendfile is in progress",
                    ));
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
                            return this.fatal_error(
                                py,
                                os_error(err),
                                "Fatal write error on socket transport",
                            );
                        }
                    }
                }
            };
            Self::buffer_rest(slf, data, len, sent)
        })
    }

    /// 3.12+'s `writelines`: everything goes into the buffer, then one flush. 3.14's also
    /// drops the data once the connection is lost (as `write` does), never buffers an
    /// empty chunk, and pauses the protocol past the high-water mark.
    fn _writelines_buffered(
        slf: &Bound<'_, Self>,
        list_of_data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            {
                let st = this.state();
                if st.eof {
                    return Err(PyRuntimeError::new_err(
                        "Cannot call writelines() after write_eof()",
                    ));
                }
                if st.empty_waiter.is_some() {
                    return Err(PyRuntimeError::new_err(
                        "unable to writelines; sendfile is in progress",
                    ));
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
            let chunks: Vec<Bound<'_, PyAny>> =
                list_of_data.try_iter()?.collect::<PyResult<_>>()?;
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
        })
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

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| self.close_transport(py))
    }

    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| self.force_close(py, py.None()))
    }

    fn _force_close(&self, py: Python<'_>, exc: Py<PyAny>) -> PyResult<()> {
        shield(|| self.force_close(py, exc))
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
            self.debug_log(py, "%r pauses reading")
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
            slf.get().debug_log(slf.py(), "%r resumes reading")
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
        shield(|| {
            let py = high.py();
            let (high_water, low_water) = (threshold(high)?, threshold(low)?);
            let limits = (low, high).into_pyobject(py)?.into_any().unbind();
            let old = {
                let mut st = self.state();
                st.high_water = high_water;
                st.low_water = low_water;
                st.limits.replace(limits)
            };
            drop(old);
            self.maybe_pause_protocol(py)
        })
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
                return Err(PyRuntimeError::new_err("Empty waiter is already set"));
            }
            let waiter = self.loop_.call_method0(py, "create_future")?;
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

    /// asyncio's transport `__init__` scheduling what follows it: the protocol's
    /// `connection_made`, then reading, then (given a waiter) waking the waiter; each in a
    /// copy of the current context, as `call_soon` would.
    #[pyo3(signature = (protocol, waiter=None))]
    fn _schedule_connection_made(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
        waiter: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        shield(|| {
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
            let loop_ = this.loop_core();
            loop_.queue_step(py, slf.clone().unbind(), made)?;
            let context = this.step_context(py)?;
            loop_.queue_step(py, slf.clone().unbind(), Step::StartReading { context })?;
            if let Some(waiter) = waiter {
                Self::wake_soon(slf, &waiter, &py.None().into_bound(py))?;
            }
            // Set up: a bare fd is the transport's from here on.
            let mut st = this.state();
            if matches!(st.endpoint, Endpoint::Lent) {
                st.endpoint = Endpoint::Fd;
            }
            Ok(())
        })
    }

    /// The socket object: the one given, or for a bare fd one made now, which owns the fd
    /// from then on; None once closed.
    #[getter]
    fn _sock(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        shield(|| {
            let existing = match &self.state().endpoint {
                Endpoint::Socket(sock) => Some(Some(sock.clone_ref(py))),
                Endpoint::Lent | Endpoint::Closed => Some(None),
                Endpoint::Fd => None,
            };
            if let Some(existing) = existing {
                return Ok(existing);
            }
            let args = self
                .sock_args
                .as_ref()
                .map(|a| a.bind(py).cast::<PyTuple>());
            let (family, sock_type, proto) = match args {
                Some(Ok(args)) => (args.get_item(0)?, args.get_item(1)?, args.get_item(2)?),
                _ => return Err(PyTypeError::new_err("the socket's kind is unknown")),
            };
            let sock = pyapi::socket_type(py)?
                .call1((family, sock_type, proto, self.fd))?
                .unbind();
            let mut st = self.state();
            if !matches!(st.endpoint, Endpoint::Fd) {
                // Another thread made one (or closed the transport) while socket.py's
                // Python code ran: the fd must never get two owners, so this one lets go
                // of it without closing.
                drop(st);
                sock.call_method0(py, intern!(py, "detach"))?;
                return self._sock(py);
            }
            st.endpoint = Endpoint::Socket(sock.clone_ref(py));
            Ok(Some(sock))
        })
    }

    /// Whether the transport still holds an open socket (closed by connection_lost).
    #[getter]
    pub(crate) fn _socket_open(&self) -> bool {
        !matches!(self.state().endpoint, Endpoint::Lent | Endpoint::Closed)
    }

    #[getter]
    fn _sock_args(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.sock_args.as_ref().map(|a| a.clone_ref(py))
    }

    /// Closes the socket (the bare fd, or the socket object that owns it), once.
    fn _close_socket(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| self.close_endpoint(py))
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
        visit.call(&self.loop_)?;
        visit.call(&self.sock_args)?;
        // SAFETY: called only as `__traverse__`, which try_borrow_in_traverse requires.
        if let Ok(context) = unsafe { self.context.try_borrow_in_traverse() } {
            visit.call(&*context)?;
        }
        if let Ok(st) = self.state.try_lock() {
            if let Endpoint::Socket(sock) = &st.endpoint {
                visit.call(sock)?;
            }
            visit.call(&st.protocol)?;
            visit.call(&st.shell)?;
            visit.call(&st.read_context)?;
            visit.call(&st.write_context)?;
            visit.call(&st.empty_waiter)?;
            visit.call(&st.limits)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = self.state.try_lock().ok().map(|mut st| {
            (
                st.protocol.take(),
                st.shell.take(),
                st.read_context.take(),
                st.write_context.take(),
                st.empty_waiter.take(),
                st.limits.take(),
            )
        });
        let context = Python::attach(|py| {
            self.context
                .try_borrow_mut(py)
                .ok()
                .and_then(|mut c| c.take())
        });
        // Released with no lock held: finalizers may run arbitrary code.
        drop((taken, context));
    }
}
