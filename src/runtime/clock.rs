//! `loop.time()`: the clock of `time.monotonic()`, at full nanosecond resolution.

use std::time::Duration;

use super::sys;

/// Seconds on CLOCK_MONOTONIC, converted exactly as CPython converts its nanosecond
/// timestamps to float, so `loop.time()` and `time.monotonic()` agree to the last bit.
pub(crate) fn monotonic() -> f64 {
    ns_to_seconds(sys::monotonic_ns())
}

fn ns_to_seconds(ns: i64) -> f64 {
    if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000) as f64
    } else {
        ns as f64 / 1e9
    }
}

pub(crate) fn resolution() -> f64 {
    sys::monotonic_resolution()
}

/// The gap between a non-negative finite `x` and the next float up (`math.ulp`): once a
/// clock reading is this coarse, adding less to it changes nothing.
pub(crate) fn ulp(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1) - x
}

/// A poll timeout from seconds (`None`: block; zero or less: just check).
pub(crate) fn timeout(seconds: Option<f64>) -> Option<Duration> {
    seconds.map(|t| {
        if t > 0.0 {
            Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_is_math_ulp() {
        assert_eq!(ulp(1.0), f64::EPSILON);
        assert_eq!(ulp(0.0), f64::from_bits(1));
        assert_eq!(ulp(2.0_f64.powi(30)), 2.0_f64.powi(-22));
    }

    #[test]
    fn monotonic_never_goes_back() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a);
    }

    #[test]
    fn timeouts_from_seconds() {
        assert_eq!(timeout(None), None);
        assert_eq!(timeout(Some(0.0)), Some(Duration::ZERO));
        assert_eq!(timeout(Some(-1.0)), Some(Duration::ZERO));
        assert_eq!(timeout(Some(0.0001)), Some(Duration::from_micros(100)));
        assert_eq!(timeout(Some(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(timeout(Some(f64::INFINITY)), Some(Duration::MAX));
    }

    #[test]
    fn whole_seconds_convert_exactly() {
        assert_eq!(ns_to_seconds(3_000_000_000), 3.0);
        assert_eq!(ns_to_seconds(1_500_000_000), 1.5);
    }
}
