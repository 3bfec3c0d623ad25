//! `TimerHandle`: what `call_later` and `call_at` return and the timer heap holds.

use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString};

use super::handle::{asyncio_class, cancel, joined_repr, Handle};
use crate::py::args::Args;
use crate::py::errors::shield;
use crate::py::pyapi;

/// A due time as seconds, with the object it was given as, if any (`call_at`'s `when`).
pub(crate) type Due<'a, 'py> = (f64, Option<&'a Bound<'py, PyAny>>);

/// A handle with a due time (whether it sits in the loop's timer heap is the base's
/// `Handle::is_scheduled`).
#[pyclass(frozen, module = "ferroloop._ferroloop", extends = Handle, subclass)]
pub(crate) struct TimerHandle {
    pub(crate) when: f64,
    /// The int `call_at` was given, which `when()` returns as asyncio's does (and aiohttp
    /// checks, having rounded its timeouts up to whole seconds); None for a float.
    given: Option<Py<PyAny>>,
}

impl TimerHandle {
    pub(crate) fn is_cancelled(timer: &Bound<'_, TimerHandle>) -> bool {
        timer.as_super().get().is_cancelled()
    }

    /// `base` due at `when` (a float, and the object it came from, kept when it is an int
    /// or a bool: not a float, and holding no references the collector would have to see),
    /// scheduled if it is going into the heap.
    pub(crate) fn around(
        mut base: Handle,
        when: Due<'_, '_>,
        scheduled: bool,
    ) -> PyClassInitializer<TimerHandle> {
        let (seconds, given) = when;
        let kept = given.filter(|given| {
            given.is_exact_instance_of::<PyInt>() || given.is_exact_instance_of::<PyBool>()
        });
        *base.scheduled.get_mut() = scheduled;
        PyClassInitializer::from(base).add_subclass(TimerHandle {
            when: seconds,
            given: kept.map(|given| given.clone().unbind()),
        })
    }

    fn when_object<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.given {
            Some(given) => given.bind(py).clone(),
            None => PyFloat::new(py, self.when).into_any(),
        }
    }
}

/// What asyncio's TimerHandle compares: when, callback, args and cancelled. The arguments
/// are made a tuple only when two timers due together are compared for equality, so that
/// ordering them (a heap of TimerHandles in Python) allocates nothing.
struct TimerKey {
    when: f64,
    callback: Option<Py<PyAny>>,
    args: Option<Args>,
    cancelled: bool,
}

fn timer_key(timer: &Bound<'_, TimerHandle>) -> TimerKey {
    let py = timer.py();
    let h = timer.as_super().get();
    let (callback, args) = h.call(py).unzip();
    TimerKey {
        when: timer.get().when,
        callback,
        args,
        cancelled: h.is_cancelled(),
    }
}

fn same_timer(py: Python<'_>, a: &TimerKey, b: &TimerKey) -> PyResult<bool> {
    let eq = |x: Option<Bound<'_, PyAny>>, y: Option<Bound<'_, PyAny>>| -> PyResult<bool> {
        match (x, y) {
            (Some(x), Some(y)) => x.eq(y),
            (None, None) => Ok(true),
            _ => Ok(false),
        }
    };
    let callback = |k: &TimerKey| k.callback.as_ref().map(|c| c.bind(py).clone());
    let args = |k: &TimerKey| {
        k.args
            .as_ref()
            .map(|a| a.to_tuple(py).map(Bound::into_any))
            .transpose()
    };
    Ok(a.when == b.when
        && eq(callback(a), callback(b))?
        && eq(args(a)?, args(b)?)?
        && a.cancelled == b.cancelled)
}

#[pymethods]
impl TimerHandle {
    #[new]
    #[pyo3(signature = (when, callback, args, r#loop, context=None))]
    fn py_new(
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyAny>,
        r#loop: Bound<'_, PyAny>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<TimerHandle>> {
        let seconds = when.extract::<f64>()?;
        let base = Handle::construct(callback, args, r#loop, context)?;
        Ok(TimerHandle::around(base, (seconds, Some(&when)), false))
    }

    fn when<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.when_object(py)
    }

    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        asyncio_class::<Self>(slf.as_any(), pyapi::timer_handle_type)
    }

    #[getter]
    fn _when<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.when_object(py)
    }

    #[getter]
    fn _scheduled(slf: &Bound<'_, Self>) -> bool {
        slf.as_super().get().is_scheduled()
    }

    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        shield(|| {
            let py = slf.py();
            let h = slf.as_super().get();
            if !h.is_cancelled() {
                match h.owner(py) {
                    Some(owner) if h.is_scheduled() => owner.timer_cancelled(py),
                    Some(_) => {}
                    None => drop(
                        h.loop_
                            .bind(py)
                            .call_method1("_timer_handle_cancelled", (slf,))?,
                    ),
                }
            }
            cancel(slf.as_super())
        })
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        shield(|| {
            let py = slf.py();
            if let Some(r) = slf.as_super().get().kept_repr(py) {
                return r.bind(py).str().map(|s| s.to_string());
            }
            let info = pyapi::handle_repr_info(slf.as_any())?.cast_into::<PyList>()?;
            let cancelled = slf.as_super().get().is_cancelled();
            let when = format!("when={}", slf.get().when_object(py).str()?);
            info.insert(if cancelled { 2 } else { 1 }, PyString::new(py, &when))?;
            joined_repr(&info)
        })
    }

    fn __hash__(&self) -> isize {
        // hash(float): equal `when`s hash alike, as asyncio's TimerHandle does.
        Python::attach(|py| PyFloat::new(py, self.when).hash().unwrap_or(0))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<TimerHandle>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (timer_key(slf), timer_key(other));
        let same = || same_timer(py, &a, &b);
        let result = match op {
            CompareOp::Lt => a.when < b.when,
            CompareOp::Gt => a.when > b.when,
            CompareOp::Le => a.when < b.when || same()?,
            CompareOp::Ge => a.when > b.when || same()?,
            CompareOp::Eq => same()?,
            CompareOp::Ne => !same()?,
        };
        Ok(pyo3::types::PyBool::new(py, result)
            .to_owned()
            .into_any()
            .unbind())
    }
}
