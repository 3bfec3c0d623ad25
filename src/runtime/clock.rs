//! `loop.time()`: the clock of `time.monotonic()`, at full nanosecond resolution.

use super::sys;

/// Seconds on CLOCK_MONOTONIC, converted exactly as CPython converts its nanosecond
/// timestamps to float, so `loop.time()` and `time.monotonic()` agree to the last bit.
pub fn monotonic() -> f64 {
    ns_to_seconds(sys::monotonic_ns())
}

fn ns_to_seconds(ns: i64) -> f64 {
    if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000) as f64
    } else {
        ns as f64 / 1e9
    }
}

pub fn resolution() -> f64 {
    sys::monotonic_resolution()
}

/// A poll timeout in whole milliseconds, rounded *up* so that a timer never fires early
/// (selectors' epoll does the same `ceil`).
pub fn timeout_ms(timeout: Option<f64>) -> i32 {
    match timeout {
        None => -1,
        Some(t) if t <= 0.0 => 0,
        Some(t) => (t * 1e3).ceil().min(i32::MAX as f64) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_never_goes_back() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a);
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(0.0)), 0);
        assert_eq!(timeout_ms(Some(-1.0)), 0);
        assert_eq!(timeout_ms(Some(0.0001)), 1);
        assert_eq!(timeout_ms(Some(0.001)), 1);
        assert_eq!(timeout_ms(Some(1.5)), 1500);
    }

    #[test]
    fn whole_seconds_convert_exactly() {
        assert_eq!(ns_to_seconds(3_000_000_000), 3.0);
        assert_eq!(ns_to_seconds(1_500_000_000), 1.5);
    }
}
