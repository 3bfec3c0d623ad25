//! File objects to fds as the selectors module reads them, and the readers and writers
//! registered on them: `add_reader`/`add_writer`'s Handles and native transports.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

use super::queues::{IoCallback, IoDetached, Registration};
use super::LoopCore;
use crate::py::args::Args;
use crate::py::errors::os_error;
use crate::py::handles::{self, Handle, SpareKind};
use crate::py::messages;
use crate::runtime::io_registry::{Direction, IoRegistry};
use crate::runtime::poller::Poller;

/// Settles a registry change: after one that succeeded, the Handles it detached are
/// cancelled, as asyncio's selector loop cancels them (transports need nothing); after
/// one that failed they are only dropped, as the selectors module drops the key it failed
/// to modify. Either way they are dropped here, with the loop's state let go.
fn settle<T>(py: Python<'_>, result: io::Result<T>, detached: IoDetached) -> PyResult<T> {
    let value = result.map_err(os_error)?;
    for old in detached.callbacks() {
        if let IoCallback::Handle(h) = old {
            handles::cancel(h.bind(py))?;
        }
    }
    Ok(value)
}

/// `selectors._fileobj_to_fd`: an int, or an object whose `fileno()` gives one. None for
/// an int too large for any fd: asyncio looks it up (not found) or hands it to epoll,
/// which refuses it (`messages::too_large_fd`).
fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<Option<RawFd>> {
    let fd = if fileobj.is_instance_of::<PyInt>() {
        fileobj.clone()
    } else {
        fileobj
            .call_method0("fileno")
            .and_then(|n| {
                n.call_method0("__index__")
                    .or_else(|_| n.call_method0("__int__"))
            })
            .map_err(|_| {
                messages::invalid_file_object(
                    &fileobj.repr().map(|r| r.to_string()).unwrap_or_default(),
                )
            })?
    };
    // Any fd fits a C int; only a refused one pays for Python's comparison.
    let fits = fd.extract::<RawFd>().ok();
    let negative = match fits {
        Some(n) => n < 0,
        None => fd.lt(0)?,
    };
    if negative {
        return Err(messages::invalid_fd(&fd));
    }
    Ok(fits)
}

impl LoopCore {
    /// `_add_reader` and `_add_writer`.
    pub(super) fn add_io(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        direction: Direction,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let this = slf.get();
        this.check_closed()?;
        let fd = this
            .registered_fd(fileobj)?
            .ok_or_else(messages::too_large_fd)?;
        let by_object = (!fileobj.is_instance_of::<PyInt>()).then(|| fileobj.clone().unbind());
        Self::add_handle(slf, fd, direction, (callback, args, context), by_object)
    }

    /// A Handle for `callback(*args)` in `context`, registered as the reader or writer of
    /// `fd` by `fileobj`.
    fn add_handle(
        slf: &Bound<'_, Self>,
        fd: RawFd,
        direction: Direction,
        (callback, args, context): (
            Bound<'_, PyAny>,
            Bound<'_, PyTuple>,
            Option<Bound<'_, PyAny>>,
        ),
        fileobj: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let handle =
            Self::make_handle(slf, SpareKind::Plain, callback, Args::tuple(args)?, context)?;
        let callback = IoCallback::Handle(handle.clone_ref(py));
        slf.get().register(py, fd, direction, callback, fileobj)?;
        Ok(handle)
    }

    /// `_add_reader`/`_add_writer(fd, callback)` for a `sock_*` wait on `sock`: registered
    /// by the socket, so that its next wait may find `fd` lingering (`release`).
    pub(crate) fn add_sock_wait(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        fd: RawFd,
        direction: Direction,
        callback: Bound<'_, PyAny>,
    ) -> PyResult<Py<Handle>> {
        slf.get().check_closed()?;
        let call = (callback, PyTuple::empty(slf.py()), None);
        Self::add_handle(slf, fd, direction, call, Some(sock.clone().unbind()))
    }

