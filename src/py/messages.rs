//! What ferroloop says to Python: asyncio's messages word for word (each names the CPython
//! code it copies), then the few that are ferroloop's own.

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

// base_events.py

pub(crate) fn loop_closed() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

/// `_check_callback`.
pub(crate) fn coroutine_callback(method: &str) -> PyErr {
    PyTypeError::new_err(format!("coroutines cannot be used with {method}()"))
}

/// `_check_callback`.
pub(crate) fn not_callable(method: &str, repr: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "a callable object was expected by {method}(), got {repr}"
    ))
}

/// `call_later`'s check.
pub(crate) fn delay_none() -> PyErr {
    PyTypeError::new_err("delay must not be None")
}

/// `call_at`'s check.
pub(crate) fn when_none() -> PyErr {
    PyTypeError::new_err("when cannot be None")
}

/// What `self.time() + delay` raises for a `delay` that is not a number.
pub(crate) fn unsupported_addition(type_name: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "unsupported operand type(s) for +: 'float' and '{type_name}'"
    ))
}

/// The argument errors of the Python methods `call_soon` and its kin replace, named by
/// their qualified names as CPython names them.
#[cold]
#[inline(never)]
pub(crate) fn missing_arguments(method: &str, missing: &[&str]) -> PyErr {
    let quoted: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
    PyTypeError::new_err(format!(
        "BaseEventLoop.{method}() missing {} required positional argument{}: {}",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        quoted.join(" and "),
    ))
}

#[cold]
#[inline(never)]
pub(crate) fn unexpected_keyword(method: &str, keyword: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "BaseEventLoop.{method}() got an unexpected keyword argument '{keyword}'"
    ))
}

/// `_run_once`'s slow-callback warning, a logging format.
pub(crate) const SLOW_CALLBACK: &str = "Executing %s took %.3f seconds";

/// `Handle._run`'s report.
pub(crate) fn exception_in_callback(source: &str) -> String {
    format!("Exception in callback {source}")
}

// selectors.py

/// `_fileobj_to_fd`.
pub(crate) fn invalid_file_object(repr: &str) -> PyErr {
    PyValueError::new_err(format!("Invalid file object: {repr}"))
}

/// `_fileobj_to_fd`.
pub(crate) fn invalid_fd(fd: &Bound<'_, PyAny>) -> PyErr {
    PyValueError::new_err(format!("Invalid file descriptor: {fd}"))
}

/// What epoll's registration says of an fd past the C int range.
pub(crate) fn too_large_fd() -> PyErr {
    PyOverflowError::new_err("Python int too large to convert to C int")
}

// selector_events.py

pub(crate) const FATAL_READ: &str = "Fatal read error on socket transport";
pub(crate) const FATAL_WRITE: &str = "Fatal write error on socket transport";
pub(crate) const DATA_RECEIVED_FAILED: &str = "Fatal error: protocol.data_received() call failed.";
pub(crate) const GET_BUFFER_FAILED: &str = "Fatal error: protocol.get_buffer() call failed.";
pub(crate) const BUFFER_UPDATED_FAILED: &str =
    "Fatal error: protocol.buffer_updated() call failed.";
pub(crate) const EOF_RECEIVED_FAILED: &str = "Fatal error: protocol.eof_received() call failed.";
/// Debug-mode logging formats.
pub(crate) const RECEIVED_EOF: &str = "%r received EOF";
pub(crate) const PAUSES_READING: &str = "%r pauses reading";
pub(crate) const RESUMES_READING: &str = "%r resumes reading";
/// Logged once writes after the connection's loss pass the threshold.
pub(crate) const SEND_RAISED: &str = "socket.send() raised exception.";

pub(crate) fn empty_buffer() -> PyErr {
    PyRuntimeError::new_err("get_buffer() returned an empty buffer")
}

/// `write`'s and `writelines`' checks.
pub(crate) fn write_after_eof(method: &str) -> PyErr {
    PyRuntimeError::new_err(format!("Cannot call {method}() after write_eof()"))
}

pub(crate) fn write_during_sendfile(method: &str) -> PyErr {
    PyRuntimeError::new_err(format!("unable to {method}; sendfile is in progress"))
}

pub(crate) fn empty_waiter_set() -> PyErr {
    PyRuntimeError::new_err("Empty waiter is already set")
}

pub(crate) const CLOSED_BY_PEER: &str = "Connection is closed by peer";

/// `_FlowControlMixin`'s report of a failing `pause_writing` or `resume_writing`.
pub(crate) fn flow_control_failed(method: &str) -> String {
    format!("protocol.{method}() failed")
}

/// `_SelectorTransport.__del__`'s ResourceWarning.
pub(crate) fn unclosed_transport(repr: &str) -> String {
    format!("unclosed transport {repr}")
}

/// `sock_connect`'s error.
pub(crate) fn connect_failed(address: &Bound<'_, PyAny>) -> String {
    format!("Connect call failed {address}")
}

// socket.py (the C module): what its calls raise on the short connect path.

pub(crate) fn port_out_of_range() -> PyErr {
    PyOverflowError::new_err("connect(): port must be 0-65535.")
}

pub(crate) fn illegal_ip() -> PyErr {
    pyo3::exceptions::PyOSError::new_err("illegal IP address string passed to inet_pton")
}

// ferroloop's own.

pub(crate) fn internal_error(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!("ferroloop internal error: {what}"))
}

pub(crate) fn queue_reset_only_to_empty(timers: bool) -> PyErr {
    let queue = if timers { "timer heap" } else { "ready queue" };
    PyRuntimeError::new_err(format!("ferroloop's {queue} can only be reset to empty"))
}
