//! The Python-free core of the event loop: the epoll poller, the eventfd waker, the timer
//! heap, the ready queue, the monotonic clock, the counters, and the lock a thread-safe
//! handle holds while it runs.
//!
//! Nothing here imports pyo3: every type is generic over what it schedules, so plain
//! `cargo test` covers it. Every syscall goes through `sys`, the one place with `unsafe`
//! around the kernel interface. This layer owns *mechanism*; asyncio's *policy* (what a
//! Handle is, when a callback runs, how errors are reported) belongs to `py/`.

pub(crate) mod clock;
pub(crate) mod io_registry;
pub(crate) mod pass_plan;
pub(crate) mod poller;
pub(crate) mod ready;
pub(crate) mod run_lock;
pub(crate) mod selector;
pub(crate) mod stats;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod timers;
pub(crate) mod waker;
