//! How handles and transports reach their loop natively: the loop implements what each
//! needs (`HandleLoop`, `TransportLoop`) and provides the links, so neither layer names
//! `LoopCore`.

use std::os::fd::RawFd;

use pyo3::prelude::*;

use super::queues::{IoCallback, Ready};
use super::LoopCore;
use crate::py::handles::HandleLoop;
use crate::py::transports::{self, OnFd, Step, StreamTransport, TransportLoop, WatchId};
use crate::runtime::io_registry::Direction;

impl HandleLoop for LoopCore {
    fn debug(&self) -> bool {
        LoopCore::debug(self)
    }

    fn timer_cancelled(&self, py: Python<'_>) {
        self.state(py).timers.note_cancelled();
    }
}

impl TransportLoop for LoopCore {
    fn debug(&self) -> bool {
        LoopCore::debug(self)
    }

    fn watch_transport(
        &self,
        transport: &Bound<'_, StreamTransport>,
        fd: RawFd,
        direction: Direction,
        id: WatchId,
    ) -> PyResult<()> {
        let callback = IoCallback::Transport(transport.clone().unbind(), id);
        self.register(transport.py(), fd, direction, callback, None)
    }

    fn unwatch(&self, py: Python<'_>, fd: RawFd, direction: Direction) -> PyResult<()> {
        self.unregister(py, fd, direction).map(drop)
    }

    /// Refused, as `call_soon` would refuse the Handle, once the loop is closed.
    fn push_step(
        &self,
        py: Python<'_>,
        transport: Py<StreamTransport>,
        step: Step,
    ) -> PyResult<()> {
        self.check_closed()?;
        self.state(py)
            .ready
            .push(Ready::Step(Box::new((transport, step))));
        Ok(())
    }

    fn push_wake(
        &self,
        py: Python<'_>,
        waiter: Py<PyAny>,
        result: Py<PyAny>,
        context: Py<PyAny>,
    ) -> PyResult<()> {
        LoopCore::push_wake(self, py, waiter, result, context)
    }
}

/// How a handle recognises ferroloop's loop (installed once, `handles::install_loop_link`).
pub(crate) fn handle_link<'a>(obj: &'a Bound<'_, PyAny>) -> Option<&'a dyn HandleLoop> {
    obj.cast::<LoopCore>()
        .ok()
        .map(|core| core.get() as &dyn HandleLoop)
}

/// The link of the transports the loop makes.
pub(super) fn transport_link<'a>(obj: &'a Bound<'_, PyAny>) -> Option<&'a dyn TransportLoop> {
    obj.cast::<LoopCore>()
        .ok()
        .map(|core| core.get() as &dyn TransportLoop)
}

/// A `SocketTransport` of the loop on a connection it made or accepted (a bare fd).
pub(crate) fn socket_transport<'py>(
    loop_: &Bound<'py, LoopCore>,
    on: OnFd<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    transports::socket_transport_on_fd(loop_.as_any(), transport_link, on)
}
