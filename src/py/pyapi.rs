//! The pieces of CPython's asyncio that the native layer calls, looked up once.
//!
//! Calling the running Python's own helpers (rather than re-implementing them) keeps
//! reprs, messages and stack extraction identical on every CPython version we run on.
//! Public names are taken from `asyncio`; every private one comes from
//! `ferroloop._compat`, which holds all of them (with an adapter where versions differ),
//! so that this layer never names a private part of asyncio itself.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

static COMPAT: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static FORMAT_CALLBACK_SOURCE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EXTRACT_STACK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static HANDLE_REPR_INFO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FORMAT_HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOOP_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TRANSPORT_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ITERCOROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TASKS_MODULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BASE_CREATE_TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASYNCIO_TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BUFFERED_PROTOCOL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SOCKET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SET_RESULT_UNLESS_CANCELLED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIMER_HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static THREADSAFE_HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BEHAVIOUR: PyOnceLock<Behaviour> = PyOnceLock::new();

static VERSION: PyOnceLock<(u8, u8)> = PyOnceLock::new();

/// Whether the running CPython is at least `(major, minor)`; PyO3 parses the version
/// string on each `version_info()`, so it is read once.
pub(crate) fn version_at_least(py: Python<'_>, at_least: (u8, u8)) -> bool {
    *VERSION.get_or_init(py, || {
        let v = py.version_info();
        (v.major, v.minor)
    }) >= at_least
}

/// What the running CPython's asyncio does where versions differ (`ferroloop._compat`).
pub(crate) struct Behaviour {
    /// The TypeError message of a stream transport's `write()`, with `{!r}` for the type
    /// name.
    pub(crate) write_type_error: String,
    /// The accept loop takes `backlog + 1` connections per readiness, and an aborted one
    /// does not end the batch (3.14+).
    pub(crate) accept_backlog_plus_one: bool,
    /// A `close()` that waited for the buffer to drain counts the connection lost (3.14+).
    pub(crate) flushed_close_counts_conn_lost: bool,
    /// `writelines` drops data once the connection is lost, skips empty chunks and pauses
    /// the protocol, as `write` does (3.14+).
    pub(crate) writelines_like_write: bool,
    /// A timer is due within `max(clock resolution, ulp(now))` of now (3.15+), not
    /// within the resolution alone.
    pub(crate) due_within_ulp: bool,
    /// Transports run every callback in one context: their server's copy, or for client
    /// connections a copy made when the transport is (3.15+).
    pub(crate) transport_contexts: bool,
    /// The name of the method a transport joins its server by (interned).
    pub(crate) server_attach: Py<PyString>,
    /// The name of the method a transport leaves its server by (interned).
    pub(crate) server_detach: Py<PyString>,
    /// The server's attach/detach take the transport (3.13+).
    pub(crate) server_tracks_transports: bool,
    /// `call_soon_threadsafe` returns handles whose `cancel()` waits for a callback
    /// running on another thread (3.14+).
    pub(crate) threadsafe_handles: bool,
}

pub(crate) fn behaviour(py: Python<'_>) -> PyResult<&'static Behaviour> {
    BEHAVIOUR.get_or_try_init(py, || {
        let compat = compat(py)?;
        Ok(Behaviour {
            write_type_error: compat.getattr("WRITE_TYPE_ERROR")?.extract()?,
            accept_backlog_plus_one: compat.getattr("ACCEPT_BACKLOG_PLUS_ONE")?.extract()?,
            flushed_close_counts_conn_lost: compat
                .getattr("FLUSHED_CLOSE_COUNTS_CONN_LOST")?
                .extract()?,
            writelines_like_write: compat.getattr("WRITELINES_LIKE_WRITE")?.extract()?,
            due_within_ulp: compat.getattr("DUE_WITHIN_ULP")?.extract()?,
            transport_contexts: compat.getattr("TRANSPORT_CONTEXTS")?.extract()?,
            server_attach: PyString::intern(
                py,
                &compat.getattr("SERVER_ATTACH")?.extract::<String>()?,
            )
            .unbind(),
            server_detach: PyString::intern(
                py,
                &compat.getattr("SERVER_DETACH")?.extract::<String>()?,
            )
            .unbind(),
            server_tracks_transports: compat.getattr("SERVER_TRACKS_TRANSPORTS")?.extract()?,
            threadsafe_handles: !compat.getattr("ThreadSafeHandle")?.is_none(),
        })
    })
}

fn compat(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    COMPAT
        .get_or_try_init(py, || py.import("ferroloop._compat").map(Bound::unbind))
        .map(|m| m.bind(py))
}

fn attr<'py>(
    cell: &'static PyOnceLock<Py<PyAny>>,
    py: Python<'py>,
    module: &str,
    path: &[&str],
) -> PyResult<Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        let mut obj = py.import(module)?.into_any();
        for name in path {
            obj = obj.getattr(*name)?;
        }
        Ok::<_, PyErr>(obj.unbind())
    })
    .map(|o| o.bind(py).clone())
}

/// A name of `ferroloop._compat`.
fn private<'py>(
    cell: &'static PyOnceLock<Py<PyAny>>,
    py: Python<'py>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    attr(cell, py, "ferroloop._compat", &[name])
}

/// `_format_callback_source(callback, args[, debug=...])`; 3.13 added `debug`.
pub(crate) fn format_callback_source<'py>(
    py: Python<'py>,
    callback: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    debug: bool,
) -> PyResult<Bound<'py, PyAny>> {
    private(&FORMAT_CALLBACK_SOURCE, py, "format_callback_source")?.call1((callback, args, debug))
}

