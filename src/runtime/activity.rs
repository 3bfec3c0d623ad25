//! What the loop is doing and has done, readable by any thread without the GIL and without
//! stopping the loop: the always-on counters of `loop.stats()`, and the callback running
//! now, which the watchdog and the monitor watch.
//!
//! Only the loop thread writes the counters, so each is a load and a store rather than an
//! atomic add; readers may see one counter a pass ahead of another.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Mutex;

use super::handoff::Progress;
use super::sync::lock;
use super::ticks;

/// Upper bounds of the histograms' buckets, in nanoseconds; one more bucket holds the rest.
pub(crate) const BUCKET_BOUNDS_NS: [u64; 5] =
    [100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];
pub(crate) const BUCKETS: usize = BUCKET_BOUNDS_NS.len() + 1;

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Spans of time: how many, their sum and maximum, and a histogram. They are recorded in
/// the unit the loop measures them in (ticks, or nanoseconds), so that recording one is a
/// few comparisons and stores; a snapshot converts to nanoseconds.
pub(crate) struct Spans {
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
    /// `BUCKET_BOUNDS_NS` in this unit, and nanoseconds per unit.
    bounds: [u64; BUCKETS - 1],
    ns_per_unit: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SpansSnapshot {
    pub(crate) count: u64,
    pub(crate) sum_ns: u64,
    pub(crate) max_ns: u64,
    pub(crate) buckets: [u64; BUCKETS],
}

impl Spans {
    fn new(ns_per_unit: f64) -> Spans {
        Spans {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
            buckets: Default::default(),
            bounds: BUCKET_BOUNDS_NS.map(|ns| (ns as f64 / ns_per_unit) as u64),
            ns_per_unit,
        }
    }

    /// Records a span of `units`.
    #[inline]
    pub(crate) fn add(&self, units: u64) {
        bump(&self.count, 1);
        bump(&self.sum, units);
        if units > self.max.load(Relaxed) {
            self.max.store(units, Relaxed);
        }
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| units <= bound)
            .unwrap_or(BUCKETS - 1);
        bump(&self.buckets[bucket], 1);
    }

    pub(crate) fn snapshot(&self) -> SpansSnapshot {
        let ns = |units: u64| (units as f64 * self.ns_per_unit) as u64;
        SpansSnapshot {
            count: self.count.load(Relaxed),
            sum_ns: ns(self.sum.load(Relaxed)),
            max_ns: ns(self.max.load(Relaxed)),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
        }
    }
}

/// A callback's description, and the tick it started at, which tells whose it is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Described {
    pub(crate) started: u64,
    pub(crate) ticks: u64,
    pub(crate) text: String,
}

/// The running callback, as the loop publishes it: the tick it started at (0: none runs),
/// and the address and kind of the object that describes it, which only the GIL holder
/// may look at, and only while `started` still reads the same. The kind (below
/// `KIND_LIMIT`) shares a word with the address, in the bits an object's alignment leaves
/// zero.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Running {
    pub(crate) started: u64,
    pub(crate) address: usize,
    pub(crate) kind: u8,
}

pub(crate) const KIND_LIMIT: usize = 8;

pub(crate) struct Activity {
    callbacks: AtomicU64,
    /// How late due timers were when the loop took them, in nanoseconds.
    pub(crate) lag: Spans,
    /// How long each pass spent running its callbacks, in ticks.
    pub(crate) pass: Spans,
    slow_callbacks: AtomicU64,
    /// `slow_callback_duration`, and the shorter of it and the watchdog's threshold, in
    /// ticks: callbacks that reach the latter are worth a second look.
    slow_ticks: AtomicU64,
    notable_ticks: AtomicU64,
    watch_ticks: AtomicU64,
    longest_ticks: AtomicU64,
    longest: Mutex<Described>,
    /// The last callback that ran `notable_ticks` or longer.
    last_notable: Mutex<Described>,
    started: AtomicU64,
    running: AtomicUsize,
    /// What a watcher found running, and the task tree it last saw (for the monitor).
    described: Mutex<Described>,
    tasks: Mutex<(u64, String)>,
    /// When a monitor last asked (ticks), so the watcher knows to refresh the tasks.
    watched_at: AtomicU64,
}

