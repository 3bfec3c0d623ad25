//! Serving: the reader callback of a listening socket, accepting connections without
//! asyncio's Task per connection.
//!
//! `selector_events._accept_connection` accepts up to `backlog` connections per readiness
//! event and, for each, starts a Task running `_accept_connection2`: call the protocol
//! factory, make the transport, await its waiter. Without TLS that Task's only work is
//! those two calls, so the acceptor makes them itself, in the context the Task would have
//! had: a copy of the current one, or on 3.15 a copy of the server's, which the
//! connection's transport then runs every callback in. What the user sees is the same:
//! the factory's result, the transport, `connection_made` one pass later, errors swallowed
//! as asyncio swallows them outside debug mode. Debug mode, which logs each connection,
//! runs asyncio's own code.

use std::os::fd::RawFd;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::context::{copy_current_context, in_context};
use super::errors::{os_error, shield};
use super::event_loop::{links, LoopCore};
use super::gc::visit_all;
use super::handles::is_exit;
use super::pyapi;
use super::sockaddr;
use super::transports::OnFd;
use crate::runtime::sys;

#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct Acceptor {
    loop_: Py<LoopCore>,
    /// `_start_serving`'s arguments: (protocol_factory, sock, sslcontext, server,
    /// backlog, *ssl timeouts), handed back to asyncio's code for the rare paths.
    serving_args: Py<PyTuple>,
    protocol_factory: Py<PyAny>,
    server: Py<PyAny>,
    fd: RawFd,
    /// Connections accepted per readiness, at least one: asyncio's loop accepts
    /// `range(backlog)` of them (3.14: `backlog + 1`), so a server given less (which
    /// `listen` takes) never accepts there; here it does.
    batch: usize,
    /// 3.14's loop discards a connection aborted before `accept()` and goes on; earlier
    /// ones end the batch.
    skip_aborted: bool,
    /// The server's context (3.15): each connection runs in a copy of it.
    context: Option<Py<PyAny>>,
    /// The listener's (family, type | SOCK_NONBLOCK, proto): the kind of socket object
    /// `socket.accept()` would build, told up front that the fd is non-blocking.
    socket_args: Py<PyTuple>,
    /// asyncio's `_set_nodelay` test, on the listener: a TCP socket whose proto is
    /// IPPROTO_TCP (one made by `socket.socket()`, proto 0, keeps Nagle on).
    nodelay: bool,
    /// The sockname every accepted connection shares when the listener is bound to one
    /// specific address (`SockAddr::is_specific`): made once, where asyncio asks each
    /// connection's socket (a `getsockname` and a conversion per connection).
    shared_sockname: Option<Py<PyAny>>,
    /// `make_transport(fd, protocol, waiter, extra, server, sockname, socket_args, context)`,
    /// for a loop whose `_make_socket_transport` is overridden: a transport on the bare
    /// fd, which it takes over only if it returns. None makes a `SocketTransport`.
    make_transport: Option<Py<PyAny>>,
}

