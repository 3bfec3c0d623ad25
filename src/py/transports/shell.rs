//! `SocketTransport`, the Python half of a stream transport, set up natively on a
//! connection the loop connected or accepted itself: a bare fd, whose socket object is
//! made only if asked for (`SocketTransport._sock`).
//!
//! Written as the class's `__init__`, set-up ran a Python frame twice per connection
//! (client and server), as much interpreted code as the rest of the connection's set-up
//! (callgrind). A transport given a socket object still runs `__init__`.

use std::os::fd::RawFd;

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use super::finalizer;
use super::stream::{StreamTransport, TransportLink};
use crate::py::pyapi;
use crate::py::sockaddr;

static SOCKET_TRANSPORT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Makes `cls` the class of the transports set up here, and gives it its native
/// `__del__` (`finalizer`). The package calls it once, where it defines the class.
#[pyfunction]
pub(crate) fn _install_socket_transport(cls: &Bound<'_, PyType>) -> PyResult<()> {
    finalizer::install(cls)?;
    let py = cls.py();
    SOCKET_TRANSPORT.get_or_init(py, || cls.clone().unbind());
    Ok(())
}

/// What a connection's transport is made with, as `SocketTransport.__init__` takes it.
pub(crate) struct OnFd<'a, 'py> {
    pub(crate) fd: RawFd,
    pub(crate) protocol: &'a Bound<'py, PyAny>,
    /// The `extra` dict to fill, with the peername when the caller knows it.
    pub(crate) extra: Option<Bound<'py, PyDict>>,
    pub(crate) server: Option<&'a Bound<'py, PyAny>>,
    /// The local address, when the caller knows it (and has set TCP_NODELAY); otherwise
    /// both addresses are looked up.
    pub(crate) sockname: Option<Bound<'py, PyAny>>,
    /// `(family, type, proto)`: the kind of socket object to make if one is asked for.
    pub(crate) sock_args: &'a Bound<'py, PyAny>,
    /// 3.15's context, in which every callback of the transport runs.
    pub(crate) context: Option<Bound<'py, PyAny>>,
}

/// A `SocketTransport` of `loop_` on `on.fd`, set up as `__init__` sets one up: its extra
/// info, its native half, its server's count, the loop's `_transports`, and
/// `connection_made` scheduled. The fd is the transport's only if this returns; otherwise
/// the caller still owns it.
pub(crate) fn on_fd<'py>(
    loop_: &Bound<'py, PyAny>,
    link: TransportLink,
    on: OnFd<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = loop_.py();
    let cls = SOCKET_TRANSPORT
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("ferroloop._transports is not imported"))?
        .bind(py);
    // `object.__new__`: the class has no `__new__` of its own, and this is its `__init__`.
    let shell = cls.call_method1(intern!(py, "__new__"), (cls,))?;
    let extra = on.extra.unwrap_or_else(|| PyDict::new(py));
    shell.setattr(intern!(py, "_extra"), &extra)?;
    let sockname = intern!(py, "sockname");
    match on.sockname {
        Some(name) => extra.set_item(sockname, name)?,
        None => {
            // The loop connects natively only in the families `to_python` converts.
            let (local, peer) =
                sockaddr::_socket_names(py, on.fd)?.unwrap_or_else(|| (py.None(), py.None()));
            extra.set_item(sockname, local)?;
            let peername = intern!(py, "peername");
            if !extra.contains(peername)? {
                extra.set_item(peername, peer)?;
            }
        }
    }
    shell.setattr(intern!(py, "_loop"), loop_)?;
    shell.setattr(intern!(py, "_server"), on.server)?;
    let native = Bound::new(
        py,
        StreamTransport::create(
            loop_,
            link,
            on.fd,
            on.protocol,
            &shell,
            None,
            Some(on.sock_args.clone()),
            on.context,
        )?,
    )?;
    shell.setattr(intern!(py, "_native"), &native)?;
    if let Some(server) = on.server {
        pyapi::server_attach(server, &shell)?;
    }
    loop_
        .getattr(intern!(py, "_transports"))?
        .set_item(on.fd, &shell)?;
    StreamTransport::schedule_connection_made(&native, on.protocol, None)?;
    Ok(shell)
}
