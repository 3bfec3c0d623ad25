//! One pass of the loop: purge cancelled timers, poll (or not: `runtime::pass_plan`),
//! queue I/O and due timers, then run exactly what was ready when the pass began.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use pyo3::prelude::*;

use super::queues::{IoCallback, IoDetached, Ready};
use super::{watch, LoopCore, LoopState};
use crate::py::context::EmptyContext;
use crate::py::errors::os_error;
use crate::py::handles::{self, Emptied, Handle, Queued, TimerHandle};
use crate::py::messages;
use crate::py::pyapi;
use crate::py::transports;
use crate::runtime::activity::Activity;
use crate::runtime::clock;
use crate::runtime::pass_plan::{Fds, Wait};
use crate::runtime::poller::PollFd;
use crate::runtime::sync::lock;

impl LoopState {
    /// Moves due timers to the ready queue, then takes the ready queue as the pass's batch,
    /// and lets the pool of spare handles keep as many as the batch may give back (those
    /// beyond go into `surplus`).
    fn collect_ready(
        &mut self,
        py: Python<'_>,
        now: Option<f64>,
        resolution: f64,
        activity: &Activity,
        buffers: &mut PassBuffers,
    ) {
        if !self.timers.is_empty() {
            let now = now.unwrap_or_else(clock::monotonic);
            // 3.15 keeps the window from vanishing once the clock reads coarser than its
            // resolution (after long uptimes).
            let window = if self.due_within_ulp {
                resolution.max(clock::ulp(now))
            } else {
                resolution
            };
            let end_time = now + window;
            while let Some((when, timer)) = self.timers.pop_due(end_time) {
                // The loop's lag: how late the timer is taken (never negative: the
                // window takes timers a little early).
                activity.lag.add(((now - when).max(0.0) * 1e9) as u64);
                timer.get().bind(py).as_super().get().unscheduled();
                self.stats.timers_fired += 1;
                self.ready.push(Ready::Handle(timer.into_handle(py)));
            }
        }
        self.ready.take_batch(&mut buffers.batch);
        self.spare
            .limit_to(buffers.batch.len(), &mut buffers.surplus);
    }
}

/// A pass's batch, and what it lets go of once the loop's state is no longer borrowed
/// (finalizers may run arbitrary code). All empty between passes; the run loop keeps them
/// from pass to pass, for their allocations, and so that a pass with nothing to let go of
/// costs nothing to clear. It keeps, too, the empty context handles without one run in,
/// and the tick the last batch ended at (`Activity::batch`).
#[derive(Default)]
pub(super) struct PassBuffers {
    batch: VecDeque<Ready>,
    purged: Vec<Queued<TimerHandle>>,
    detached: IoDetached,
    surplus: Vec<Queued<Handle>>,
    empty: EmptyContext,
    ended: Option<u64>,
}

impl PassBuffers {
    /// Lets go of what the loop's state gave up: timers leaving the heap unfired are no
    /// longer scheduled, and detached I/O callbacks and spare handles beyond the pool's
    /// limit are dropped. Whether any timer or I/O callback was (a spare handle holds only
    /// its loop, so dropping one runs no Python code). Spare handles go with the thread
    /// known to be attached: a burst's worth may go at once, and `Queued`'s own drop
    /// asks a thread-local for each.
    #[inline(always)]
    fn release(&mut self, py: Python<'_>) -> bool {
        if !self.surplus.is_empty() {
            self.surplus.drain(..).for_each(|spare| spare.drop_in(py));
        }
        let any = !self.purged.is_empty() || !self.detached.is_empty();
        if !self.purged.is_empty() {
            for timer in &self.purged {
                timer.get().bind(py).as_super().get().unscheduled();
            }
            self.purged.clear();
        }
        if !self.detached.is_empty() {
            self.detached.clear();
        }
        any
    }
}

