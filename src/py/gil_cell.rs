//! State that is only ever touched while attached to the interpreter.
//!
//! The loop's Python-facing entry points all run with the GIL held, and the GIL is
//! released only around `epoll_wait`, which touches none of this state. So the GIL already
//! serializes every access, and a `Mutex` here would pay two atomic read-modify-writes per
//! access for nothing (a few per cent of a `call_soon`, A/B pinned to one CPU). `GilCell` is a
//! `RefCell` instead. Its non-atomic borrow flag still turns a re-entrant access (a bug:
//! the state must never be held across a call into Python) into an error, not aliasing.

use std::cell::{BorrowError, BorrowMutError, Ref, RefCell, RefMut};

use pyo3::Python;

pub(crate) struct GilCell<T>(RefCell<T>);

// SAFETY: the contents are reached only through `borrow_mut`/`try_borrow_mut`, which take
// a `Python` token, so the calling thread is attached and holds the GIL. The GIL lets one
// thread at a time run, so the RefCell's flag and contents are never accessed concurrently.
// The extension declares that it needs the GIL (PyO3's default), so a free-threaded build
// of CPython re-enables the GIL when it loads us.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        GilCell(RefCell::new(value))
    }

    pub(crate) fn borrow_mut<'a>(&'a self, _py: Python<'_>) -> RefMut<'a, T> {
        self.0.borrow_mut()
    }

    pub(crate) fn try_borrow_mut<'a>(
        &'a self,
        _py: Python<'_>,
    ) -> Result<RefMut<'a, T>, BorrowMutError> {
        self.0.try_borrow_mut()
    }

    /// Read access for `__traverse__`, where PyO3 gives no `Python` token.
    ///
    /// # Safety
    /// Call only from a `__traverse__` implementation: the cycle collector runs it with
    /// the GIL held, which is what makes the access exclusive.
    pub(crate) unsafe fn try_borrow_in_traverse(&self) -> Result<Ref<'_, T>, BorrowError> {
        self.0.try_borrow()
    }
}
