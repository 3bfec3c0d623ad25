//! Locking that survives a panic under the lock.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`. A panic under the lock was already turned into an exception at the panic
/// boundary; the state it guards is plain data and still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
