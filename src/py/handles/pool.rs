//! Spare Handles, refilled by `call_soon` instead of making new ones.
//!
//! A busy loop makes a Handle for each `call_soon` and drops it once it has run. Making
//! one costs an object allocation and set-up, dropping it a deallocation: a fifth of a
//! `call_soon` chain's instructions (callgrind). A handle that has run is
//! no longer observable when the loop holds its only reference and no weak reference
//! points to it, so the loop may keep the object, emptied, and hand it out again; to
//! Python that is a fresh handle that happens to reuse an address, as freed memory does.
//!
//! How many it keeps follows the traffic: as many as the pass runs, never fewer than
//! `SPARE_HANDLES`. A thread flooding `call_soon_threadsafe` queues a switch interval's
//! worth of callbacks between two passes, and refilling the last burst's handles spares
//! the next burst its allocations, and CPython the collections those allocations count
//! towards. The next pass lets go of those beyond its own batch, so a burst's handles
//! outlive it by one pass at most.
//!
//! Only this loop's plain Handles and `_ThreadSafeHandle`s qualify (not TimerHandles, not
//! user subclasses), each kept to be refilled as its own kind, and none in debug mode,
//! where a handle records where it was made. Spare handles hold nothing but their loop;
//! the loop's `__traverse__` speaks for them (`Queued::visit`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyTypeInfo, PyVisit};

use super::handle::{Emptied, Handle};
use super::queued::Queued;
use super::threadsafe::ThreadSafeHandle;
use crate::py::gc;

/// Kept whatever the traffic: enough for steady traffic, where each callback's handle is
/// refilled by the next one's `call_soon`.
const SPARE_HANDLES: usize = 64;

/// Which kind of handle a spare one is, and the pool it goes back to.
#[derive(Clone, Copy)]
pub(crate) enum SpareKind {
    Plain,
    ThreadSafe,
}

pub(crate) struct HandlePool {
    plain: Vec<Queued<Handle>>,
    threadsafe: Vec<Queued<Handle>>,
    limit: usize,
}

impl Default for HandlePool {
    fn default() -> Self {
        HandlePool {
            plain: Vec::new(),
            threadsafe: Vec::new(),
            limit: SPARE_HANDLES,
        }
    }
}

impl HandlePool {
    /// Lets the pool keep as many handles of each kind as a pass of `batch` entries may
    /// give back, and no fewer than `SPARE_HANDLES`. Spare handles beyond that go into
    /// `surplus`, to be dropped once the caller lets go of the pool.
    pub(crate) fn limit_to(&mut self, batch: usize, surplus: &mut Vec<Queued<Handle>>) {
        let limit = batch.max(SPARE_HANDLES);
        if limit < self.limit {
            for spare in [&mut self.plain, &mut self.threadsafe] {
                if spare.len() > limit {
                    surplus.extend(spare.drain(limit..));
                }
            }
        }
        self.limit = limit;
    }

    pub(crate) fn take(&mut self, kind: SpareKind) -> Option<Queued<Handle>> {
        self.of(kind).pop()
    }

    fn of(&mut self, kind: SpareKind) -> &mut Vec<Queued<Handle>> {
        match kind {
            SpareKind::Plain => &mut self.plain,
            SpareKind::ThreadSafe => &mut self.threadsafe,
        }
    }

    /// Keeps `handle`, emptied, if there is room and nothing else can see it, leaving what
    /// it held in `held`, to be released once the caller lets go of the pool: finalizers
    /// may run arbitrary code. Gives the handle back otherwise.
    pub(crate) fn keep(
        &mut self,
        handle: Queued<Handle>,
        owner: &Bound<'_, PyAny>,
        held: &mut Emptied,
    ) -> Result<(), Queued<Handle>> {
        let py = owner.py();
        let Some(kind) = unobserved(handle.get().bind(py), owner) else {
            return Err(handle);
        };
        let limit = self.limit;
        let spare = self.of(kind);
        if spare.len() >= limit {
            return Err(handle);
        }
        handle.get().get().empty_into(py, held);
        spare.push(handle);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.plain.len() + self.threadsafe.len()
    }

    pub(crate) fn drain(&mut self) -> Vec<Queued<Handle>> {
        let mut all = std::mem::take(&mut self.plain);
        all.append(&mut self.threadsafe);
        all
    }

    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.plain
            .iter()
            .chain(&self.threadsafe)
            .try_for_each(|h| h.visit(visit))
    }
}

/// The kind of a spare handle `handle` may become: one of `owner`'s plain Handles or
/// `_ThreadSafeHandle`s that only the caller's reference reaches.
fn unobserved(handle: &Bound<'_, Handle>, owner: &Bound<'_, PyAny>) -> Option<SpareKind> {
    let py = owner.py();
    let obj = handle.as_ptr();
    // SAFETY: `obj` is a live object; this reads its type pointer.
    let ty = unsafe { ffi::Py_TYPE(obj) };
    let kind = if ty == Handle::type_object_raw(py) {
        SpareKind::Plain
    } else if ty == ThreadSafeHandle::type_object_raw(py) {
        SpareKind::ThreadSafe
    } else {
        return None;
    };
    (gc::is_unobserved(obj) && handle.get().loop_.as_ptr() == owner.as_ptr()).then_some(kind)
}