impl LoopCore {
    /// One pass.
    pub(super) fn run_once(slf: &Bound<'_, Self>, buffers: &mut PassBuffers) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let now = Self::replaced_now(slf)?;
        let poll = {
            let mut state = this.state(py);
            let state = &mut *state;
            state.timers.purge(
                |t| TimerHandle::is_cancelled(t.get().bind(py)),
                &mut buffers.purged,
            );
            let busy = !state.ready.is_empty() || this.stopping.load(Relaxed);
            let (timers, io) = (&state.timers, &state.io);
            let wait = state.plan.next(
                busy,
                || timers.next_when(),
                || now.unwrap_or_else(clock::monotonic),
                || Fds {
                    any: !io.is_empty(),
                    user: io.has_user_fds(),
                },
            );
            // Every pass, polled or not, counts towards the end of lingering.
            if let Some(selector) = state.selector.as_ref() {
                state
                    .io
                    .settle(&selector.poller, wait.blocks(), &mut buffers.detached);
            }
            match wait {
                Wait::Skip => {
                    state.collect_ready(py, now, this.resolution(), &this.activity, buffers);
                    None
                }
                wait @ Wait::Poll(timeout) => {
                    let selector = state.selector.as_ref().ok_or_else(messages::loop_closed)?;
                    if wait.blocks() {
                        state.stats.blocking_polls += 1;
                        selector.enter_blocking();
                    } else {
                        state.stats.nonblocking_polls += 1;
                    }
                    Some((timeout, selector.poll_fd()))
                }
            }
        };
        let released = buffers.release(py);
        // A pass that has run no Python code (a finalizer, a replaced `time()`) and will not
        // wait for I/O times its batch from where the last one ended.
        let resume = buffers
            .ended
            .take()
            .filter(|_| poll.is_none() && now.is_none() && !released);
        if let Some((timeout, poll_fd)) = poll {
            Self::poll(slf, timeout, poll_fd, buffers)?;
        }
        let (outcome, ended) = Self::run_batch(slf, &mut buffers.batch, &mut buffers.empty, resume);
        buffers.ended = Some(ended);
        outcome
    }