/// `format_helpers.extract_stack()`: the caller's stack, as a handle's source traceback.
/// Called from native code, its own `f_back` is the Python frame that called the loop.
pub(crate) fn extract_stack(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    private(&EXTRACT_STACK, py, "extract_stack")?.call0()
}

/// `events.Handle._repr_info`, applied to our handles: it only reads attributes they have.
pub(crate) fn handle_repr_info<'py>(handle: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    private(&HANDLE_REPR_INFO, handle.py(), "handle_repr_info")?.call1((handle,))
}

/// `base_events._format_handle`: how slow-callback warnings name a handle.
pub(crate) fn format_handle<'py>(handle: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    private(&FORMAT_HANDLE, handle.py(), "format_handle")?.call1((handle,))
}

/// The logger asyncio's loop logs through (`base_events.logger`), as it is now.
pub(crate) fn loop_logger(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    private(&LOOP_LOGGER, py, "loop_logger")?.call0()
}

/// The logger asyncio's transports log through (`selector_events.logger`), as it is now.
pub(crate) fn transport_logger(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    private(&TRANSPORT_LOGGER, py, "transport_logger")?.call0()
}

/// `asyncio.iscoroutine(obj)`: asyncio's own test, covering generator-based coroutines.
pub(crate) fn is_coroutine(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    attr(&ITERCOROUTINE, obj.py(), "asyncio", &["iscoroutine"])?
        .call1((obj,))?
        .is_truthy()
}
/// `asyncio.tasks.Task`, looked up on each call so that a patched `tasks.Task` is honoured,
/// as `BaseEventLoop.create_task` honours it.
pub(crate) fn task_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    TASKS_MODULE
        .get_or_try_init(py, || {
            py.import("asyncio.tasks").map(|m| m.into_any().unbind())
        })?
        .bind(py)
        .getattr(intern!(py, "Task"))
}

/// Whether `task_type` is asyncio's own Task (C or Python), not one patched in.
pub(crate) fn is_asyncio_task(task_type: &Bound<'_, PyAny>) -> PyResult<bool> {
    let own = ASYNCIO_TASK.get_or_try_init(task_type.py(), || {
        task_type
            .py()
            .import("asyncio")
            .and_then(|m| m.getattr("Task"))
            .map(Bound::unbind)
    })?;
    Ok(task_type.is(own))
}

/// `BaseEventLoop.create_task` of the running CPython: the general case (task factories,
/// debug mode, version-specific keywords) is left to it.
pub(crate) fn base_create_task(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(
        &BASE_CREATE_TASK,
        py,
        "asyncio",
        &["BaseEventLoop", "create_task"],
    )
}

pub(crate) fn future_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&FUTURE, py, "asyncio", &["Future"])
}

/// Whether `loop_` is this thread's running loop (`events._get_running_loop()`, C in
/// CPython's `_asyncio`), where asking is cheap. CPython 3.11 checks the running loop's
/// pid on every lookup, a `getpid` syscall each time (3.12 on do not): there it answers
/// false, and callers take their general path.
pub(crate) fn is_running_loop(loop_: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = loop_.py();
    if !version_at_least(py, (3, 12)) {
        return Ok(false);
    }
    let get = private(&GET_RUNNING_LOOP, py, "get_running_loop")?;
    Ok(get.call0()?.is(loop_))
}

pub(crate) fn buffered_protocol_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&BUFFERED_PROTOCOL, py, "asyncio", &["BufferedProtocol"])
}

pub(crate) fn socket_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&SOCKET, py, "socket", &["socket"])
}

pub(crate) fn set_result_unless_cancelled(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    private(
        &SET_RESULT_UNLESS_CANCELLED,
        py,
        "set_result_unless_cancelled",
    )
}

/// `server._attach(transport)` (3.13+) or `server._attach()`: a transport joins its server.
pub(crate) fn server_attach(
    server: &Bound<'_, PyAny>,
    transport: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let behaviour = behaviour(server.py())?;
    call_server(server, &behaviour.server_attach, transport, behaviour)
}

/// `server._detach(transport)` (3.13+) or `server._detach()`: a transport leaves its
/// server. `unclosed`: from the `__del__` of a transport never closed, which detaches
/// only where the server tracks transports.
pub(crate) fn server_detach(
    server: &Bound<'_, PyAny>,
    transport: &Bound<'_, PyAny>,
    unclosed: bool,
) -> PyResult<()> {
    let behaviour = behaviour(server.py())?;
    if unclosed && !behaviour.server_tracks_transports {
        return Ok(());
    }
    call_server(server, &behaviour.server_detach, transport, behaviour)
}

/// `server.<name>(transport)` where the server tracks its transports, else `server.<name>()`.
fn call_server(
    server: &Bound<'_, PyAny>,
    name: &Py<PyString>,
    transport: &Bound<'_, PyAny>,
    behaviour: &Behaviour,
) -> PyResult<()> {
    let name = name.bind(server.py());
    if behaviour.server_tracks_transports {
        server.call_method1(name, (transport,)).map(drop)
    } else {
        server.call_method0(name).map(drop)
    }
}

pub(crate) fn handle_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&HANDLE, py, "asyncio", &["Handle"])
}

pub(crate) fn timer_handle_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&TIMER_HANDLE, py, "asyncio", &["TimerHandle"])
}

/// `events._ThreadSafeHandle` (3.14+), or None.
pub(crate) fn threadsafe_handle_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    private(&THREADSAFE_HANDLE, py, "ThreadSafeHandle")
}
