//! Handles in the loop's queues, hidden from CPython's cycle collector while only the loop
//! holds them.
//!
//! Every `call_soon` and `call_later` makes a Handle and a copy of the current context, and
//! CPython tracks both. With many queued, each collection rescans all of them, and
//! `perf` showed the collector taking close to half of a `call_soon` batch. A queued
//! handle that nothing but the loop refers to cannot be the only way into a garbage cycle
//! that does not also run through the loop, so the loop can speak for it: `hide` untracks
//! the handle (and the context copy it alone owns), and the loop's `__traverse__` visits
//! the handle's references in its place (`visit`). That is exact only while the queue's
//! reference is the handle's only one, so a shared handle is visited as itself instead (a
//! no-op for an untracked object: a missed cycle, never a premature free), and whenever a
//! handle leaves the loop, or is shown to Python code, while someone else holds it, it is
//! tracked again (`reveal`). Handles the loop did not make (I/O readers and writers,
//! signal handles) stay tracked and are visited as themselves. A running loop's queues
//! are not visited at all: the loop is alive, and so is all it holds (`LoopCore::traverse`).

use std::mem::ManuallyDrop;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyClass, PyTraverseError, PyVisit};

use super::handle::Handle;
use super::timer::TimerHandle;
use crate::py::gc::{is_context, is_shared, is_tracked, track};

/// Untracks a handle the loop has just made, and its context when the handle alone holds
/// it (a copy made for it, not a context the caller passed).
#[inline]
fn hide(handle: &Bound<'_, Handle>) {
    let context = handle.get().context_ptr(handle.py());
    if is_context(context) && !is_shared(context) && is_tracked(context) {
        // SAFETY: the context is live, tracked, and only this handle refers to it;
        // `Handle`'s Drop (and `reveal_context`) track it again before anyone else can
        // hold it or it is freed (CPython's Context dealloc requires a tracked object).
        unsafe { ffi::PyObject_GC_UnTrack(context.cast()) };
    }
    if is_tracked(handle.as_ptr()) {
        // SAFETY: the handle is a live, tracked GC object; PyO3's dealloc untracks with
        // the checked `PyObject_GC_UnTrack`, so freeing it untracked is fine.
        unsafe { ffi::PyObject_GC_UnTrack(handle.as_ptr().cast()) };
    }
}

/// Tracks a handle and its context again: someone besides the loop holds it now.
fn reveal(handle: &Bound<'_, Handle>) {
    handle.get().reveal_context(handle.py());
    track(handle.as_ptr());
}

fn reveal_if_shared<T: HandleKind>(obj: &Bound<'_, T>) {
    if is_shared(obj.as_ptr()) && !is_tracked(obj.as_ptr()) {
        reveal(T::handle(obj));
    }
}

/// A strong reference from one of the loop's queues.
pub(crate) struct Queued<T: HandleKind>(ManuallyDrop<Py<T>>);

/// What a queue holds: a Handle (or a subclass: `call_soon_threadsafe`'s on 3.14) or a
/// TimerHandle. Its Handle part is known from the type, without a check per object: a
/// subclass's instance fails the exact-type check and costs a walk of its MRO, which the
/// collector paid for every queued thread-safe handle each time it traversed the loop.
pub(crate) trait HandleKind: PyClass {
    fn handle<'a, 'py>(obj: &'a Bound<'py, Self>) -> &'a Bound<'py, Handle>;
}

impl HandleKind for Handle {
    #[inline(always)]
    fn handle<'a, 'py>(obj: &'a Bound<'py, Self>) -> &'a Bound<'py, Handle> {
        obj
    }
}

impl HandleKind for TimerHandle {
    #[inline(always)]
    fn handle<'a, 'py>(obj: &'a Bound<'py, Self>) -> &'a Bound<'py, Handle> {
        obj.as_super()
    }
}

impl Queued<Handle> {
    /// Queues a handle made elsewhere (an fd's reader or writer); it stays tracked.
    pub(crate) fn tracked(handle: Py<Handle>) -> Self {
        Queued(ManuallyDrop::new(handle))
    }
}

impl Queued<TimerHandle> {
    /// The same reference, moved from the timer heap to the ready queue.
    pub(crate) fn into_handle(self, py: Python<'_>) -> Queued<Handle> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Py is moved out once.
        let timer = unsafe { ManuallyDrop::take(&mut this.0) };
        Queued(ManuallyDrop::new(
            timer.into_bound(py).into_super().unbind(),
        ))
    }
}

impl<T: HandleKind> Queued<T> {
    /// Queues a handle the loop made itself, hidden from the collector. Inlined into
    /// `call_soon`, which the compiler does not always do by itself.
    #[inline(always)]
    pub(crate) fn hidden(handle: &Bound<'_, T>) -> Self {
        hide(T::handle(handle));
        Queued(ManuallyDrop::new(handle.clone().unbind()))
    }

    pub(crate) fn get(&self) -> &Py<T> {
        &self.0
    }

    /// The reference itself, for a handle leaving the loop's keeping to be queued again.
    pub(crate) fn into_inner(self) -> Py<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Py is moved out once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }

    /// A reference for Python code (`_ready`, `_scheduled`): the handle is shared from now.
    pub(crate) fn share(&self, py: Python<'_>) -> Py<T> {
        reveal(T::handle(self.0.bind(py)));
        self.0.clone_ref(py)
    }

    /// Tracks the handle again if someone else holds it (before a full collection, so
    /// cycles through a shared queued handle of a dropped, unclosed loop are found).
    pub(crate) fn reveal_if_shared(&self, py: Python<'_>) {
        reveal_if_shared(self.0.bind(py));
    }

    /// The loop's `__traverse__` for this reference: the handle itself when the collector
    /// sees it, otherwise what the handle refers to, which only the queue reaches.
    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        let ptr = self.0.as_ptr();
        if is_tracked(ptr) || is_shared(ptr) {
            return visit.call(&*self.0);
        }
        // SAFETY: the collector calls `__traverse__` with the GIL held.
        let py = unsafe { Python::assume_attached() };
        // This is the loop's `__traverse__`, as `visit_references` requires.
        T::handle(self.0.bind(py)).get().visit_references(visit)
    }
}

impl<T: HandleKind> Queued<T> {
    /// Drops the queue's reference, as `Drop` does, with the GIL already in hand.
    pub(crate) fn drop_in(self, py: Python<'_>) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Py is moved out once.
        let handle = unsafe { ManuallyDrop::take(&mut this.0) };
        reveal_if_shared(&handle.into_bound(py));
    }
}

impl<T: HandleKind> Drop for Queued<T> {
    fn drop(&mut self) {
        // SAFETY: `self` is being dropped, so the Py is taken out exactly once.
        let handle = unsafe { ManuallyDrop::take(&mut self.0) };
        Python::attach(|py| reveal_if_shared(&handle.into_bound(py)));
    }
}
