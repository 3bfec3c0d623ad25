//! How one pass of the loop waits for I/O: for how long, and whether to ask the kernel at
//! all.
//!
//! asyncio's `_run_once` polls on every pass, with a zero timeout when callbacks are ready,
//! else until the nearest timer (capped at `MAXIMUM_SELECT_TIMEOUT`), else forever. A busy
//! loop whose only fds are its own (the signal self-pipe) has nothing to learn from most
//! of those polls, so it skips them and checks its own fds every `INTERNAL_POLL_EVERY`
//! passes; once the user has registered an fd, every pass polls.

use std::time::Duration;

use super::clock;
use crate::constants::MAXIMUM_SELECT_TIMEOUT;

/// While busy with only the loop's own fds registered, one pass in this many polls them.
pub(crate) const INTERNAL_POLL_EVERY: u32 = 32;

/// What the pass does about I/O.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Wait {
    /// No syscall this pass.
    Skip,
    /// Poll, waiting up to this long (`None`: until woken; zero: just check).
    Poll(Option<Duration>),
}

impl Wait {
    #[inline(always)]
    pub(crate) fn blocks(self) -> bool {
        matches!(self, Wait::Poll(t) if t != Some(Duration::ZERO))
    }
}

/// What the registry says of the fds it watches.
#[derive(Clone, Copy)]
pub(crate) struct Fds {
    pub(crate) any: bool,
    pub(crate) user: bool,
}

#[derive(Default)]
pub(crate) struct PassPlan {
    passes_since_poll: u32,
}

impl PassPlan {
    /// The wait of a pass that has callbacks ready (`busy`, or the loop is stopping) or
    /// else the next timer due at `next_timer`, by the clock `now` reads. Each question is
    /// asked only if the answer matters: this runs on every pass.
    #[inline(always)]
    pub(crate) fn next(
        &mut self,
        busy: bool,
        next_timer: impl FnOnce() -> Option<f64>,
        now: impl FnOnce() -> f64,
        fds: impl FnOnce() -> Fds,
    ) -> Wait {
        let timeout = if busy {
            Some(0.0)
        } else {
            next_timer().map(|when| (when - now()).clamp(0.0, MAXIMUM_SELECT_TIMEOUT))
        };
        let timeout = clock::timeout(timeout);
        let blocking = timeout != Some(Duration::ZERO);
        let must_poll = blocking || {
            let fds = fds();
            fds.user || (fds.any && self.passes_since_poll >= INTERNAL_POLL_EVERY)
        };
        if must_poll {
            self.passes_since_poll = 0;
            Wait::Poll(timeout)
        } else {
            self.passes_since_poll += 1;
            Wait::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_FDS: Fds = Fds {
        any: false,
        user: false,
    };
    const OWN_FDS: Fds = Fds {
        any: true,
        user: false,
    };
    const USER_FDS: Fds = Fds {
        any: true,
        user: true,
    };

    #[test]
    fn an_idle_loop_waits_for_the_next_timer_or_forever() {
        let mut plan = PassPlan::default();
        let wait = plan.next(false, || Some(12.5), || 10.0, || NO_FDS);
        assert_eq!(wait, Wait::Poll(Some(Duration::from_secs_f64(2.5))));
        assert!(wait.blocks());
        assert_eq!(
            plan.next(false, || None, || 0.0, || NO_FDS),
            Wait::Poll(None)
        );
        let overdue = plan.next(false, || Some(1.0), || 5.0, || USER_FDS);
        assert_eq!(overdue, Wait::Poll(Some(Duration::ZERO)));
        assert!(!overdue.blocks());
    }

    #[test]
    fn the_wait_is_capped() {
        let mut plan = PassPlan::default();
        let cap = Duration::from_secs_f64(MAXIMUM_SELECT_TIMEOUT);
        assert_eq!(
            plan.next(false, || Some(1e12), || 0.0, || NO_FDS),
            Wait::Poll(Some(cap))
        );
    }

    #[test]
    fn a_busy_loop_polls_its_own_fds_now_and_then() {
        let mut plan = PassPlan::default();
        let mut polls = 0;
        for _ in 0..(INTERNAL_POLL_EVERY + 1) * 3 {
            if plan.next(true, || unreachable!(), || unreachable!(), || OWN_FDS) != Wait::Skip {
                polls += 1;
            }
        }
        assert_eq!(polls, 3);
        assert_eq!(plan.next(true, || None, || 0.0, || NO_FDS), Wait::Skip);
    }

    #[test]
    fn a_busy_loop_with_user_fds_polls_every_pass() {
        let mut plan = PassPlan::default();
        for _ in 0..INTERNAL_POLL_EVERY * 2 {
            assert_eq!(
                plan.next(true, || Some(0.0), || 0.0, || USER_FDS),
                Wait::Poll(Some(Duration::ZERO))
            );
        }
    }
}
