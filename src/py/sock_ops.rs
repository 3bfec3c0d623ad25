//! `sock_recv` and `sock_sendall` without asyncio's Python around each system call.
//!
//! asyncio's coroutines try the call; when it would block they make a future, register a
//! reader (or writer) Handle that retries it, and remove the registration in the future's
//! done callback, a pass after the wait is over. Here the same steps run natively, with
//! two differences no caller sees: a wait that its own callback ends removes its
//! registration at once (and the done callback, which would find nothing left to do), and
//! that registration lingers in epoll for the socket's next wait, which in a request and
//! reply exchange comes a pass later (`IoRegistry::release`).
//!
//! What the native path does not take (a socket subclass, which may override `recv`; a
//! socket with a timeout; data other than `bytes`; a size that is not an int, or is past
//! the loop's read buffer) answers
//! `NotImplemented`, before any system call, and `ferroloop.Loop` runs asyncio's own
//! coroutine, with its checks and its errors.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};

use super::errors::{os_error, shield};
use super::event_loop::LoopCore;
use super::gc::visit_all;
use super::handles::{is_exit, Handle};
use super::pyapi;
use super::transports::{recv_bytes, TransportRegistry};
use crate::constants::MAX_READ;
use crate::runtime::io_registry::Direction;
use crate::runtime::sys;

/// What a wait does when its fd is ready.
enum Op {
    /// `recv(len)`.
    Recv(usize),
    /// `send` of what is left of `data` after `sent` bytes.
    SendAll {
        data: Py<PyBytes>,
        sent: AtomicUsize,
    },
}

/// One `sock_*` call waiting for its socket: the reader or writer callback, and the
/// future's done callback.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct SockWait {
    loop_: Py<LoopCore>,
    sock: Py<PyAny>,
    fd: RawFd,
    fut: Py<PyAny>,
    op: Op,
    /// The registered Handle, set once registered.
    handle: OnceLock<Py<Handle>>,
}

