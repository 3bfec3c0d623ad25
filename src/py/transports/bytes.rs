//! Python's buffer protocol: the bytes of a bytes-like object, for `write` (any buffer, as
//! `socket.send` takes) and `recv_into` (the protocol's writable buffer); and the `bytes`
//! a read makes.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::constants::MAX_READ;
use crate::runtime::sys;

/// The read buffer's alignment.
const PAGE: usize = 4096;

thread_local! {
    /// The read buffer: one per thread, so one per loop. Reads copy out of it into the
    /// `bytes` they hand over before any Python code runs.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One `recv` of at most `len` bytes from `fd`, as `bytes`; `len` is at most `MAX_READ`.
pub(crate) fn recv_bytes(py: Python<'_>, fd: RawFd, len: usize) -> io::Result<Bound<'_, PyBytes>> {
    let len = len.min(MAX_READ);
    let read = |buf: &mut [u8]| sys::recv(fd, buf).map(|n| PyBytes::new(py, &buf[..n]));
    READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < MAX_READ + PAGE {
                buf.resize(MAX_READ + PAGE, 0);
            }
            // The kernel's copy into a page-aligned buffer runs several times faster than
            // into malloc's 16-byte alignment (the bench's large echo rows).
            let start = buf.as_ptr().align_offset(PAGE);
            read(&mut buf[start..start + len])
        }
        // Only a nested read could hold it; give it a buffer of its own.
        Err(_) => read(&mut vec![0u8; len]),
    })
}

/// Calls `f` with the address and length of `obj`'s buffer, exported with `flags` and
/// released afterwards.
fn with_buffer<R>(
    obj: &Bound<'_, PyAny>,
    flags: std::os::raw::c_int,
    f: impl FnOnce(*mut u8, usize) -> R,
) -> PyResult<R> {
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: `view` is writable storage for a Py_buffer; on success it is released below.
    if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) } < 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    // SAFETY: PyObject_GetBuffer succeeded, so `view` is initialised.
    let mut view = unsafe { view.assume_init() };
    let result = f(
        view.buf.cast::<u8>(),
        usize::try_from(view.len).unwrap_or(0),
    );
    // SAFETY: `view` was filled by PyObject_GetBuffer and is released exactly once.
    unsafe { ffi::PyBuffer_Release(&mut view) };
    Ok(result)
}

/// Calls `f` with the bytes of a bytes-like object (any buffer, as `socket.send` takes).
pub(super) fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    with_buffer(data, ffi::PyBUF_SIMPLE, |ptr, len| {
        if len == 0 {
            f(&[])
        } else {
            // SAFETY: a PyBUF_SIMPLE export is `len` contiguous bytes at `ptr`, valid
            // until `with_buffer` releases it after `f` returns.
            f(unsafe { std::slice::from_raw_parts(ptr, len) })
        }
    })
}

/// Calls `f` with the writable bytes of the protocol's buffer (`socket.recv_into`).
pub(super) fn with_writable<R>(
    buf: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut [u8]) -> R,
) -> PyResult<R> {
    with_buffer(buf, ffi::PyBUF_WRITABLE, |ptr, len| {
        if len == 0 {
            f(&mut [])
        } else {
            // SAFETY: a PyBUF_WRITABLE export is `len` contiguous writable bytes at `ptr`,
            // ours alone until `with_buffer` releases it after `f` returns.
            f(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
        }
    })
}
