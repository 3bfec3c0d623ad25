//! The loop a handle belongs to, as the handle needs it: whether it is in debug mode, and
//! that one of its timers was cancelled. ferroloop's loop answers natively, through the
//! link it hands the handles it makes; any other loop (one a handle made by Python code
//! names) is asked through its Python methods, as asyncio's handles ask.

use pyo3::prelude::*;

pub(crate) trait HandleLoop {
    fn debug(&self) -> bool;
    /// One of the timers in its heap was cancelled (`loop._timer_handle_cancelled`).
    fn timer_cancelled(&self, py: Python<'_>);
}

/// How a handle reaches its loop natively: None for a loop it cannot.
pub(crate) type LoopLink = for<'a, 'py> fn(&'a Bound<'py, PyAny>) -> Option<&'a dyn HandleLoop>;

/// The link of a handle made by Python code, whose loop is asked in Python.
pub(crate) fn foreign<'a>(_loop: &'a Bound<'_, PyAny>) -> Option<&'a dyn HandleLoop> {
    None
}
