//! Errors raised to Python: OSError with the right errno, and the panic boundary.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use super::messages;

/// `OSError(errno, strerror)`: Python picks the subclass (`ConnectionResetError`, ...) and
/// sets `.errno`, as the selectors module's errors do.
pub(crate) fn os_error(err: std::io::Error) -> PyErr {
    match err.raw_os_error() {
        Some(code) => {
            let msg = std::io::Error::from_raw_os_error(code).to_string();
            // Rust appends " (os error N)"; Python's strerror does not.
            let msg = msg
                .rsplit_once(" (os error")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_owned();
            PyOSError::new_err((code, msg))
        }
        None => PyOSError::new_err(err.to_string()),
    }
}

/// Runs an entry point, turning a Rust panic into `RuntimeError` instead of letting PyO3
/// raise `PanicException`, a BaseException that asyncio code would not expect to catch.
pub(crate) fn shield<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(messages::internal_error(&what))
        }
    }
}
