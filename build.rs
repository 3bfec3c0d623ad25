//! Gives this crate PyO3's cfgs (`Py_3_12`, `Py_GIL_DISABLED`, ...) for the CPython it is
//! built against: `py::gc` reads a reference count as that CPython's headers write it.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
