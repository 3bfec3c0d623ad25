//! ferroloop: asyncio's event loop in Rust.
//!
//! `runtime` is the Python-free core (poller, timers, ready queue, waker, clock);
//! `py` presents it to Python as asyncio's Loop, Handle and TimerHandle.

mod constants;
pub mod py;
pub mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _ferroloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<py::event_loop::LoopCore>()?;
    m.add_class::<py::handles::Handle>()?;
    m.add_class::<py::handles::TimerHandle>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "build_profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    Ok(())
}
