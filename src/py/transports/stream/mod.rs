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
//!
//! - `methods`: the Python-facing method table;
//! - `read`, `write`, `flow` (flow control), `close` (tear-down): the transport's work;
//! - `steps`: what it queues on the loop in place of asyncio's `call_soon`;
//! - `events`: how the loop runs it when its fd is ready.

mod close;
pub(crate) mod events;
mod flow;
mod methods;
mod read;
mod steps;
mod write;

use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use super::buffer::WriteBuffer;
use super::lifecycle::Step;
use crate::constants::DEFAULT_HIGH_WATER;
use crate::py::context::copy_current_context;
use crate::py::gc::{visit_all, Visit};
use crate::py::gil_cell::GilCell;
use crate::py::pyapi;
use crate::runtime::io_registry::Direction;
use crate::runtime::sync::lock;
use crate::runtime::sys;

/// Which of a transport's registrations of its reader or writer an event came from.
/// asyncio cancels a removed reader's Handle, so an event queued for it is dropped even
/// when a new reader was added since (a `pause_reading` then `resume_reading` in one
/// pass); a transport numbers its registrations to do the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct WatchId(u32);

/// The loop a transport belongs to, as the transport needs it: its fd watched, its steps
/// queued, its debug mode. The loop makes each transport (`LoopCore._stream_transport`)
/// and hands it the link to reach it by, so this layer never names the loop's type.
pub(crate) trait TransportLoop {
    fn debug(&self) -> bool;
    /// Registers the transport as the reader or writer of its fd.
    fn watch_transport(
        &self,
        transport: &Bound<'_, StreamTransport>,
        fd: RawFd,
        direction: Direction,
        id: WatchId,
    ) -> PyResult<()>;
    /// Unregisters the reader or writer of `fd` (a no-op when there is none).
    fn unwatch(&self, py: Python<'_>, fd: RawFd, direction: Direction) -> PyResult<()>;
    /// Queues a step where asyncio's transport would `call_soon` a Handle.
    fn push_step(&self, py: Python<'_>, transport: Py<StreamTransport>, step: Step)
        -> PyResult<()>;
    /// Wakes `waiter` with `result` where asyncio's transport would `call_soon`
    /// `futures._set_result_unless_cancelled`.
    fn push_wake(
        &self,
        py: Python<'_>,
        waiter: Py<PyAny>,
        result: Py<PyAny>,
        context: Py<PyAny>,
    ) -> PyResult<()>;
}

/// How a transport reaches its loop: None once the object is not that loop.
pub(crate) type TransportLink =
    for<'a, 'py> fn(&'a Bound<'py, PyAny>) -> Option<&'a dyn TransportLoop>;

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
pub(crate) struct StreamTransport {
    state: Mutex<State>,
    /// The context every callback of the transport runs in, when it was given one (3.15's
    /// transports take their server's, or their `create_connection` caller's); without
    /// one, each callback runs in a copy of the context current when it was scheduled,
    /// as `call_soon` and asyncio's reader and writer Handles make them. Set once; outside
    /// `state`, so that reading it takes no lock.
    context: GilCell<Option<Py<PyAny>>>,
    loop_: Py<PyAny>,
    /// How it reaches `loop_` natively (`TransportLoop`).
    link: TransportLink,
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

fn receiver_for(protocol: &Bound<'_, PyAny>) -> PyResult<Receiver> {
    Ok(
        if protocol.is_instance(&pyapi::buffered_protocol_type(protocol.py())?)? {
            Receiver::Buffered
        } else {
            Receiver::Data
        },
    )
}

fn would_block(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}
impl StreamTransport {
    /// The native half of `shell` on `fd`, made by its loop, which `link` reaches. `sock`
    /// is the socket object that owns the fd; without one, `sock_args` gives the kind of
    /// socket the bare fd is, and the transport takes the fd over once set up
    /// (`_schedule_connection_made`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        loop_: &Bound<'_, PyAny>,
        link: TransportLink,
        fd: RawFd,
        protocol: &Bound<'_, PyAny>,
        shell: &Bound<'_, PyAny>,
        sock: Option<Bound<'_, PyAny>>,
        sock_args: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<StreamTransport> {
        let loop_ = loop_.clone().unbind();
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
            link,
            fd,
            sock_args: sock_args.map(Bound::unbind),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The loop, natively. It is the loop that made the transport, so this fails only
    /// if that object stopped being a ferroloop loop.
    fn owner<'a>(&'a self, py: Python<'a>) -> PyResult<&'a dyn TransportLoop> {
        (self.link)(self.loop_.bind(py))
            .ok_or_else(|| PyTypeError::new_err("a ferroloop loop is required"))
    }

    fn loop_any<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.loop_.bind(py).clone()
    }

    fn debug(&self, py: Python<'_>) -> bool {
        self.owner(py).is_ok_and(|owner| owner.debug())
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
        this.owner(slf.py())?
            .watch_transport(slf, this.fd, direction, id)?;
        *Self::watching(&mut this.state(), direction) = Some(id);
        Ok(())
    }

    fn unwatch(&self, py: Python<'_>, direction: Direction) -> PyResult<()> {
        *Self::watching(&mut self.state(), direction) = None;
        self.owner(py)?.unwatch(py, self.fd, direction)
    }

    fn debug_log(&self, py: Python<'_>, message: &str) -> PyResult<()> {
        if self.debug(py) {
            if let Some(shell) = self.state().shell.as_ref().map(|s| s.clone_ref(py)) {
                pyapi::transport_logger(py)?.call_method1("debug", (message, shell))?;
            }
        }
        Ok(())
    }

    fn is_reading_state(st: &State) -> bool {
        !st.closing && !st.paused
    }

    /// Whether the transport still holds an open socket (closed by connection_lost).
    pub(crate) fn socket_open(&self) -> bool {
        !matches!(self.state().endpoint, Endpoint::Lent | Endpoint::Closed)
    }

    /// The socket object: the one given, or for a bare fd one made now, which owns the fd
    /// from then on; None once closed.
    fn socket(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        {
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
                return self.socket(py);
            }
            st.endpoint = Endpoint::Socket(sock.clone_ref(py));
            Ok(Some(sock))
        }
    }

    /// Call only from `__traverse__`.
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit_all(visit, &[&self.loop_, &self.sock_args])?;
        // SAFETY: called only from `__traverse__`, which try_borrow_in_traverse requires.
        if let Ok(context) = unsafe { self.context.try_borrow_in_traverse() } {
            context.visit_with(visit)?;
        }
        if let Ok(st) = self.state.try_lock() {
            if let Endpoint::Socket(sock) = &st.endpoint {
                visit.call(sock)?;
            }
            visit_all(
                visit,
                &[
                    &st.protocol,
                    &st.shell,
                    &st.read_context,
                    &st.write_context,
                    &st.empty_waiter,
                    &st.limits,
                ],
            )?;
        }
        Ok(())
    }

    fn clear(&self) {
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
