//! The entry points' arguments, read as CPython lays them out for a METH_FASTCALL |
//! METH_KEYWORDS method: `context` is recognised by pointer (it is interned wherever
//! Python code writes it) before its text is compared.

use std::ptr;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::py::args::Args;
use crate::py::errors::shield;
use crate::py::event_loop::LoopCore;
use crate::py::gil_cell::GilCell;
use crate::py::messages;
use crate::py::pyapi;

/// A call's arguments: `N` leading positional ones (`delay`, `callback`, ...), the rest as
/// the callback's `*args`, and the `context=` keyword.
struct Arguments<'py, const N: usize> {
    leading: [Bound<'py, PyAny>; N],
    rest: Args,
    context: Option<Bound<'py, PyAny>>,
}

/// The keyword names last found to be `("context",)` under a string that is not the
/// interned one. The C Task and Future build theirs once, with `Py_BuildValue`, and pass it
/// on every step and done callback: known by its address, it costs no text comparison.
/// Held, so that no other tuple can take that address while it is remembered.
static CONTEXT_ALONE: GilCell<Option<Py<PyTuple>>> = GilCell::new(None);

fn is_context_alone(py: Python<'_>, names: &Bound<'_, PyTuple>) -> bool {
    CONTEXT_ALONE
        .borrow_mut(py)
        .as_ref()
        .is_some_and(|known| known.is(names))
}

fn remember_context_alone(py: Python<'_>, names: Bound<'_, PyTuple>) {
    let replaced = CONTEXT_ALONE.borrow_mut(py).replace(names.unbind());
    // Dropped once the cell is free again.
    drop(replaced);
}

/// Reads a METH_FASTCALL | METH_KEYWORDS call of `name(leading..., *args, context=None)`.
///
/// # Safety
/// The arguments are those CPython passes such a function: `args` holds `nargs`
/// positional arguments followed by one value per name in `kwnames` (a tuple, or NULL for
/// none), all borrowed for the duration of the call.
#[inline(always)]
unsafe fn parse<'py, const N: usize>(
    py: Python<'py>,
    name: &str,
    leading: [&str; N],
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Arguments<'py, N>> {
    // SAFETY: `nargsf` is the count CPython passed, flags included.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) } as usize;
    // SAFETY: per the contract, `args` has `nargs + len(kwnames)` live, borrowed entries,
    // and callers ask only for indices below that.
    let item = |i: usize| unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
    if nargs < N {
        return Err(messages::missing_arguments(name, &leading[nargs..]));
    }
    let mut context = None;
    if !kwnames.is_null() {
        let wanted = intern!(py, "context");
        // SAFETY: per the contract, a non-null `kwnames` is a live tuple of strings.
        let names =
            unsafe { Bound::from_borrowed_ptr(py, kwnames).cast_into_unchecked::<PyTuple>() };
        // The C Task and Future pass `context=` alone: recognised without iterating or
        // reading text, by the name if it is the interned one (Python code's), else by the
        // tuple if it is the one last found to hold `context` alone (C code's).
        if names.len() == 1
            // SAFETY: the tuple has one item, so index 0 is in range.
            && (unsafe { names.get_borrowed_item_unchecked(0) }.is(wanted)
                || is_context_alone(py, &names))
        {
            context = Some(item(nargs));
        } else {
            for (i, kw) in names.iter().enumerate() {
                if kw.is(wanted) || kw.cast::<PyString>()?.to_cow()? == "context" {
                    context = Some(item(nargs + i));
                } else {
                    return Err(messages::unexpected_keyword(name, &kw));
                }
            }
            if names.len() == 1 {
                remember_context_alone(py, names);
            }
        }
    }
    Ok(Arguments {
        leading: std::array::from_fn(item),
        // Most callbacks take no arguments (the empty tuple is a shared singleton), and the
        // C Task's and Future's take one.
        rest: match nargs - N {
            0 => Args::none(py),
            1 => Args::one(item(N))?,
            _ => Args::tuple(PyTuple::new(py, (N..nargs).map(item))?)?,
        },
        context,
    })
}

