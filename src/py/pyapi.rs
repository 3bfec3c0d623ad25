//! The pieces of CPython's asyncio that the native layer calls, looked up once.
//!
//! Calling the running Python's own helpers (rather than re-implementing them) keeps
//! reprs, messages and stack extraction identical on every CPython version we run on.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

static FORMAT_CALLBACK_SOURCE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EXTRACT_STACK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static HANDLE_REPR_INFO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FORMAT_HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ITERCOROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TASKS_MODULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BASE_CREATE_TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASYNCIO_TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static BUFFERED_PROTOCOL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SOCKET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SET_RESULT_UNLESS_CANCELLED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

static VERSION: PyOnceLock<(u8, u8)> = PyOnceLock::new();

/// Whether the running CPython is at least `(major, minor)`; PyO3 parses the version
/// string on each `version_info()`, so it is read once.
pub fn version_at_least(py: Python<'_>, at_least: (u8, u8)) -> bool {
    *VERSION.get_or_init(py, || {
        let v = py.version_info();
        (v.major, v.minor)
    }) >= at_least
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

/// `format_helpers._format_callback_source(callback, args[, debug=...])`; 3.13 added `debug`.
pub fn format_callback_source<'py>(
    py: Python<'py>,
    callback: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    debug: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let f = attr(
        &FORMAT_CALLBACK_SOURCE,
        py,
        "asyncio.format_helpers",
        &["_format_callback_source"],
    )?;
    if version_at_least(py, (3, 13)) {
        let kwargs = PyDict::new(py);
        kwargs.set_item("debug", debug)?;
        f.call((callback, args), Some(&kwargs))
    } else {
        f.call1((callback, args))
    }
}

/// `format_helpers.extract_stack()`: the caller's stack, as a handle's source traceback.
/// Called from native code, its own `f_back` is the Python frame that called the loop.
pub fn extract_stack(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(
        &EXTRACT_STACK,
        py,
        "asyncio.format_helpers",
        &["extract_stack"],
    )?
    .call0()
}

/// `events.Handle._repr_info`, applied to our handles: it only reads attributes they have.
pub fn handle_repr_info<'py>(handle: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    attr(
        &HANDLE_REPR_INFO,
        handle.py(),
        "asyncio.events",
        &["Handle", "_repr_info"],
    )?
    .call1((handle,))
}

/// `base_events._format_handle`: how slow-callback warnings name a handle.
pub fn format_handle<'py>(handle: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    attr(
        &FORMAT_HANDLE,
        handle.py(),
        "asyncio.base_events",
        &["_format_handle"],
    )?
    .call1((handle,))
}

pub fn logger(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&LOGGER, py, "asyncio.log", &["logger"])
}

/// `coroutines.iscoroutine(obj)`: asyncio's own test, covering generator-based coroutines.
pub fn is_coroutine(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    attr(
        &ITERCOROUTINE,
        obj.py(),
        "asyncio.coroutines",
        &["iscoroutine"],
    )?
    .call1((obj,))?
    .is_truthy()
}

/// `asyncio.tasks.Task`, looked up on each call so that a patched `tasks.Task` is honoured,
/// as `BaseEventLoop.create_task` honours it.
pub fn task_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    TASKS_MODULE
        .get_or_try_init(py, || {
            py.import("asyncio.tasks").map(|m| m.into_any().unbind())
        })?
        .bind(py)
        .getattr("Task")
}

/// Whether `task_type` is asyncio's own Task (C or Python), not one patched in.
pub fn is_asyncio_task(task_type: &Bound<'_, PyAny>) -> PyResult<bool> {
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
pub fn base_create_task(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(
        &BASE_CREATE_TASK,
        py,
        "asyncio.base_events",
        &["BaseEventLoop", "create_task"],
    )
}

pub fn future_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&FUTURE, py, "asyncio.futures", &["Future"])
}

/// Whether `loop_` is this thread's running loop (`events._get_running_loop()`, C in
/// CPython's `_asyncio`), where asking is cheap. CPython 3.11 checks the running loop's
/// pid on every lookup, a `getpid` syscall each time (3.10 and 3.12 on do not): there it
/// answers false, and callers take their general path.
pub fn is_running_loop(loop_: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = loop_.py();
    if version_at_least(py, (3, 11)) && !version_at_least(py, (3, 12)) {
        return Ok(false);
    }
    let get = attr(
        &GET_RUNNING_LOOP,
        py,
        "asyncio.events",
        &["_get_running_loop"],
    )?;
    Ok(get.call0()?.is(loop_))
}

pub fn buffered_protocol_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(
        &BUFFERED_PROTOCOL,
        py,
        "asyncio.protocols",
        &["BufferedProtocol"],
    )
}

pub fn socket_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(&SOCKET, py, "socket", &["socket"])
}

pub fn set_result_unless_cancelled(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    attr(
        &SET_RESULT_UNLESS_CANCELLED,
        py,
        "asyncio.futures",
        &["_set_result_unless_cancelled"],
    )
}