#[pymethods]
impl Acceptor {
    #[new]
    #[pyo3(signature = (loop_, serving_args, make_transport, context=None))]
    fn new(
        loop_: Bound<'_, LoopCore>,
        serving_args: Bound<'_, PyTuple>,
        make_transport: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Acceptor> {
        let py = loop_.py();
        let plus_one = pyapi::behaviour(py)?.accept_backlog_plus_one;
        let backlog = serving_args.get_item(4)?.extract::<i64>()?;
        let listener = serving_args.get_item(1)?;
        let family: i32 = listener.getattr("family")?.extract()?;
        let sock_type: i32 = listener.getattr("type")?.extract()?;
        let proto: i32 = listener.getattr("proto")?.extract()?;
        let fd: RawFd = listener.call_method0("fileno")?.extract()?;
        let shared_sockname = match sys::local_address(fd) {
            Ok(addr) if addr.is_specific() => Some(sockaddr::to_python(py, &addr)?.unbind()),
            _ => None,
        };
        Ok(Acceptor {
            loop_: loop_.unbind(),
            protocol_factory: serving_args.get_item(0)?.unbind(),
            server: serving_args.get_item(3)?.unbind(),
            batch: usize::try_from(backlog.saturating_add(i64::from(plus_one)))
                .unwrap_or(0)
                .max(1),
            skip_aborted: plus_one,
            context: context.filter(|c| !c.is_none()).map(Bound::unbind),
            fd,
            shared_sockname,
            socket_args: (family, sock_type | libc::SOCK_NONBLOCK, proto)
                .into_pyobject(py)?
                .unbind(),
            nodelay: matches!(family, libc::AF_INET | libc::AF_INET6)
                && sock_type == libc::SOCK_STREAM
                && proto == libc::IPPROTO_TCP,
            make_transport: make_transport.map(Bound::unbind),
            serving_args: serving_args.unbind(),
        })
    }

    /// Whether connections accepted on `sock` can be served natively: a socket object
    /// (by its type: a test's stand-in gets asyncio's path), of the stream type and of a
    /// family whose addresses this module converts.
    #[staticmethod]
    fn supports(sock: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !sock
            .get_type()
            .is_subclass(&pyapi::socket_type(sock.py())?)?
        {
            return Ok(false);
        }
        let family: i32 = sock.getattr("family")?.extract()?;
        let sock_type: i32 = sock.getattr("type")?.extract()?;
        Ok(sockaddr::is_supported(family) && sock_type == libc::SOCK_STREAM)
    }

    fn __call__(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let this = slf.get();
            let loop_ = this.loop_.bind(py);
            if loop_.get().debug() {
                return loop_
                    .call_method1("_accept_connection", this.serving_args.bind(py))
                    .map(drop);
            }
            for _ in 0..this.batch {
                match sys::accept(this.fd) {
                    Ok((fd, peer)) => this.serve(py, fd, &peer)?,
                    Err(err)
                        if this.skip_aborted && err.raw_os_error() == Some(libc::ECONNABORTED) => {}
                    Err(err) => {
                        if !this.accept_failed(py, err)? {
                            break;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        format!("<Acceptor fd={}>", self.fd)
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit_all(
            &visit,
            &[
                &self.loop_,
                &self.serving_args,
                &self.protocol_factory,
                &self.server,
                &self.socket_args,
                &self.shared_sockname,
                &self.context,
                &self.make_transport,
            ],
        )
    }
}

impl Acceptor {
    /// What `_accept_connection` does when `accept()` fails; whether the batch goes on. An
    /// empty queue ends it, and anything but running out of fds or memory is raised for
    /// the loop to report. Running out pauses accepting for a while and, as in asyncio,
    /// does not end the batch: each further attempt that fails is reported again.
    fn accept_failed(&self, py: Python<'_>, err: std::io::Error) -> PyResult<bool> {
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED) => Ok(false),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => self
                .loop_
                .bind(py)
                .call_method1(
                    "_accept_exhausted",
                    (os_error(err).into_value(py), self.serving_args.bind(py)),
                )
                .map(|_| true),
            _ => Err(os_error(err)),
        }
    }

    /// `_accept_connection2` for one accepted fd, in a copy of the current context (or of
    /// the server's, which the transport is then given).
    fn serve(&self, py: Python<'_>, fd: RawFd, peer: &sys::SockAddr) -> PyResult<()> {
        if self.nodelay && sys::set_nodelay(fd).is_err() {
            // asyncio's transport would fail to set it up and drop the connection.
            sys::close(fd);
            return Ok(());
        }
        // The Task asyncio would start here runs in a copy of the current context, or of
        // the server's.
        let context = match &self.context {
            Some(server) => server
                .bind(py)
                .call_method0(intern!(py, "copy"))
                .map(Bound::unbind),
            None => copy_current_context(py),
        };
        let given = self.context.as_ref().and(context.as_ref().ok());
        let transport_context = given.map(|c| c.bind(py).clone());
        let made = context.and_then(|context| {
            in_context(context.bind(py), || {
                let extra = PyDict::new(py);
                extra.set_item(intern!(py, "peername"), sockaddr::to_python(py, peer)?)?;
                let sockname = match &self.shared_sockname {
                    Some(shared) => shared.bind(py).clone(),
                    None => match sys::local_address(fd) {
                        Ok(addr) => sockaddr::to_python(py, &addr)?,
                        Err(_) => py.None().into_bound(py),
                    },
                };
                let protocol = self.protocol_factory.bind(py).call0()?;
                let server = self.server.bind(py);
                let Some(make_transport) = &self.make_transport else {
                    let on = OnFd {
                        fd,
                        protocol: &protocol,
                        extra: Some(extra),
                        server: Some(server).filter(|s| !s.is_none()),
                        sockname: Some(sockname),
                        sock_args: self.socket_args.bind(py).as_any(),
                        context: transport_context,
                    };
                    return links::socket_transport(self.loop_.bind(py), on);
                };
                make_transport.bind(py).call1((
                    fd,
                    protocol,
                    py.None(),
                    extra,
                    server,
                    sockname,
                    self.socket_args.bind(py),
                    transport_context,
                ))
            })
        });
        match made {
            Ok(_) => Ok(()),
            Err(err) => {
                // No transport took the connection over. asyncio leaves its socket to the
                // garbage collector, which closes it with a ResourceWarning.
                sys::close(fd);
                if is_exit(py, &err) {
                    Err(err)
                } else {
                    Ok(())
                }
            }
        }
    }
}
