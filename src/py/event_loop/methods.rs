//! `LoopCore`'s Python-facing method table (PyO3 allows one per class): each method runs
//! under the panic shield and delegates to the module that owns its idea. `call_soon`,
//! `call_soon_threadsafe`, `call_later`, `call_at`, `create_task` and `get_debug` are
//! installed apart, by `fastcall/`, with argument parsing of their own.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::attributes::KeepWhileRunning;
use super::links::transport_link;
use super::queues::Registration;
use super::run_once::PassBuffers;
use super::LoopCore;
use crate::py::errors::shield;
use crate::py::handles::{Handle, TimerHandle};
use crate::py::messages;
use crate::py::transports::StreamTransport;
use crate::runtime::clock;
use crate::runtime::io_registry::Direction;

#[pymethods]
impl LoopCore {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LoopCore> {
        shield(|| LoopCore::create(cls))
    }

    /// Attributes set on the loop go to its `__dict__` as on any object; setting `time`
    /// (`mock.patch.object(loop, "time")`) makes the loop read its clock through it.
    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyString>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        shield(|| {
            // SAFETY: `slf`, `name` and `value` are live objects for the duration of the
            // call, and generic attribute assignment is what an object without a setter of
            // its own does; it raises (returns -1 with an exception set) or succeeds.
            let set = unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(slf.as_ptr(), name.as_ptr(), value.as_ptr())
            };
            if set < 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            slf.get().note_time_attribute(name, true);
            Ok(())
        })
    }

    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        shield(|| {
            // SAFETY: as in `__setattr__`; a null value asks for the attribute's deletion.
            let deleted = unsafe {
                let null = std::ptr::null_mut();
                pyo3::ffi::PyObject_GenericSetAttr(slf.as_ptr(), name.as_ptr(), null)
            };
            if deleted < 0 {
                return Err(PyErr::fetch(slf.py()));
            }
            slf.get().note_time_attribute(name, false);
            Ok(())
        })
    }

    fn time(&self) -> f64 {
        clock::monotonic()
    }

    fn _timer_handle_cancelled(&self, handle: &Bound<'_, TimerHandle>) -> PyResult<()> {
        shield(|| {
            self.timer_handle_cancelled(handle);
            Ok(())
        })
    }

    fn create_future(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        shield(|| Self::new_future(slf))
    }

    fn stop(&self) {
        self.stopping.store(true, Relaxed);
    }

    fn is_running(&self) -> bool {
        self.thread_id.is_set()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    fn _run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| Self::run_once(slf, &mut PassBuffers::default()))
    }

    /// The body of `run_forever`, between its set-up and clean-up (done in Python).
    fn _run_until_stopped(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mut buffers = PassBuffers::default();
        shield(|| {
            let _kept = KeepWhileRunning::keep(slf)?;
            loop {
                Self::run_once(slf, &mut buffers)?;
                if slf.get().stopping.load(Relaxed) {
                    return Ok(());
                }
            }
        })
    }

    /// `context=` is 3.15's: a transport's reader runs in the transport's context.
    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_reader(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        shield(|| Self::add_io(slf, fd, Direction::Read, callback, args, context))
    }

    /// `context=` is 3.15's: a transport's writer runs in the transport's context.
    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_writer(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        shield(|| Self::add_io(slf, fd, Direction::Write, callback, args, context))
    }

    fn _remove_reader(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        shield(|| Self::remove_io(slf, fd, Direction::Read))
    }

    fn _remove_writer(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        shield(|| Self::remove_io(slf, fd, Direction::Write))
    }

    /// Marks one of the loop's own fds (the signal self-pipe), which a busy loop polls
    /// only now and then rather than on every pass (`runtime::pass_plan`); or, with
    /// `internal` false, has it polled on every pass as the user's fds are.
    fn _set_internal_fd(&self, py: Python<'_>, fd: RawFd, internal: bool) {
        self.state(py).io.set_internal(fd, internal);
    }

    /// `(fd, fileobj, reader, writer)` for every registered fd.
    fn _io_registrations(&self, py: Python<'_>) -> Vec<Registration> {
        self.registrations(py)
    }

    /// The fd a registration of `fileobj` is under (the selector view's `get_key`).
    fn _registered_fd(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
        shield(|| {
            self.registered_fd(fileobj)?
                .ok_or_else(messages::too_large_fd)
        })
    }

    /// The native half of a stream transport (`ferroloop._transports.SocketTransport`, the
    /// `shell`) on `fd`: see `StreamTransport::create`.
    #[pyo3(signature = (fd, protocol, shell, sock=None, sock_args=None, context=None))]
    fn _stream_transport(
        slf: &Bound<'_, Self>,
        fd: RawFd,
        protocol: &Bound<'_, PyAny>,
        shell: &Bound<'_, PyAny>,
        sock: Option<Bound<'_, PyAny>>,
        sock_args: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        shield(|| {
            let transport = StreamTransport::create(
                slf.as_any(),
                transport_link,
                fd,
                protocol,
                shell,
                sock,
                sock_args,
                context,
            )?;
            Py::new(slf.py(), transport)
        })
    }

    /// Lets go of everything the loop holds and closes its epoll and eventfd descriptors.
    fn _close_native(&self, py: Python<'_>) -> PyResult<()> {
        shield(|| {
            self.close_native(py);
            Ok(())
        })
    }

    /// Tracks again every queued handle someone else also holds. The package calls this
    /// before each full collection, so that a dropped, unclosed loop whose queues hold such
    /// handles (a sleeping task's timer) is still found to be garbage.
    fn _reveal_shared_handles(&self, py: Python<'_>) {
        self.reveal_shared_handles(py);
    }

    /// Starts the watchdog (`threshold`, seconds) and the monitor (`monitor`, a socket
    /// path), either or both.
    #[pyo3(signature = (threshold=None, monitor=None))]
    fn _watch(
        slf: &Bound<'_, Self>,
        threshold: Option<f64>,
        monitor: Option<std::path::PathBuf>,
    ) -> PyResult<()> {
        shield(|| Self::start_watch(slf, threshold, monitor))
    }

    /// asyncio's `slow_callback_duration`, kept natively: the loop counts the callbacks
    /// that take this long (`stats()["slow_callbacks"]`), debug mode or not.
    #[getter]
    fn slow_callback_duration(&self, py: Python<'_>) -> Py<PyAny> {
        self.slow_callback_duration
            .get(py)
            .unwrap_or_else(|| py.None())
    }

    #[setter]
    fn set_slow_callback_duration(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        shield(|| self.set_slow_threshold(value))
    }

    /// Counters since the loop was created: cheap enough to leave on.
    fn _stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.stats(py)
    }

    // asyncio's loop state, as the attributes BaseEventLoop's methods read and write.

    #[getter]
    fn _closed(&self) -> bool {
        self.closed.load(Relaxed)
    }
    #[setter(_closed)]
    fn set_closed(&self, value: bool) {
        self.closed.store(value, Relaxed);
    }

    #[getter]
    fn _stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }
    #[setter(_stopping)]
    fn set_stopping(&self, value: bool) {
        self.stopping.store(value, Relaxed);
    }

    #[getter]
    fn _debug(&self, py: Python<'_>) -> Py<PyAny> {
        self.debug_object(py)
    }
    #[setter(_debug)]
    fn set_debug(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_debug_object(value)
    }

    #[getter]
    fn _clock_resolution(&self) -> f64 {
        self.resolution()
    }
    #[setter(_clock_resolution)]
    fn set_clock_resolution(&self, value: f64) {
        self.clock_resolution.store(value.to_bits(), Relaxed);
    }

    #[getter]
    fn _thread_id(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.thread_id.get(py)
    }
    #[setter(_thread_id)]
    fn set_thread_id(&self, value: Option<Bound<'_, PyAny>>) {
        self.thread_id.set(value);
    }

    #[getter]
    fn _task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory.get(py)
    }
    #[setter(_task_factory)]
    fn set_task_factory(&self, value: Option<Bound<'_, PyAny>>) {
        self.task_factory.set(value);
    }

    #[getter]
    fn _current_handle(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.current_handle.get(py)
    }
    #[setter(_current_handle)]
    fn set_current_handle(&self, value: Option<Bound<'_, PyAny>>) {
        self.current_handle.set(value);
    }

    #[getter]
    fn _timer_cancelled_count(&self, py: Python<'_>) -> usize {
        self.state(py).timers.cancelled_count()
    }
    #[setter(_timer_cancelled_count)]
    fn set_timer_cancelled_count(&self, py: Python<'_>, value: usize) {
        self.state(py).timers.set_cancelled_count(value);
    }

    #[getter]
    fn _ready<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.ready_handles(py)
    }
    #[setter(_ready)]
    fn set_ready(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.reset_queue(value, false)
    }

    #[getter]
    fn _scheduled<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.scheduled_timers(py)
    }
    #[setter(_scheduled)]
    fn set_scheduled(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.reset_queue(value, true)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.traverse(&visit)
    }

    fn __clear__(&self) {
        self.clear();
    }
}
