//! Tunables, named and valued as in CPython's asyncio so behaviour matches it.

/// Compact the timer heap only when it holds more than this many timers...
pub(crate) const MIN_SCHEDULED_TIMER_HANDLES: usize = 100;
/// ...and more than this fraction of them are cancelled (`base_events.py`).
pub(crate) const MIN_CANCELLED_TIMER_HANDLES_FRACTION: f64 = 0.5;
/// The longest single poll, in seconds (`base_events.MAXIMUM_SELECT_TIMEOUT`).
pub(crate) const MAXIMUM_SELECT_TIMEOUT: f64 = 24.0 * 3600.0;
/// The most one read takes (`selector_events._SelectorTransport.max_size`).
pub(crate) const MAX_READ: usize = 256 * 1024;
/// Writes after the connection is lost warn from this count on
/// (`constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES`).
pub(crate) const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u64 = 5;
/// `_FlowControlMixin`'s default high-water mark; the low one is a quarter of it.
pub(crate) const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Each constant with the CPython name it copies, for `tests/test_compat.py` to compare
/// with the running CPython's.
pub(crate) fn mirrored() -> [(&'static str, f64); 5] {
    [
        (
            "asyncio.base_events._MIN_SCHEDULED_TIMER_HANDLES",
            MIN_SCHEDULED_TIMER_HANDLES as f64,
        ),
        (
            "asyncio.base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION",
            MIN_CANCELLED_TIMER_HANDLES_FRACTION,
        ),
        (
            "asyncio.base_events.MAXIMUM_SELECT_TIMEOUT",
            MAXIMUM_SELECT_TIMEOUT,
        ),
        (
            "asyncio.selector_events._SelectorTransport.max_size",
            MAX_READ as f64,
        ),
        (
            "asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES",
            LOG_THRESHOLD_FOR_CONNLOST_WRITES as f64,
        ),
    ]
}
