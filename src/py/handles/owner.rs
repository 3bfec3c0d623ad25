//! The loop a handle belongs to, as the handle needs it: whether it is in debug mode, and
//! that one of its timers was cancelled. ferroloop's loop answers natively: it installs,
//! once, the link by which a handle recognises it (`install_loop_link`), so this layer
//! never names the loop's type. Any other loop (one a handle made by Python code names)
//! is asked through its Python methods, as asyncio's handles ask.
//!
//! The link is one per process rather than one per handle: a field in every Handle costs
//! every `call_soon` its store and the larger object (`bench/instructions.py`).

use std::sync::OnceLock;

use pyo3::prelude::*;

pub(crate) trait HandleLoop {
    fn debug(&self) -> bool;
    /// One of the timers in its heap was cancelled (`loop._timer_handle_cancelled`).
    fn timer_cancelled(&self, py: Python<'_>);
}

/// Recognises ferroloop's loop: None for any other object.
pub(crate) type LoopLink = for<'a, 'py> fn(&'a Bound<'py, PyAny>) -> Option<&'a dyn HandleLoop>;

static LINK: OnceLock<LoopLink> = OnceLock::new();

/// Called once, when the extension module is set up.
pub(crate) fn install_loop_link(link: LoopLink) {
    let _ = LINK.set(link);
}

/// `loop_`, natively, if it is ferroloop's loop.
pub(crate) fn owner<'a>(loop_: &'a Bound<'_, PyAny>) -> Option<&'a dyn HandleLoop> {
    LINK.get().and_then(|link| link(loop_))
}
