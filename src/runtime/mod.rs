//! The Python-free core of the event loop, and the scheduling decisions it makes: the
//! epoll poller and the eventfd waker (together, `selector`), the fd registry and the
//! interest epoll is told (`io_registry`), how each pass waits (`pass_plan`), the timer
//! heap, the ready queue, the monotonic clock, the counters, the lock a thread-safe
//! handle holds while it runs, and when a thread that floods the loop stops for it
//! (`handoff`).
//!
//! What lets other threads see into the loop is here too: `ticks` (timestamps cheap
//! enough for every callback), `activity` (the always-on counters and the running
//! callback, in atomics), and the threads that read it without the GIL, `watchdog` and
//! `monitor`.
//!
//! Nothing here imports pyo3: every type is generic over what it schedules, so plain
//! `cargo test` covers it. Every syscall goes through `sys`, the one place with `unsafe`
//! around the kernel interface. What a Handle is, how a callback runs and how errors are
//! reported belong to `py/`.

pub(crate) mod activity;
pub(crate) mod clock;
pub(crate) mod handoff;
pub(crate) mod io_registry;
pub(crate) mod monitor;
pub(crate) mod pass_plan;
pub(crate) mod poller;
pub(crate) mod ready;
pub(crate) mod run_lock;
pub(crate) mod selector;
pub(crate) mod stats;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod ticks;
pub(crate) mod timers;
pub(crate) mod waker;
pub(crate) mod watchdog;