/// The counters, as `loop.stats()` and the monitor report them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) passes: u64,
    pub(crate) callbacks: u64,
    pub(crate) lag: SpansSnapshot,
    pub(crate) pass: SpansSnapshot,
    pub(crate) slow_callbacks: u64,
    pub(crate) longest: Described,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        ticks::init();
        Activity {
            callbacks: AtomicU64::new(0),
            lag: Spans::new(1.0),
            pass: Spans::new(ticks::to_secs(1_000_000_000)),
            slow_callbacks: AtomicU64::new(0),
            slow_ticks: AtomicU64::new(u64::MAX),
            notable_ticks: AtomicU64::new(u64::MAX),
            watch_ticks: AtomicU64::new(u64::MAX),
            longest_ticks: AtomicU64::new(0),
            longest: Mutex::default(),
            last_notable: Mutex::default(),
            started: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            described: Mutex::default(),
            tasks: Mutex::default(),
            watched_at: AtomicU64::new(0),
        }
    }

    /// Sets `slow_callback_duration` (None: no callback counts as slow).
    pub(crate) fn set_slow_threshold(&self, ticks: Option<u64>) {
        self.slow_ticks.store(ticks.unwrap_or(u64::MAX), Relaxed);
        self.update_notable();
    }

    pub(crate) fn set_watch_threshold(&self, ticks: u64) {
        self.watch_ticks.store(ticks, Relaxed);
        self.update_notable();
    }

    fn update_notable(&self) {
        let notable = self
            .slow_ticks
            .load(Relaxed)
            .min(self.watch_ticks.load(Relaxed));
        self.notable_ticks.store(notable, Relaxed);
    }

    /// Starts timing a pass's batch of callbacks: from `resume`, the tick the previous
    /// batch finished at, for a pass that has done nothing since but its own bookkeeping
    /// (it saves reading the counter, a cost on every pass of a busy loop), else from now.
    #[inline]
    pub(crate) fn batch(&self, resume: Option<u64>) -> Batch<'_> {
        let now = resume.unwrap_or_else(ticks::now);
        Batch {
            activity: self,
            start: now,
            last: now,
            ran: 0,
            threshold: self
                .notable_ticks
                .load(Relaxed)
                .min(self.longest_ticks.load(Relaxed)),
        }
    }

    /// The running callback, if any (`started` is 0 when none runs).
    pub(crate) fn running(&self) -> Running {
        // Acquire pairs with `enter`'s release: what the loop wrote about the previous
        // callback (`last_notable`) is seen by whoever sees the next one start.
        let started = self.started.load(Acquire);
        let running = self.running.load(Relaxed);
        Running {
            started,
            address: running & !(KIND_LIMIT - 1),
            kind: (running & (KIND_LIMIT - 1)) as u8,
        }
    }

    /// How far the loop has got, for a thread waiting for it to move on
    /// (`handoff::Handoff`): the passes it has ended, and the tick the running callback
    /// started at (0 between callbacks).
    pub(crate) fn progress(&self) -> Progress {
        (self.pass.count.load(Relaxed), self.started.load(Relaxed))
    }

    /// How long the callback that started at `started` ran, if it ran a notable time.
    pub(crate) fn notable_duration(&self, started: u64) -> Option<u64> {
        let last = lock(&self.last_notable);
        (last.started == started).then_some(last.ticks)
    }

    pub(crate) fn describe(&self, described: Described) {
        *lock(&self.described) = described;
    }

    /// What was said of the callback that started at `started`: by a watcher while it
    /// ran, or by the loop when it returned after a notable time.
    pub(crate) fn description(&self, started: u64) -> Option<String> {
        if started == 0 {
            return None;
        }
        [&self.described, &self.last_notable]
            .iter()
            .find_map(|slot| {
                let described = lock(slot);
                (described.started == started).then(|| described.text.clone())
            })
    }

    pub(crate) fn set_tasks(&self, count: u64, tree: String) {
        *lock(&self.tasks) = (count, tree);
    }

    pub(crate) fn tasks(&self) -> (u64, String) {
        lock(&self.tasks).clone()
    }

    pub(crate) fn mark_watched(&self) {
        self.watched_at.store(ticks::now(), Relaxed);
    }

    /// Whether a monitor asked within the last `ticks`.
    pub(crate) fn watched_within(&self, ticks: u64) -> bool {
        let at = self.watched_at.load(Relaxed);
        at != 0 && ticks::now().saturating_sub(at) < ticks
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let pass = self.pass.snapshot();
        Snapshot {
            // Every pass that runs its batch records its duration: their count is the
            // passes'.
            passes: pass.count,
            callbacks: self.callbacks.load(Relaxed),
            lag: self.lag.snapshot(),
            pass,
            slow_callbacks: self.slow_callbacks.load(Relaxed),
            longest: lock(&self.longest).clone(),
        }
    }

    /// A callback that ran `ticks`, at least the batch's threshold: counts it as slow,
    /// keeps it for the watchdog, and makes it the longest if it is (`describe` runs only
    /// for these last two). Returns the batch's new threshold.
    #[cold]
    fn notable(&self, started: u64, ticks: u64, describe: &mut dyn FnMut() -> String) -> u64 {
        let notable = self.notable_ticks.load(Relaxed);
        if ticks >= self.slow_ticks.load(Relaxed) {
            bump(&self.slow_callbacks, 1);
        }
        let longest = ticks > self.longest_ticks.load(Relaxed);
        if ticks >= notable || longest {
            let described = Described {
                started,
                ticks,
                text: describe(),
            };
            if longest {
                self.longest_ticks.store(ticks, Relaxed);
                *lock(&self.longest) = described.clone();
            }
            if ticks >= notable {
                *lock(&self.last_notable) = described;
            }
        }
        notable.min(self.longest_ticks.load(Relaxed))
    }
}

