//! Native transports: the loop owns their fds and calls them directly when the fds are
//! ready, with no Handle in between. Each has a Python half (in the `ferroloop` package)
//! that makes it an `asyncio.Transport` and holds the socket object; this layer owns the
//! transport's state and its hot paths, and never calls Python with a lock held.

mod buffer;
mod bytes;
mod finalizer;
mod lifecycle;
mod native_method;
mod registry;
mod shell;
mod stream;

pub(crate) use bytes::recv_bytes;
pub(crate) use shell::{_install_socket_transport, OnFd};

pub(crate) use lifecycle::Step;
pub(crate) use native_method::{NativeAttribute, NativeMethod};
pub(crate) use registry::TransportRegistry;
/// A `SocketTransport` set up natively on a bare fd (`shell`), given its loop's link.
pub(crate) use shell::on_fd as socket_transport_on_fd;

pub(crate) use stream::events::{event_handle, is_watching, run_event, run_step, step_handle};
pub(crate) use stream::{StreamTransport, TransportLoop, WatchId};
