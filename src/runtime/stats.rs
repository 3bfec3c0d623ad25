//! Counters cheap enough to leave on: plain integers bumped on the loop thread, read
//! with the GIL (those other threads read are in `activity`).

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// Timers moved to the ready queue because they were due.
    pub(crate) timers_fired: u64,
    /// Waits that blocked in the kernel, and waits that only checked (timeout 0).
    pub(crate) blocking_polls: u64,
    pub(crate) nonblocking_polls: u64,
    /// Readiness events delivered by the poller.
    pub(crate) io_events: u64,
    /// Handles `call_soon` refilled rather than made (the loop's spare handles).
    pub(crate) handles_reused: u64,
}