/// The timing of one pass's batch: a tick read before each callback and after the last.
pub(crate) struct Batch<'a> {
    activity: &'a Activity,
    start: u64,
    last: u64,
    ran: u64,
    threshold: u64,
}

impl Batch<'_> {
    /// A callback starts: publish it for the watchers. `address` is aligned to at least
    /// `KIND_LIMIT`, and `kind` is below it.
    #[inline]
    pub(crate) fn enter(&self, address: usize, kind: u8) {
        let activity = self.activity;
        activity.running.store(address | kind as usize, Relaxed);
        activity.started.store(self.last, Release);
    }

    /// The callback entered last has returned; `ran` says whether it ran at all (a
    /// cancelled handle does not). `describe` is asked for its description only if it
    /// is the longest yet.
    #[inline]
    pub(crate) fn leave(&mut self, ran: bool, describe: impl FnMut() -> String) {
        let now = ticks::now();
        // The entry may be dropped next (and a finalizer may let the GIL go): from here
        // on, no watcher may look at it.
        self.activity.running.store(0, Relaxed);
        let started = std::mem::replace(&mut self.last, now);
        self.ran += u64::from(ran);
        let took = now.wrapping_sub(started);
        if took >= self.threshold {
            let mut describe = describe;
            self.threshold = self.activity.notable(started, took, &mut describe);
        }
    }

    /// The pass is over: nothing runs, and its time is counted. Returns the tick it ended
    /// at, from which the next batch may start (`Activity::batch`).
    pub(crate) fn finish(self) -> u64 {
        let activity = self.activity;
        activity.started.store(0, Release);
        bump(&activity.callbacks, self.ran);
        activity.pass.add(self.last.wrapping_sub(self.start));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_fill_their_buckets() {
        let spans = Spans::new(1.0);
        for ns in [50_000, 100_000, 100_001, 2_000_000_000] {
            spans.add(ns);
        }
        let s = spans.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.sum_ns, 2_000_250_001);
        assert_eq!(s.max_ns, 2_000_000_000);
        assert_eq!(s.buckets, [2, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn a_batch_publishes_its_callback_and_counts_it() {
        let activity = Activity::new();
        let mut batch = activity.batch(None);
        batch.enter(0x1230, 1);
        let running = activity.running();
        assert_ne!(running.started, 0);
        assert_eq!((running.address, running.kind), (0x1230, 1));
        let mut described = 0;
        batch.leave(true, || {
            described += 1;
            "first".into()
        });
        // The first callback is the longest yet, however short.
        assert_eq!(described, 1);
        batch.finish();
        assert_eq!(activity.running().started, 0);
        let s = activity.snapshot();
        assert_eq!((s.callbacks, s.pass.count, s.slow_callbacks), (1, 1, 0));
        assert_eq!(s.longest.text, "first");
    }

    #[test]
    fn a_resumed_batch_counts_its_pass_from_where_the_last_one_ended() {
        let activity = Activity::new();
        let ended = activity.batch(None).finish();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut batch = activity.batch(Some(ended));
        batch.enter(0x10, 0);
        // The callback's span starts where the last batch ended, too.
        assert_eq!(activity.running().started, ended);
        batch.leave(true, String::new);
        assert!(batch.finish() > ended);
        let s = activity.snapshot();
        assert_eq!(s.pass.count, 2);
        assert!(s.pass.max_ns >= 2_000_000, "{:?}", s.pass);
    }

    #[test]
    fn slow_callbacks_are_counted_and_kept_for_the_watchdog() {
        let activity = Activity::new();
        activity.set_slow_threshold(Some(0));
        let mut batch = activity.batch(None);
        batch.enter(0x10, 0);
        let started = activity.running().started;
        std::thread::sleep(std::time::Duration::from_millis(2));
        batch.leave(true, || "slow".into());
        batch.finish();
        let s = activity.snapshot();
        assert_eq!(s.slow_callbacks, 1);
        // The pass is counted in nanoseconds, whatever the ticks are.
        assert!(
            (2_000_000..1_000_000_000).contains(&s.pass.max_ns),
            "{:?}",
            s.pass
        );
        let took = activity.notable_duration(started).unwrap();
        assert!(ticks::to_secs(took) >= 0.002);
        assert_eq!(activity.notable_duration(started + 1), None);
    }
}
