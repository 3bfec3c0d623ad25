//! `_ThreadSafeHandle` (3.14+): a handle whose callback runs holding a lock.

use pyo3::prelude::*;

use super::handle::{asyncio_class, cancel, Handle};
use crate::py::errors::shield;
use crate::py::pyapi;
use crate::runtime::run_lock::RunLock;

/// What `call_soon_threadsafe` returns on 3.14+, as asyncio's `_ThreadSafeHandle`: its
/// callback runs holding a reentrant lock, which `cancel()` and `cancelled()` take too,
/// so a thread that cancels a running callback waits until it has finished. One that only
/// the loop can reach runs without it (`run::only_the_loop_reaches`): no other thread can
/// wait on it. One that has run, unobserved, is kept by `HandlePool` and refilled as a
/// `_ThreadSafeHandle`: its lock is free by then, as nobody else can reach it to take it.
#[pyclass(frozen, module = "ferroloop._ferroloop", extends = Handle, name = "_ThreadSafeHandle")]
pub(crate) struct ThreadSafeHandle {
    lock: RunLock,
}

/// A hold of a `RunLock`, waited for with the GIL released, let go when dropped.
struct Held<'a>(&'a RunLock);

impl<'a> Held<'a> {
    fn new(py: Python<'_>, lock: &'a RunLock) -> Self {
        if !lock.try_acquire() {
            py.detach(|| lock.acquire());
        }
        Held(lock)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl ThreadSafeHandle {
    /// `body` (the handle's run), holding the handle's lock.
    pub(super) fn run_locked(
        slf: &Bound<'_, Self>,
        body: impl FnOnce() -> PyResult<bool>,
    ) -> PyResult<bool> {
        let _held = Held::new(slf.py(), &slf.get().lock);
        body()
    }

    /// `base`, made by `Handle::create`, as a thread-safe handle. Inlined, as `create` is.
    #[inline(always)]
    pub(crate) fn around(mut base: Handle) -> PyClassInitializer<ThreadSafeHandle> {
        base.threadsafe = true;
        PyClassInitializer::from(base).add_subclass(ThreadSafeHandle {
            lock: RunLock::default(),
        })
    }
}

#[pymethods]
impl ThreadSafeHandle {
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let _held = Held::new(slf.py(), &slf.get().lock);
            cancel(slf.as_super())
        })
    }

    fn cancelled(slf: &Bound<'_, Self>) -> bool {
        let _held = Held::new(slf.py(), &slf.get().lock);
        slf.as_super().get().is_cancelled()
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::threadsafe_handle_type)
    }
}
