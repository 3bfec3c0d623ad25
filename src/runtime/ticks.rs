//! Timestamps cheap enough to take around every callback. Where the kernel itself keeps
//! time with the CPU's time-stamp counter (it then trusts the counter to run at a constant
//! rate on every core), a tick is one count of it; elsewhere a tick is a nanosecond of
//! CLOCK_MONOTONIC. Ticks only measure spans: they never become `loop.time()`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

use super::sys;

/// Nanoseconds per tick, found once per process.
static SCALE: OnceLock<f64> = OnceLock::new();
/// Whether ticks are the time-stamp counter; read on every `now()`.
static COUNTER: AtomicBool = AtomicBool::new(false);

/// Chooses the tick source; every other function here assumes it has run.
pub(crate) fn init() {
    SCALE.get_or_init(|| {
        if counter_is_clock() {
            if let Some(scale) = calibrate() {
                COUNTER.store(true, Relaxed);
                return scale;
            }
        }
        1.0
    });
}

#[inline]
pub(crate) fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if COUNTER.load(Relaxed) {
        return sys::time_stamp_counter();
    }
    sys::monotonic_ns() as u64
}

fn scale() -> f64 {
    *SCALE.get().unwrap_or(&1.0)
}

pub(crate) fn to_secs(ticks: u64) -> f64 {
    ticks as f64 * scale() * 1e-9
}

pub(crate) fn to_duration(ticks: u64) -> Duration {
    Duration::from_nanos((ticks as f64 * scale()) as u64)
}

/// Ticks in `secs` seconds; None (never reached) for a negative or non-finite span.
pub(crate) fn from_secs(secs: f64) -> Option<u64> {
    let ticks = secs * 1e9 / scale();
    (ticks.is_finite() && ticks >= 0.0).then_some(ticks as u64)
}

fn counter_is_clock() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|source| source.trim() == "tsc")
}

/// Nanoseconds per count of the time-stamp counter, measured against CLOCK_MONOTONIC over
/// a short spin: long enough that the two clock reads' own cost is lost in it.
fn calibrate() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        const SPAN_NS: i64 = 200_000;
        let (ns0, tsc0) = (sys::monotonic_ns(), sys::time_stamp_counter());
        let mut ns1 = ns0;
        while ns1 - ns0 < SPAN_NS {
            ns1 = sys::monotonic_ns();
        }
        let tsc1 = sys::time_stamp_counter();
        let scale = (ns1 - ns0) as f64 / tsc1.wrapping_sub(tsc0) as f64;
        return (scale.is_finite() && scale > 0.0).then_some(scale);
    }
    #[allow(unreachable_code)]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_measure_a_sleep() {
        init();
        let start = now();
        std::thread::sleep(Duration::from_millis(20));
        let secs = to_secs(now() - start);
        assert!((0.019..0.5).contains(&secs), "{secs}");
    }

    #[test]
    fn seconds_round_trip() {
        init();
        let ticks = from_secs(0.25).unwrap();
        assert!((to_secs(ticks) - 0.25).abs() < 1e-6);
        assert_eq!(from_secs(-1.0), None);
        assert_eq!(from_secs(f64::NAN), None);
    }
}