/// `sock.recv(n)`, done: `bytes` now, a future to await, or `NotImplemented` (above).
#[pyfunction]
pub(crate) fn _sock_recv(
    r#loop: &Bound<'_, LoopCore>,
    sock: &Bound<'_, PyAny>,
    n: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    shield(|| {
        let py = r#loop.py();
        let len = match n.extract::<usize>() {
            Ok(len) if len <= MAX_READ => len,
            _ => return Ok(py.NotImplemented()),
        };
        let Some(fd) = plain_socket(sock)? else {
            return Ok(py.NotImplemented());
        };
        match retrying(py, || recv_bytes(py, fd, len))? {
            Some(data) => Ok(data.into_any().unbind()),
            None => wait(r#loop, sock, fd, Op::Recv(len)),
        }
    })
}

/// `sock.sendall(data)`, done: None once all is sent, a future to await, or
/// `NotImplemented` (above).
#[pyfunction]
pub(crate) fn _sock_sendall(
    r#loop: &Bound<'_, LoopCore>,
    sock: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    shield(|| {
        let py = r#loop.py();
        let (Ok(bytes), Some(fd)) = (data.cast_exact::<PyBytes>(), plain_socket(sock)?) else {
            return Ok(py.NotImplemented());
        };
        let sent = retrying(py, || sys::send(fd, bytes.as_bytes()))?.unwrap_or(0);
        if sent == bytes.as_bytes().len() {
            return Ok(py.None());
        }
        let op = Op::SendAll {
            data: bytes.clone().unbind(),
            sent: AtomicUsize::new(sent),
        };
        wait(r#loop, sock, fd, op)
    })
}

/// The fd of a socket the native path takes: a plain `socket.socket`, open and
/// non-blocking (asyncio's path waits inside a blocking one's call, or refuses it in
/// debug mode).
fn plain_socket(sock: &Bound<'_, PyAny>) -> PyResult<Option<RawFd>> {
    let py = sock.py();
    if !sock.get_type().is(&pyapi::socket_type(py)?) {
        return Ok(None);
    }
    let fd = match sock.call_method0(intern!(py, "fileno"))?.extract::<RawFd>() {
        Ok(fd) if fd >= 0 => fd,
        _ => return Ok(None),
    };
    let timeout = sock.call_method0(intern!(py, "gettimeout"))?;
    Ok(matches!(timeout.extract::<f64>(), Ok(t) if t == 0.0).then_some(fd))
}

/// A system call as the socket module makes it: retried after a signal (whose handler may
/// raise); None when it would block.
fn retrying<T>(py: Python<'_>, mut call: impl FnMut() -> io::Result<T>) -> PyResult<Option<T>> {
    loop {
        match call() {
            Ok(value) => return Ok(Some(value)),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => py.check_signals()?,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(err) => return Err(os_error(err)),
        }
    }
}

/// asyncio's wait: a future, the fd checked against transports, the reader or writer
/// registered, and the done callback that removes it if the wait ends otherwise.
fn wait(
    r#loop: &Bound<'_, LoopCore>,
    sock: &Bound<'_, PyAny>,
    fd: RawFd,
    op: Op,
) -> PyResult<Py<PyAny>> {
    let py = r#loop.py();
    let fut = r#loop.call_method0(intern!(py, "create_future"))?;
    let transports = r#loop.getattr(intern!(py, "_transports"))?;
    let free = match transports.cast::<TransportRegistry>() {
        Ok(registry) => registry.get().lookup(py, i64::from(fd)).is_none(),
        Err(_) => false,
    };
    if !free {
        // asyncio's check and its error; a closing transport lets the wait go on.
        r#loop.call_method1(intern!(py, "_ensure_fd_no_transport"), (fd,))?;
    }
    let direction = op.direction();
    let waiter = Bound::new(
        py,
        SockWait {
            loop_: r#loop.clone().unbind(),
            sock: sock.clone().unbind(),
            fd,
            fut: fut.clone().unbind(),
            op,
            handle: OnceLock::new(),
        },
    )?;
    let handle = LoopCore::add_sock_wait(r#loop, sock, fd, direction, waiter.clone().into_any())?;
    let _ = waiter.get().handle.set(handle);
    let done = waiter.getattr(intern!(py, "done"))?;
    fut.call_method1(intern!(py, "add_done_callback"), (done,))?;
    Ok(fut.unbind())
}

impl Op {
    fn direction(&self) -> Direction {
        match self {
            Op::Recv(_) => Direction::Read,
            Op::SendAll { .. } => Direction::Write,
        }
    }
}

#[pymethods]
impl SockWait {
    /// The reader or writer callback: asyncio's `_sock_recv` or `_sock_sendall`.
    fn __call__(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            if this
                .fut
                .bind(py)
                .call_method0(intern!(py, "done"))?
                .is_truthy()?
            {
                return Ok(()); // cancelled: the done callback removes the registration
            }
            let outcome = match &this.op {
                Op::Recv(len) => match retrying(py, || recv_bytes(py, this.fd, *len)) {
                    Ok(None) => return Ok(()),
                    Ok(Some(data)) => Ok(data.into_any()),
                    Err(err) => Err(err),
                },
                Op::SendAll { data, sent } => {
                    let data = data.bind(py).as_bytes();
                    let start = sent.load(Relaxed);
                    match retrying(py, || sys::send(this.fd, &data[start..])) {
                        Ok(None) => return Ok(()),
                        Ok(Some(n)) if start + n < data.len() => {
                            sent.store(start + n, Relaxed);
                            return Ok(());
                        }
                        Ok(Some(_)) => Ok(py.None().into_bound(py)),
                        Err(err) => Err(err),
                    }
                }
            };
            Self::finish(slf, outcome)
        })
    }

    /// The future's done callback, which matters only for a wait that did not end by its
    /// own callback (a cancelled one): asyncio's `_sock_read_done`/`_sock_write_done`.
    fn done(slf: &Bound<'_, Self>, _fut: &Bound<'_, PyAny>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            if this.handle.get().is_some_and(|h| h.get().is_cancelled()) {
                return Ok(()); // another reader or writer took the fd over
            }
            let remove = match this.op.direction() {
                Direction::Read => intern!(py, "remove_reader"),
                Direction::Write => intern!(py, "remove_writer"),
            };
            this.loop_
                .bind(py)
                .call_method1(remove, (this.fd,))
                .map(drop)
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit_all(&visit, &[&self.loop_, &self.sock, &self.fut])?;
        if let Op::SendAll { data, .. } = &self.op {
            visit.call(data)?;
        }
        visit.call(self.handle.get())
    }
}

impl SockWait {
    /// The wait is over: its registration goes now (lingering for the socket's next
    /// wait), its done callback with it, and the future gets the outcome.
    fn finish(slf: &Bound<'_, Self>, outcome: PyResult<Bound<'_, PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let outcome = match outcome {
            // asyncio lets these through, the wait still standing.
            Err(err) if is_exit(py, &err) => return Err(err),
            outcome => outcome,
        };
        let fut = this.fut.bind(py);
        this.loop_.get().release(py, this.fd, this.op.direction())?;
        let done = slf.getattr(intern!(py, "done"))?;
        fut.call_method1(intern!(py, "remove_done_callback"), (done,))?;
        match outcome {
            Ok(value) => fut.call_method1(intern!(py, "set_result"), (value,)),
            Err(err) => fut.call_method1(intern!(py, "set_exception"), (err.value(py),)),
        }
        .map(drop)
    }
}
