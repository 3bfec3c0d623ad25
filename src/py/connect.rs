//! Connecting without a socket object: the syscalls of `create_connection`'s short path.
//!
//! asyncio makes a `socket.socket` for every connection, which costs more to make and
//! close than the rest of the connection's set-up (callgrind), yet
//! a transport's socket object is rarely asked for. On the short path the transport owns the bare fd and makes the socket
//! object on first request (`SocketTransport._sock`); these functions are what
//! `socket.socket()`, `connect_ex()` and `getsockopt(SO_ERROR)` did there, natively.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::Mutex;

use pyo3::exceptions::{PyBlockingIOError, PyInterruptedError, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::context::copy_current_context;
use super::errors::{os_error, shield};
use super::event_loop::{links, LoopCore};
use super::gc::{visit_all, Visit};
use super::handles::is_exit;
use super::messages;
use super::pyapi;
use super::transports::OnFd;
use crate::runtime::io_registry::Direction;
use crate::runtime::sync::lock;
use crate::runtime::sys::{self, SockAddr};

/// A non-blocking stream socket of `family`/`proto`, connecting to `(host, port)`:
/// `(fd, errno)`, where errno is `connect_ex`'s result (0, or EINPROGRESS while the
/// connect goes on). The caller owns the fd. TCP sockets get TCP_NODELAY, as the transport
/// made on them would set it.
#[pyfunction]
pub(crate) fn _connect_stream(
    family: i32,
    proto: i32,
    host: &str,
    port: &Bound<'_, PyAny>,
) -> PyResult<(RawFd, i32)> {
    shield(|| {
        let fd = sys::stream_socket(family, proto).map_err(os_error)?;
        let started = start_connect(fd, family, proto, host, port);
        if started.is_err() {
            sys::close(fd);
        }
        Ok((fd, started?))
    })
}

fn start_connect(
    fd: RawFd,
    family: i32,
    proto: i32,
    host: &str,
    port: &Bound<'_, PyAny>,
) -> PyResult<i32> {
    // socket.connect()'s own check and message, for any int out of range: asyncio's path
    // raises it from there.
    let port: u16 = port.extract().map_err(|_| messages::port_out_of_range())?;
    let addr = SockAddr::inet(family, host, port).ok_or_else(messages::illegal_ip)?;
    if proto == libc::IPPROTO_TCP {
        sys::set_nodelay(fd).map_err(os_error)?;
    }
    Ok(match sys::connect(fd, &addr) {
        Ok(()) => 0,
        Err(err) => err.raw_os_error().unwrap_or(libc::EIO),
    })
}

/// The family of a numeric host, as asyncio's `_ipaddr_info` decides it (`inet_pton`,
/// IPv4 first, then IPv6); None for anything else (a name to resolve).
#[pyfunction]
pub(crate) fn _numeric_family(host: &str) -> Option<i32> {
    [libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find(|&family| SockAddr::inet(family, host, 0).is_some())
}

/// A connect in progress, and the writer callback that finishes it.
///
/// asyncio waits for the socket to connect (`sock_connect`), then resumes the caller to
/// make the protocol and transport, and waits again for `connection_made`. Here the writer
/// callback makes them as soon as the socket connects and wakes the caller once, with the
/// result: as many steps in the same order, one task wake-up fewer. What it made is kept,
/// so a cancelled caller closes it (`abandon`). Until a transport takes the fd over, the
/// connector owns it.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct Connector {
    loop_: Py<LoopCore>,
    /// The bare fd; -1 once a transport has it or it is closed.
    fd: AtomicI32,
    /// The socket's (family, type, proto), for the transport.
    kind: Py<PyAny>,
    /// The address, as asyncio's error message names it.
    address: Py<PyAny>,
    protocol_factory: Py<PyAny>,
    /// `make_transport(loop, fd, protocol, sock_args=kind[, context=...])`, for a loop
    /// whose `_make_socket_transport` is overridden; None makes a `SocketTransport`.
    make_transport: Option<Py<PyAny>>,
    fut: Py<PyAny>,
    transport: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl Connector {
    #[new]
    fn new(
        r#loop: Bound<'_, LoopCore>,
        fd: RawFd,
        kind: Bound<'_, PyAny>,
        address: Bound<'_, PyAny>,
        protocol_factory: Bound<'_, PyAny>,
        make_transport: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Connector> {
        shield(|| {
            let fut = r#loop.call_method0(intern!(r#loop.py(), "create_future"))?;
            Ok(Connector {
                loop_: r#loop.unbind(),
                fd: AtomicI32::new(fd),
                kind: kind.unbind(),
                address: address.unbind(),
                protocol_factory: protocol_factory.unbind(),
                make_transport: make_transport.map(Bound::unbind),
                fut: fut.unbind(),
                transport: Mutex::new(None),
            })
        })
    }

    /// What the caller awaits: `(transport, protocol)`.
    #[getter]
    fn fut(&self, py: Python<'_>) -> Py<PyAny> {
        self.fut.clone_ref(py)
    }

    /// The writer callback: asyncio's `_sock_connect_cb`, then what follows it.
    fn __call__(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            let fut = this.fut.bind(py);
            let fd = this.fd.load(Relaxed);
            if fd < 0 || fut.call_method0(intern!(py, "done"))?.is_truthy()? {
                // Cancelled, possibly on an earlier pass: the caller cleans up.
                return Ok(());
            }
            let failed = match sys::socket_error(fd) {
                Ok(0) => None,
                Ok(err) => {
                    let message = messages::connect_failed(this.address.bind(py));
                    Some(PyOSError::new_err((err, message)))
                }
                Err(err) => Some(os_error(err)),
            };
            if let Some(err) = failed {
                if err.is_instance_of::<PyBlockingIOError>(py)
                    || err.is_instance_of::<PyInterruptedError>(py)
                {
                    return Ok(()); // still connecting: the writer stays registered
                }
                this.loop_.get().unregister(py, fd, Direction::Write)?;
                return fut
                    .call_method1(intern!(py, "set_exception"), (err,))
                    .map(drop);
            }
            // The transport made next reads the fd.
            this.loop_.get().hand_over(py, fd)?;
            Self::start(slf)
        })
    }

    /// asyncio's `_create_connection_transport`, less the wait for `connection_made`: the
    /// result is set after it, as asyncio's waiter is.
    fn start(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            let fut = this.fut.bind(py);
            // 3.15's transport runs its callbacks in a copy of the context current before
            // the protocol factory runs.
            let context = if pyapi::behaviour(py)?.transport_contexts {
                Some(copy_current_context(py)?)
            } else {
                None
            };
            let context_kept = context.as_ref().map(|c| c.clone_ref(py));
            let made = this.protocol_factory.bind(py).call0().and_then(|protocol| {
                let (loop_, fd) = (this.loop_.bind(py), this.fd.load(Relaxed));
                let Some(make_transport) = &this.make_transport else {
                    let on = OnFd {
                        fd,
                        protocol: &protocol,
                        extra: None,
                        server: None,
                        sockname: None,
                        sock_args: this.kind.bind(py),
                        context: context.map(|c| c.into_bound(py)),
                    };
                    return Ok((links::socket_transport(loop_, on)?, protocol));
                };
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "sock_args"), this.kind.bind(py))?;
                if let Some(context) = context {
                    kwargs.set_item(intern!(py, "context"), context)?;
                }
                let transport = make_transport
                    .bind(py)
                    .call((loop_, fd, &protocol), Some(&kwargs))?;
                Ok((transport, protocol))
            });
            let (transport, protocol) = match made {
                Ok(made) => made,
                Err(err) if is_exit(py, &err) => return Err(err),
                Err(err) => {
                    return fut
                        .call_method1(intern!(py, "set_exception"), (err.value(py),))
                        .map(drop)
                }
            };
            this.fd.store(-1, Relaxed); // the transport's now
            *lock(&this.transport) = Some(transport.clone().unbind());
            let result = PyTuple::new(py, [&transport, &protocol])?;
            // The caller wakes in the context the transport's own steps run in.
            let context = match context_kept {
                Some(context) => context,
                None => copy_current_context(py)?,
            };
            this.loop_.get().push_wake(
                py,
                fut.clone().unbind(),
                result.into_any().unbind(),
                context,
            )
        })
    }

    /// The caller gave up (cancelled, or failed): close what exists.
    fn abandon(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            let transport = lock(&this.transport).take();
            if let Some(transport) = transport {
                return transport.call_method0(py, intern!(py, "close")).map(drop);
            }
            let fd = this.fd.swap(-1, Relaxed);
            if fd >= 0 {
                this.loop_.get().unregister(py, fd, Direction::Write)?;
                sys::close(fd);
            }
            Ok(())
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit_all(
            &visit,
            &[
                &self.loop_,
                &self.kind,
                &self.address,
                &self.protocol_factory,
                &self.make_transport,
                &self.fut,
            ],
        )?;
        if let Ok(transport) = self.transport.try_lock() {
            transport.visit_with(&visit)?;
        }
        Ok(())
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // Never handed over nor abandoned (the caller's frame vanished): close it rather
        // than leak it.
        let fd = *self.fd.get_mut();
        if fd >= 0 {
            sys::close(fd);
        }
    }
}
