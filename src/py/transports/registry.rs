//! `loop._transports`: which transport owns each fd, so that `add_reader` and the sock_*
//! methods refuse an fd a live transport is using.
//!
//! asyncio keeps a `weakref.WeakValueDictionary`, whose set and removal run four Python
//! frames per connection. This is the same mapping for the operations asyncio performs
//! (`[fd]`, `get`, `[fd] = t`, `del [fd]`, `in`, `len`), and for the views a debugging
//! tool reads (`keys`, `values`, `items`, iteration, in fd order): values are held
//! weakly, through callback-free weak references, and an entry whose transport is gone
//! reads as absent.

use std::collections::HashMap;

use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyWeakrefMethods, PyWeakrefReference};

use crate::py::gil_cell::GilCell;

#[pyclass(frozen, mapping, module = "ferroloop._ferroloop")]
pub(crate) struct TransportRegistry {
    entries: GilCell<HashMap<i64, Py<PyWeakrefReference>>>,
}

impl TransportRegistry {
    /// The live transport registered for `fd`, forgetting a dead entry. Neither taking a
    /// strong reference from a weak one nor dropping a dead, callback-free weakref runs
    /// Python code, so both happen with the map held.
    pub(crate) fn lookup<'py>(&self, py: Python<'py>, fd: i64) -> Option<Bound<'py, PyAny>> {
        let mut entries = self.entries.borrow_mut(py);
        let live = entries.get(&fd)?.bind(py).upgrade();
        if live.is_none() {
            entries.remove(&fd);
        }
        live
    }
}

/// Keys are fds; anything else is simply never present, as in a dict of int keys.
fn fd_key(key: &Bound<'_, PyAny>) -> Option<i64> {
    key.extract().ok()
}

#[pymethods]
impl TransportRegistry {
    #[new]
    fn new() -> Self {
        TransportRegistry {
            entries: GilCell::new(HashMap::new()),
        }
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        fd_key(key)
            .and_then(|fd| self.lookup(key.py(), fd))
            .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> Bound<'py, PyAny> {
        let py = key.py();
        fd_key(key)
            .and_then(|fd| self.lookup(py, fd))
            .or(default)
            .unwrap_or_else(|| py.None().into_bound(py))
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, transport: &Bound<'_, PyAny>) -> PyResult<()> {
        let fd: i64 = key.extract()?;
        let weak = PyWeakrefReference::new(transport)?.unbind();
        // The replaced weakref, if any, is dropped once the map is released.
        let old = self.entries.borrow_mut(key.py()).insert(fd, weak);
        drop(old);
        Ok(())
    }

    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = key.py();
        let live = fd_key(key).and_then(|fd| self.lookup(py, fd).map(|_| fd));
        let removed = live.and_then(|fd| self.entries.borrow_mut(py).remove(&fd));
        match removed {
            Some(_) => Ok(()),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        fd_key(key).is_some_and(|fd| self.lookup(key.py(), fd).is_some())
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.keys(py).len()
    }

    /// The fds of live transports, sorted.
    fn keys(&self, py: Python<'_>) -> Vec<i64> {
        let mut fds: Vec<i64> = self.entries.borrow_mut(py).keys().copied().collect();
        fds.retain(|&fd| self.lookup(py, fd).is_some());
        fds.sort_unstable();
        fds
    }

    /// The live transports, in fd order.
    fn values<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyAny>> {
        self.items(py).into_iter().map(|(_, t)| t).collect()
    }

    /// `(fd, transport)` for each live transport, in fd order.
    fn items<'py>(&self, py: Python<'py>) -> Vec<(i64, Bound<'py, PyAny>)> {
        self.keys(py)
            .into_iter()
            .filter_map(|fd| self.lookup(py, fd).map(|t| (fd, t)))
            .collect()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.keys(py))?
            .try_iter()
            .map(Bound::into_any)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<TransportRegistry fds={:?}>", self.keys(py))
    }
}
