//! Write flow control (`_FlowControlMixin`): pausing and resuming the protocol around the
//! write buffer's watermarks.

use pyo3::prelude::*;
use pyo3::types::PyInt;

use super::{Callee, StreamTransport};
use crate::py::handles::is_exit;
use crate::py::messages;
use crate::py::report::ExceptionContext;

impl StreamTransport {
    /// `_maybe_pause_protocol`.
    pub(super) fn maybe_pause_protocol(&self, py: Python<'_>) -> PyResult<()> {
        {
            let mut st = self.state();
            if st.buffer.len() <= st.high_water || st.protocol_paused {
                return Ok(());
            }
            st.protocol_paused = true;
        }
        self.call_flow_control(py, "pause_writing")
    }

    /// `_maybe_resume_protocol`.
    pub(super) fn maybe_resume_protocol(&self, py: Python<'_>) -> PyResult<()> {
        {
            let mut st = self.state();
            if !(st.protocol_paused && st.buffer.len() <= st.low_water) {
                return Ok(());
            }
            st.protocol_paused = false;
        }
        self.call_flow_control(py, "resume_writing")
    }

    fn call_flow_control(&self, py: Python<'_>, method: &str) -> PyResult<()> {
        let Some(Callee { shell, protocol }) = self.callee(py) else {
            return Ok(());
        };
        match protocol.call_method0(py, method) {
            Ok(_) => Ok(()),
            Err(err) if is_exit(py, &err) => Err(err),
            Err(err) => ExceptionContext::new(py, &messages::flow_control_failed(method), &err)?
                .with("transport", shell)?
                .with("protocol", protocol)?
                .report(&self.loop_any(py)),
        }
    }

    /// Sets limits the Python half validated, then pauses the protocol if now above them.
    pub(super) fn set_write_buffer_limits(
        &self,
        high: &Bound<'_, PyAny>,
        low: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = high.py();
        let (high_water, low_water) = (threshold(high)?, threshold(low)?);
        let limits = (low, high).into_pyobject(py)?.into_any().unbind();
        let old = {
            let mut st = self.state();
            st.high_water = high_water;
            st.low_water = low_water;
            st.limits.replace(limits)
        };
        drop(old);
        self.maybe_pause_protocol(py)
    }
}

/// The integer a buffer size is compared with in place of a validated (non-negative)
/// limit: its floor, capped, so `size > limit` and `size <= limit` come out as asyncio's
/// comparisons with the limit itself do (a float, an int past any size, infinity).
fn threshold(limit: &Bound<'_, PyAny>) -> PyResult<usize> {
    if let Ok(n) = limit.extract::<usize>() {
        return Ok(n);
    }
    if limit.is_instance_of::<PyInt>() {
        return Ok(usize::MAX);
    }
    let x: f64 = limit.extract()?;
    // `as` saturates: infinity and anything past usize::MAX become usize::MAX.
    Ok(x.floor() as usize)
}