    /// `_remove_reader` and `_remove_writer`: whether there was one.
    pub(super) fn remove_io(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        direction: Direction,
    ) -> PyResult<bool> {
        let this = slf.get();
        if this.closed.load(Relaxed) {
            return Ok(false);
        }
        match this.registered_fd(fileobj)? {
            Some(fd) => this.unregister(slf.py(), fd, direction),
            None => Ok(false),
        }
    }

    /// The fd of `fileobj` as the selectors module finds it: its own, or, when that cannot
    /// be read (a socket closed or detached since), the one it was registered by.
    pub(super) fn registered_fd(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<Option<RawFd>> {
        let py = fileobj.py();
        match fileobj_to_fd(fileobj) {
            Err(err) if err.is_instance_of::<pyo3::exceptions::PyValueError>(py) => self
                .state(py)
                .io
                .fd_of(|registered| registered.is(fileobj))
                .map(Some)
                .ok_or(err),
            found => found,
        }
    }

    /// Sets the reader or writer of `fd`. A Handle it replaces is cancelled, as asyncio's
    /// selector loop does.
    pub(super) fn register(
        &self,
        py: Python<'_>,
        fd: RawFd,
        direction: Direction,
        callback: IoCallback,
        fileobj: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.check_closed()?;
        let mut detached = IoDetached::default();
        let result = {
            let mut state = self.state(py);
            let state = &mut *state;
            let selector = state.selector.as_ref().ok_or_else(messages::loop_closed)?;
            state.io.set(
                &selector.poller,
                fd,
                direction,
                callback,
                fileobj,
                &mut detached,
            )
        };
        settle(py, result, detached)
    }

    /// Clears the reader or writer of `fd`, cancelling a Handle; whether there was one.
    pub(crate) fn unregister(
        &self,
        py: Python<'_>,
        fd: RawFd,
        direction: Direction,
    ) -> PyResult<bool> {
        self.take_off(py, |io, poller, detached| {
            io.clear(poller, fd, direction, detached)
        })
    }

    /// `unregister` for a `sock_*` wait that is over: the fd lingers in epoll for the same
    /// socket's next wait (`IoRegistry::release`).
    pub(crate) fn release(
        &self,
        py: Python<'_>,
        fd: RawFd,
        direction: Direction,
    ) -> PyResult<bool> {
        self.take_off(py, |io, poller, detached| {
            io.release(poller, fd, direction, detached)
        })
    }

    /// `unregister` of the writer of a connect that completed: epoll watches the fd for
    /// the reader of the transport made on it (`IoRegistry::hand_over`).
    pub(crate) fn hand_over(&self, py: Python<'_>, fd: RawFd) -> PyResult<bool> {
        self.take_off(py, |io, poller, detached| {
            io.hand_over(poller, fd, detached)
        })
    }

    /// A change that removes a registration, made with the state held and settled after
    /// (`settle`); false once the loop is closed.
    fn take_off(
        &self,
        py: Python<'_>,
        change: impl FnOnce(
            &mut IoRegistry<IoCallback, Py<PyAny>>,
            &Poller,
            &mut IoDetached,
        ) -> io::Result<bool>,
    ) -> PyResult<bool> {
        let mut detached = IoDetached::default();
        let result = {
            let mut state = self.state(py);
            let state = &mut *state;
            match state.selector.as_ref() {
                Some(selector) => change(&mut state.io, &selector.poller, &mut detached),
                None => Ok(false),
            }
        };
        settle(py, result, detached)
    }

    /// `(fd, fileobj, reader, writer)` for every registered fd.
    pub(super) fn registrations(&self, py: Python<'_>) -> Vec<Registration> {
        let state = self.state(py);
        state
            .io
            .iter()
            .map(|(fd, fileobj, reader, writer)| {
                let object = |c: &IoCallback| c.as_any().clone_ref(py);
                (
                    fd,
                    fileobj.map(|o| o.clone_ref(py)),
                    reader.map(object),
                    writer.map(object),
                )
            })
            .collect()
    }
}
