//! The watchdog: a thread that watches the loop's running callback (`Activity::running`)
//! and tells an `Observer` when one has run past a threshold, again each time the time it
//! has run doubles, and once when it returns. It reads only atomics, so it keeps time
//! whatever the loop thread holds; the observer decides what a report says.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::activity::{Activity, Running};
use super::sync::lock;
use super::ticks;

/// How often the watchdog refreshes what a monitor shows of the tasks while one watches.
const TASKS_EVERY: Duration = Duration::from_secs(1);

pub(crate) trait Observer: Send + 'static {
    /// `running` has run past the threshold (the `report`th time it is told, from 0).
    fn blocked(&mut self, running: Running, report: u32);
    /// The callback reported as blocked returned after `total` (None: not measured).
    fn returned(&mut self, running: Running, total: Option<Duration>);
    /// A monitor is watching: refresh the task tree it shows.
    fn refresh_tasks(&mut self);
}

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

pub(crate) struct Watchdog {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// One callback that has run past the threshold.
struct Episode {
    running: Running,
    next: Duration,
    reports: u32,
}

impl Watchdog {
    pub(crate) fn spawn(
        activity: Arc<Activity>,
        threshold: Duration,
        mut observer: impl Observer,
    ) -> std::io::Result<Watchdog> {
        let stop = Arc::new(Stop::default());
        let stopping = stop.clone();
        // Often enough that a report comes close to its time, not so often that the
        // thread costs the loop anything.
        let period = (threshold / 8).clamp(Duration::from_millis(2), Duration::from_millis(50));
        let thread = std::thread::Builder::new()
            .name("ferroloop-watchdog".into())
            .spawn(move || {
                let mut episode: Option<Episode> = None;
                let mut tasks_refreshed = 0u64;
                let tasks_every = ticks::from_secs(TASKS_EVERY.as_secs_f64()).unwrap_or(0);
                loop {
                    let stopped = stopping.wait(period);
                    let running = activity.running();
                    if let Some(ep) = episode.take_if(|ep| ep.running.started != running.started) {
                        if ep.reports > 0 {
                            let total = activity
                                .notable_duration(ep.running.started)
                                .map(ticks::to_duration);
                            observer.returned(ep.running, total);
                        }
                    }
                    if stopped {
                        break;
                    }
                    if running.started != 0 {
                        let ep = episode.get_or_insert(Episode {
                            running,
                            next: threshold,
                            reports: 0,
                        });
                        if since(running.started) >= ep.next {
                            observer.blocked(running, ep.reports);
                            ep.reports += 1;
                            // The report may have waited for the GIL: the next comes at
                            // the first doubling still ahead.
                            let now = since(running.started);
                            while ep.next <= now {
                                ep.next *= 2;
                            }
                        }
                    }
                    if activity.watched_within(tasks_every * 3)
                        && ticks::now().saturating_sub(tasks_refreshed) >= tasks_every
                    {
                        observer.refresh_tasks();
                        tasks_refreshed = ticks::now();
                    }
                }
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it. The caller must not hold what the observer
    /// waits for (the GIL).
    pub(crate) fn stop(&mut self) {
        *lock(&self.stop.stopped) = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The time since `started`, a tick.
fn since(started: u64) -> Duration {
    ticks::to_duration(ticks::now().saturating_sub(started))
}

impl Stop {
    /// Sleeps for `period`; true once stopped.
    fn wait(&self, period: Duration) -> bool {
        let stopped = lock(&self.stopped);
        if *stopped {
            return true;
        }
        let (stopped, _) = self
            .wake
            .wait_timeout(stopped, period)
            .unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Without waiting: a watchdog dropped without `stop` may be waiting for the GIL
        // its dropper holds. It sees the flag at its next look and ends.
        *lock(&self.stop.stopped) = true;
        self.stop.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    enum Seen {
        Blocked(u32),
        Returned(Option<Duration>),
    }

    struct Recorder(mpsc::Sender<Seen>);

    impl Observer for Recorder {
        fn blocked(&mut self, _: Running, report: u32) {
            let _ = self.0.send(Seen::Blocked(report));
        }
        fn returned(&mut self, _: Running, total: Option<Duration>) {
            let _ = self.0.send(Seen::Returned(total));
        }
        fn refresh_tasks(&mut self) {}
    }

    #[test]
    fn reports_at_doubling_intervals_then_once_on_return() {
        let activity = Arc::new(Activity::new());
        let threshold = Duration::from_millis(20);
        activity.set_watch_threshold(ticks::from_secs(0.02).unwrap());
        let (tx, rx) = mpsc::channel();
        let mut watchdog = Watchdog::spawn(activity.clone(), threshold, Recorder(tx)).unwrap();
        let mut batch = activity.batch(None);
        batch.enter(0x10, 0);
        // 20 ms, 40 ms and 80 ms pass within 130 ms; 160 ms does not.
        std::thread::sleep(Duration::from_millis(130));
        batch.leave(true, String::new);
        batch.finish();
        let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(matches!(first, Seen::Blocked(0)));
        let mut reports = 1;
        let total = loop {
            match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                Seen::Blocked(n) => {
                    assert_eq!(n, reports);
                    reports += 1;
                }
                Seen::Returned(total) => break total.unwrap(),
            }
        };
        assert_eq!(reports, 3);
        assert!(total >= Duration::from_millis(130), "{total:?}");
        watchdog.stop();
    }
}
