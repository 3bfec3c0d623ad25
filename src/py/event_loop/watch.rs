//! The watchdog and the monitor (`runtime::watchdog`, `runtime::monitor`) on a loop, and
//! what they say of a callback: the runtime decides when to speak, `ferroloop._watch`
//! (Python, under the GIL) what to say.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyWeakrefReference;

use super::queues::Ready;
use crate::py::errors::os_error;
use crate::runtime::activity::{Activity, Described, Running, KIND_LIMIT};
use crate::runtime::io_registry::Direction;
use crate::runtime::monitor::Monitor;
use crate::runtime::ticks;
use crate::runtime::watchdog::{Observer, Watchdog};

static WATCH_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// What a running entry is, for `_watch.describe`.
const HANDLE: u8 = 0;
const READING: u8 = 1;
const WRITING: u8 = 2;
const STEP: u8 = 3;
const WAKE: u8 = 4;
const _: () = assert!((WAKE as usize) < KIND_LIMIT);

/// How long a callback runs before the monitor alone (without a watchdog) asks what it is.
const MONITOR_THRESHOLD: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(super) struct Watch {
    watchdog: Option<Watchdog>,
    monitor: Option<Monitor>,
}

/// The object that says what an entry is, and its kind.
pub(super) fn running(entry: &Ready) -> (&Py<PyAny>, u8) {
    match entry {
        Ready::Handle(queued) => (queued.get().as_any(), HANDLE),
        Ready::Transport(t, Direction::Read, _) => (t.as_any(), READING),
        Ready::Transport(t, Direction::Write, _) => (t.as_any(), WRITING),
        Ready::Step(step) => (step.0.as_any(), STEP),
        Ready::Wake(wake) => (&wake.waiter, WAKE),
    }
}

fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    WATCH_MODULE
        .get_or_try_init(py, || py.import("ferroloop._watch").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// `_watch.describe(loop, object, kind)`: what a callback is, never raising.
pub(super) fn describe(owner: &Bound<'_, PyAny>, object: &Bound<'_, PyAny>, kind: u8) -> String {
    let py = owner.py();
    module(py)
        .and_then(|m| m.call_method1("describe", (owner, object, kind)))
        .and_then(|text| text.extract::<String>())
        .unwrap_or_else(|_| String::from("<a callback that cannot be described>"))
}

impl Watch {
    /// Starts the watchdog (a threshold in seconds) and the monitor (a socket path) of
    /// `owner`, the loop whose `activity` they watch.
    pub(super) fn start(
        owner: &Bound<'_, PyAny>,
        activity: &Arc<Activity>,
        threshold: Option<f64>,
        monitor: Option<PathBuf>,
    ) -> PyResult<Watch> {
        let mut watch = Watch::default();
        if let Some(path) = monitor {
            let pid = std::process::id();
            watch.monitor = Some(Monitor::serve(&path, activity.clone(), pid).map_err(os_error)?);
        }
        let watchdog_threshold = match threshold {
            Some(secs) => {
                let ticks = ticks::from_secs(secs)
                    .filter(|_| secs > 0.0)
                    .ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "watchdog threshold must be a positive number of seconds, not {secs}"
                        ))
                    })?;
                activity.set_watch_threshold(ticks);
                Some(Duration::from_secs_f64(secs))
            }
            None => None,
        };
        let monitor_threshold = watch.monitor.as_ref().map(|_| MONITOR_THRESHOLD);
        if let Some(period) = watchdog_threshold.or(monitor_threshold) {
            let reporter = Reporter {
                activity: activity.clone(),
                owner: PyWeakrefReference::new(owner)?.into_any().unbind(),
                log: watchdog_threshold.is_some(),
            };
            let watchdog = Watchdog::spawn(activity.clone(), period, reporter);
            watch.watchdog = Some(watchdog.map_err(os_error)?);
        }
        Ok(watch)
    }

    /// Stops the watchdog and the monitor, waiting for their threads without the GIL,
    /// which the watchdog may be waiting for.
    pub(super) fn stop(mut self, py: Python<'_>) {
        py.detach(|| {
            if let Some(watchdog) = self.watchdog.as_mut() {
                watchdog.stop();
            }
            if let Some(monitor) = self.monitor.as_mut() {
                monitor.stop();
            }
        });
    }
}

/// The watchdog's observer: under the GIL, asks `ferroloop._watch` to describe (and, for
/// the watchdog, log) the callback the loop runs.
struct Reporter {
    activity: Arc<Activity>,
    /// A weak reference to the loop: the watchdog must not keep it alive.
    owner: Py<PyAny>,
    log: bool,
}

impl Reporter {
    /// Calls `_watch.<name>(loop, *args)` if the loop still exists; a failure is reported
    /// as unraisable, since no caller could handle it.
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        args: impl FnOnce(Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyTuple>>,
    ) -> Option<Bound<'py, PyAny>> {
        let owner = self.owner.bind(py).call0().ok().filter(|o| !o.is_none())?;
        let result = args(owner).and_then(|args| module(py)?.getattr(name)?.call1(args));
        result.map_err(|e| e.write_unraisable(py, None)).ok()
    }
}

impl Observer for Reporter {
    fn blocked(&mut self, running: Running, report: u32) {
        let asked = Instant::now();
        Python::try_attach(|py| {
            let waited = asked.elapsed();
            // The entry is alive while the loop still publishes it: the loop stops
            // publishing it before letting go of it, and cannot do so while we hold the GIL.
            let now = self.activity.running();
            let object = (now.started == running.started && now.address != 0).then(|| {
                // SAFETY: `address` is the entry's object, which the loop keeps alive
                // while it publishes it (see above); a new reference is made from it.
                unsafe { Bound::from_borrowed_ptr(py, now.address as *mut pyo3::ffi::PyObject) }
            });
            let elapsed = ticks::to_secs(ticks::now().saturating_sub(running.started));
            let earlier = self.activity.description(running.started);
            let described = self.call(py, "blocked", |owner| {
                pyo3::types::PyTuple::new(
                    py,
                    [
                        owner,
                        object.map_or_else(|| py.None().into_bound(py), Bound::into_any),
                        running.kind.into_pyobject(py)?.into_any(),
                        elapsed.into_pyobject(py)?.into_any(),
                        report.into_pyobject(py)?.into_any(),
                        waited.as_secs_f64().into_pyobject(py)?.into_any(),
                        earlier.into_pyobject(py)?.into_any(),
                        self.log.into_pyobject(py)?.to_owned().into_any(),
                    ],
                )
            });
            if let Some(text) = described.and_then(|d| d.extract::<String>().ok()) {
                self.activity.describe(Described {
                    started: running.started,
                    ticks: 0,
                    text,
                });
            }
        });
    }

    fn returned(&mut self, running: Running, total: Option<Duration>) {
        if !self.log {
            return;
        }
        Python::try_attach(|py| {
            let what = self.activity.description(running.started);
            self.call(py, "returned", |owner| {
                pyo3::types::PyTuple::new(
                    py,
                    [
                        owner,
                        what.into_pyobject(py)?.into_any(),
                        total.map(|t| t.as_secs_f64()).into_pyobject(py)?.into_any(),
                    ],
                )
            });
        });
    }

    fn refresh_tasks(&mut self) {
        Python::try_attach(|py| {
            let summary = self.call(py, "tasks_summary", |owner| {
                pyo3::types::PyTuple::new(py, [owner])
            });
            if let Some((count, tree)) = summary.and_then(|s| s.extract::<(u64, String)>().ok()) {
                self.activity.set_tasks(count, tree);
            }
        });
    }
}
