//! Tunables, named and valued as in CPython's asyncio so behaviour matches it.

/// Compact the timer heap only when it holds more than this many timers...
pub const MIN_SCHEDULED_TIMER_HANDLES: usize = 100;
/// ...and more than this fraction of them are cancelled (`base_events.py`).
pub const MIN_CANCELLED_TIMER_HANDLES_FRACTION: f64 = 0.5;
/// The longest single poll, in seconds (`base_events.MAXIMUM_SELECT_TIMEOUT`).
pub const MAXIMUM_SELECT_TIMEOUT: f64 = 24.0 * 3600.0;