    /// Waits for I/O (releasing the GIL when the wait may block) and queues what it reports,
    /// then takes the pass's batch. Out of line: a busy loop skips most polls.
    #[inline(never)]
    fn poll(
        slf: &Bound<'_, Self>,
        timeout: Option<Duration>,
        poll_fd: PollFd,
        buffers: &mut PassBuffers,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut events_guard = lock(&this.events);
        let (buffer, events) = &mut *events_guard;
        events.clear();
        let blocking = timeout != Some(Duration::ZERO);
        let polled = if blocking {
            py.detach(|| poll_fd.wait(buffer, timeout, events))
        } else {
            poll_fd.wait(buffer, timeout, events)
        };
        // asyncio reads the clock again after the wait.
        let now = Self::replaced_now(slf)?;
        {
            let mut state = this.state(py);
            let state = &mut *state;
            if let Some(selector) = state.selector.as_ref() {
                if blocking {
                    selector.leave_blocking();
                }
                for event in selector.fd_events(events) {
                    state.stats.io_events += 1;
                    let ready = &mut state.ready;
                    state.io.dispatch(
                        &selector.poller,
                        event,
                        &mut buffers.detached,
                        |direction, callback| match callback {
                            IoCallback::Transport(t, id) => {
                                ready.push(Ready::Transport(t.clone_ref(py), direction, *id));
                                true
                            }
                            // A handle cancelled while registered is unregistered instead,
                            // as asyncio's `_process_events` does.
                            IoCallback::Handle(handle) if handle.get().is_cancelled() => false,
                            IoCallback::Handle(handle) => {
                                ready.push(Ready::Handle(Queued::tracked(handle.clone_ref(py))));
                                true
                            }
                        },
                    );
                }
            }
            state.collect_ready(py, now, this.resolution(), &this.activity, buffers);
        }
        drop(events_guard);
        buffers.release(py);
        if let Err(err) = polled {
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(os_error(err));
            }
        }
        if blocking {
            // A signal that interrupted the wait runs its Python handler now, so Ctrl-C
            // raises KeyboardInterrupt here as it would in the stdlib loop.
            py.check_signals()?;
        }
        Ok(())
    }

    /// Runs the batch, timed from `resume` if given (`Activity::batch`), and returns the
    /// tick it ended at. If `SystemExit` or `KeyboardInterrupt` escapes a callback, the rest
    /// of the batch goes back to the front of the ready queue, to run first next time.
    fn run_batch(
        slf: &Bound<'_, Self>,
        batch: &mut VecDeque<Ready>,
        empty: &mut EmptyContext,
        resume: Option<u64>,
    ) -> (PyResult<()>, u64) {
        let py = slf.py();
        let this = slf.get();
        let debug = this.debug();
        let mut timing = this.activity.batch(resume);
        let mut outcome = Ok(());
        // Each entry runs where it lies and leaves the batch after: moved out first, the
        // entry was copied through the stack in a way that stalled every pass (`perf`).
        while let Some(entry) = batch.front() {
            let (object, kind) = watch::running(entry);
            timing.enter(object.as_ptr() as usize, kind);
            let result = match entry {
                Ready::Handle(queued) if !debug => handles::run(queued.get().bind(py), empty),
                entry => Self::run_entry(slf, entry, debug, empty),
            };
            // Before the entry may be dropped: from here on no watcher looks at it.
            timing.leave(matches!(result, Ok(true)), || {
                watch::describe(slf.as_any(), object.bind(py), kind)
            });
            let entry = batch.pop_front();
            match result {
                Ok(_) => {
                    if let Some(Ready::Handle(queued)) = entry {
                        Self::retire(slf, queued, debug);
                    }
                }
                Err(err) => {
                    this.state(py).ready.requeue_front(batch);
                    outcome = Err(err);
                    break;
                }
            }
        }
        (outcome, timing.finish())
    }

    /// Runs an entry as the pass does. `run_batch` runs a plain handle outside debug mode
    /// itself, and calls this, out of line, for everything else: its loop then holds only
    /// what a pass of plain callbacks runs.
    #[inline(never)]
    fn run_entry(
        slf: &Bound<'_, Self>,
        entry: &Ready,
        debug: bool,
        empty: &mut EmptyContext,
    ) -> PyResult<bool> {
        let py = slf.py();
        match entry {
            Ready::Handle(queued) if debug => Self::run_debug(slf, queued.get().bind(py), empty),
            Ready::Handle(queued) => handles::run(queued.get().bind(py), empty),
            // In debug mode a transport's event runs as the Handle asyncio would have
            // made, so slow-callback warnings and `_current_handle` see it.
            Ready::Transport(t, direction, id) if debug => {
                if transports::is_watching(t.bind(py), *direction, *id) {
                    transports::event_handle(t.bind(py), *direction)
                        .and_then(|handle| Self::run_debug(slf, &handle, empty))
                } else {
                    Ok(false)
                }
            }
            Ready::Transport(t, direction, id) => {
                transports::run_event(t.bind(py), *direction, *id)
            }
            Ready::Step(step) if debug => transports::step_handle(step.0.bind(py), &step.1)
                .and_then(|handle| Self::run_debug(slf, &handle, empty)),
            Ready::Step(step) => transports::run_step(step.0.bind(py), &step.1),
            Ready::Wake(wake) if debug => wake
                .handle(slf)
                .and_then(|handle| Self::run_debug(slf, &handle, empty)),
            Ready::Wake(wake) => wake.run(slf),
        }
    }

    /// Lets go of a handle that has run: into the pool of spare ones if it may go there.
    fn retire(slf: &Bound<'_, Self>, handle: Queued<Handle>, debug: bool) {
        let py = slf.py();
        if debug {
            return handle.drop_in(py);
        }
        let mut held = Emptied::default();
        let kept = slf
            .get()
            .state(py)
            .spare
            .keep(handle, slf.as_any(), &mut held);
        if let Err(handle) = kept {
            handle.drop_in(py);
        }
    }

    /// Runs a handle timing it, and warns when it took `slow_callback_duration` or more.
    fn run_debug(
        slf: &Bound<'_, Self>,
        handle: &Bound<'_, Handle>,
        empty: &mut EmptyContext,
    ) -> PyResult<bool> {
        let this = slf.get();
        this.current_handle.set(Some(handle.clone().into_any()));
        let t0 = clock::monotonic();
        let result = handles::run(handle, empty);
        let dt = clock::monotonic() - t0;
        this.current_handle.set(None);
        if !result? {
            return Ok(false);
        }
        let slow: f64 = slf.getattr("slow_callback_duration")?.extract()?;
        if dt >= slow {
            pyapi::loop_logger(slf.py())?.call_method1(
                "warning",
                (
                    messages::SLOW_CALLBACK,
                    pyapi::format_handle(handle.as_any())?,
                    dt,
                ),
            )?;
        }
        Ok(true)
    }
}