/// The common body of the entry points: the loop, `body`, and the result or the exception
/// handed back to CPython.
///
/// # Safety
/// `slf` is the object a METH_FASTCALL method of LoopCore was called on, with the GIL held.
#[inline(always)]
unsafe fn enter<T>(
    slf: *mut ffi::PyObject,
    body: impl FnOnce(&Bound<'_, LoopCore>) -> PyResult<Py<T>>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let result = shield(|| {
        // SAFETY: `slf` is a LoopCore: a method descriptor checks its instance's type
        // before calling, a bound method was bound by one (or by `bind_call_soon`, to a
        // LoopCore), and `CallSoonDescriptor` checks first.
        let slf = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<LoopCore>() };
        body(&slf)
    });
    match result {
        Ok(obj) => obj.into_ptr(),
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

/// A METH_FASTCALL | METH_KEYWORDS method of LoopCore: `body` runs under `enter`, given the
/// loop and the arguments as CPython passes them.
macro_rules! method {
    (
        $(#[$doc:meta])*
        $fn_name:ident,
        |$slf:ident, $args:ident, $nargsf:ident, $kwnames:ident| $body:block
    ) => {
        $(#[$doc])*
        pub(super) unsafe extern "C" fn $fn_name(
            slf: *mut ffi::PyObject,
            $args: *const *mut ffi::PyObject,
            $nargsf: ffi::Py_ssize_t,
            $kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: CPython calls a METH_FASTCALL | METH_KEYWORDS method with the GIL
            // held, `args` holding `nargs` positional arguments followed by one value per
            // name in `kwnames` (a tuple of strings, or NULL), all borrowed for the call:
            // what `enter` and `parse` require.
            unsafe { enter(slf, |$slf| $body) }
        }
    };
}

/// A method of the shape `name(leading..., *args, context=None)`, parsed by `parse`.
macro_rules! entry_point {
    ($fn_name:ident, $name:literal, [$($lead:literal),*], |$slf:ident, $a:ident| $body:block) => {
        method!($fn_name, |$slf, args, nargsf, kwnames| {
            let $a = parse($slf.py(), $name, [$($lead),*], args, nargsf, kwnames)?;
            $body
        });
    };
}

entry_point!(call_soon, "call_soon", ["callback"], |slf, a| {
    let [callback] = a.leading;
    LoopCore::call_soon(slf, callback, a.rest, a.context)
});

entry_point!(
    call_soon_threadsafe,
    "call_soon_threadsafe",
    ["callback"],
    |slf, a| {
        let [callback] = a.leading;
        LoopCore::call_soon_threadsafe(slf, callback, a.rest, a.context)
    }
);

entry_point!(call_later, "call_later", ["delay", "callback"], |slf, a| {
    let [delay, callback] = a.leading;
    LoopCore::call_later(slf, delay, callback, a.rest, a.context)
});

entry_point!(call_at, "call_at", ["when", "callback"], |slf, a| {
    let [when, callback] = a.leading;
    LoopCore::call_at(slf, when, callback, a.rest, a.context)
});

method!(
    /// `create_task(coro, **kwargs)`. A call with one positional argument is the loop's
    /// own; anything else (`coro=` as a keyword, a missing or extra argument) is CPython's
    /// `BaseEventLoop.create_task` to take or refuse, with its own messages.
    create_task,
    |slf, args, nargsf, kwnames| {
        let py = slf.py();
        let nargs = ffi::PyVectorcall_NARGS(nargsf as usize) as usize;
        let item = |i: usize| Bound::from_borrowed_ptr(py, *args.add(i));
        let kwargs = if kwnames.is_null() {
            None
        } else {
            let names = Bound::from_borrowed_ptr(py, kwnames).cast_into_unchecked::<PyTuple>();
            let kwargs = PyDict::new(py);
            for (i, name) in names.iter().enumerate() {
                kwargs.set_item(name, item(nargs + i))?;
            }
            Some(kwargs)
        };
        if nargs == 1 {
            return LoopCore::new_task(slf, item(0), kwargs.as_ref());
        }
        let positional: Vec<_> = std::iter::once(slf.as_any().clone())
            .chain((0..nargs).map(item))
            .collect();
        Ok(pyapi::base_create_task(py)?
            .call(PyTuple::new(py, positional)?, kwargs.as_ref())?
            .unbind())
    }
);
