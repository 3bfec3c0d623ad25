//! ferroloop: asyncio's event loop in Rust.
//!
//! `runtime` is the Python-free core (poller, timers, ready queue, waker, clock);
//! `py` presents it to Python as asyncio's Loop, Handle and TimerHandle.

mod constants;
mod py;
mod runtime;

use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

/// Panics inside the panic boundary, so tests can prove a Rust panic reaches Python as
/// RuntimeError rather than as an abort or a PanicException.
#[pyfunction]
fn _check_panic_boundary() -> PyResult<()> {
    py::errors::shield(|| panic!("panic boundary check"))
}

#[pymodule]
fn _ferroloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<py::event_loop::LoopCore>()?;
    py::handles::install_loop_link(py::event_loop::links::handle_link);
    py::fastcall::install(&m.py().get_type::<py::event_loop::LoopCore>())?;
    m.add_class::<py::handles::Handle>()?;
    m.add_class::<py::handles::TimerHandle>()?;
    m.add_class::<py::handles::ThreadSafeHandle>()?;
    m.add_class::<py::transports::StreamTransport>()?;
    m.add_class::<py::server::Acceptor>()?;
    m.add_class::<py::connect::Connector>()?;
    m.add_class::<py::sock_ops::SockWait>()?;
    m.add_class::<py::transports::TransportRegistry>()?;
    m.add_class::<py::transports::NativeMethod>()?;
    m.add_class::<py::transports::NativeAttribute>()?;
    m.add_function(wrap_pyfunction!(_check_panic_boundary, m)?)?;
    py::context::find_thread_context(m.py());
    m.add_function(wrap_pyfunction!(py::context::_thread_context_offset, m)?)?;
    m.add_function(wrap_pyfunction!(
        py::transports::_install_socket_transport,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(py::sockaddr::_socket_names, m)?)?;
    m.add_function(wrap_pyfunction!(py::connect::_connect_stream, m)?)?;
    m.add_function(wrap_pyfunction!(py::connect::_numeric_family, m)?)?;
    m.add_function(wrap_pyfunction!(py::sock_ops::_sock_recv, m)?)?;
    m.add_function(wrap_pyfunction!(py::sock_ops::_sock_sendall, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "_asyncio_constants",
        constants::mirrored().into_py_dict(m.py())?,
    )?;
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
