//! The entry points of `LoopCore.call_soon` and its kin (`call_soon_threadsafe`,
//! `call_later`, `call_at`), parsing their vectorcall arguments by hand.
//!
//! asyncio's C Task and Future call `loop.call_soon(callback, arg, context=ctx)` for every
//! step and every done callback. PyO3's generic parser matches a keyword by decoding its
//! name and comparing strings, and its varargs tuple is built through a second pass: with
//! its trampoline, about 500 instructions per call, 5 % of a Task step (callgrind). These
//! entry points take the arguments as the caller laid them out and recognise `context`
//! by pointer (it is interned wherever Python code writes it) before comparing text.

use std::ptr;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};

use super::errors::shield;
use super::event_loop::LoopCore;

pub(crate) struct MethodDef(pub(crate) ffi::PyMethodDef);

// SAFETY: the definition is never mutated and points only at 'static data (C strings and a
// function), so sharing it between threads is sound.
unsafe impl Sync for MethodDef {}

type FastCall = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

const fn method(
    name: &'static std::ffi::CStr,
    meth: FastCall,
    doc: &'static std::ffi::CStr,
) -> MethodDef {
    MethodDef(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: meth,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    })
}

static CALL_SOON: MethodDef = method(
    c"call_soon",
    call_soon,
    c"call_soon(callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called as soon as possible, in `context` (a copy of the current one by default).",
);

static CALL_SOON_THREADSAFE: MethodDef = method(
    c"call_soon_threadsafe",
    call_soon_threadsafe,
    c"call_soon_threadsafe(callback, *args, context=None)\n--\n\nLike call_soon(), but \
thread-safe: wakes the loop if it is waiting.",
);

static CALL_LATER: MethodDef = method(
    c"call_later",
    call_later,
    c"call_later(delay, callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called `delay` seconds from now; returns a TimerHandle.",
);

static CALL_AT: MethodDef = method(
    c"call_at",
    call_at,
    c"call_at(when, callback, *args, context=None)\n--\n\nLike call_later(), but at the \
loop.time() `when`.",
);

/// `get_debug`, which the C Future and Task call on every construction (`future_init`):
/// a METH_NOARGS function reading one flag, without PyO3's trampoline around it.
static GET_DEBUG: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"get_debug".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: get_debug,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"get_debug($self, /)\n--\n\nWhether the loop is in debug mode.".as_ptr(),
});

unsafe extern "C" fn get_debug(
    slf: *mut ffi::PyObject,
    _noargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held, and a method descriptor checks
    // that `slf` is an instance of its type (LoopCore) before calling. Reading an atomic
    // flag, and cloning a reference under an uncontended lock, cannot panic, so no panic
    // boundary is needed; the result is returned as a new reference.
    unsafe {
        let py = Python::assume_attached();
        let core = Bound::from_borrowed_ptr(py, slf);
        core.cast_unchecked::<LoopCore>()
            .get()
            .debug_object(py)
            .into_ptr()
    }
}

/// A method descriptor for `def` on `ty`, as a C type's methods are: called on an
/// instance, it runs `def`'s function with no bound object made and no Python frame.
pub(crate) fn method_descriptor<'py>(
    ty: &Bound<'py, PyType>,
    def: &'static MethodDef,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `ty` is a live type object; `def` is 'static, and CPython only reads a
    // PyMethodDef through the pointer despite its `*mut` type. The call returns a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            ty.py(),
            ffi::PyDescr_NewMethod(ty.as_ptr().cast(), ptr::from_ref(&def.0).cast_mut()),
        )
    }
}

/// Puts the methods on `LoopCore`'s type: `call_soon` behind a `CallSoonDescriptor`, the
/// others as plain method descriptors.
pub fn install(loop_type: &Bound<'_, PyType>) -> PyResult<()> {
    let py = loop_type.py();
    let descriptor = |def: &'static MethodDef| method_descriptor(loop_type, def);
    loop_type.setattr(
        intern!(py, "call_soon"),
        CallSoonDescriptor::wrap(descriptor(&CALL_SOON)?)?,
    )?;
    for def in [&CALL_SOON_THREADSAFE, &CALL_LATER, &CALL_AT, &GET_DEBUG] {
        let method = descriptor(def)?;
        loop_type.setattr(
            method
                .getattr(intern!(py, "__name__"))?
                .cast::<PyString>()?,
            method,
        )?;
    }
    Ok(())
}

/// `call_soon` bound to `loop_`: the object `loop_.call_soon` returns while the loop runs.
pub fn bind_call_soon(loop_: &Bound<'_, LoopCore>) -> PyResult<Py<PyAny>> {
    // SAFETY: `CALL_SOON` is 'static; PyCFunction_NewEx returns a new reference to a
    // builtin method holding a reference to `loop_`, or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            loop_.py(),
            ffi::PyCFunction_NewEx(
                ptr::from_ref(&CALL_SOON.0).cast_mut(),
                loop_.as_ptr(),
                ptr::null_mut(),
            ),
        )
    }
    .map(Bound::unbind)
}

/// A call's arguments: `N` leading positional ones (`delay`, `callback`, ...), the rest as
/// the callback's `*args`, and the `context=` keyword.
struct Arguments<'py, const N: usize> {
    leading: [Bound<'py, PyAny>; N],
    rest: Bound<'py, PyTuple>,
    context: Option<Bound<'py, PyAny>>,
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
    // SAFETY (whole body): per the contract, every pointer read here is a live, borrowed
    // object, and `args` has `nargs + len(kwnames)` entries.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) } as usize;
    let item = |i: usize| unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
    if nargs < N {
        return Err(missing_arguments(name, &leading[nargs..]));
    }
    let mut context = None;
    if !kwnames.is_null() {
        let wanted = intern!(py, "context");
        // The C Task and Future pass `context=` alone, under the interned name: checked
        // first, without iterating (70 instructions of each Task step otherwise).
        if unsafe { ffi::PyTuple_GET_SIZE(kwnames) } == 1
            && unsafe { ffi::PyTuple_GET_ITEM(kwnames, 0) } == wanted.as_ptr()
        {
            context = Some(item(nargs));
        } else {
            let names = unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?;
            for (i, kw) in names.iter().enumerate() {
                if kw.is(wanted) || kw.cast::<PyString>()?.to_cow()? == "context" {
                    context = Some(item(nargs + i));
                } else {
                    return Err(unexpected_keyword(name, &kw));
                }
            }
        }
    }
    Ok(Arguments {
        leading: std::array::from_fn(item),
        // Most callbacks take no arguments (the empty tuple is a shared singleton), and the
        // C Task's and Future's take one.
        rest: match nargs - N {
            0 => PyTuple::empty(py),
            1 => (item(N),).into_pyobject(py)?,
            _ => PyTuple::new(py, (N..nargs).map(item))?,
        },
        context,
    })
}

// Both name the method as CPython's argument errors name asyncio's Python method: by its
// qualified name.
#[cold]
#[inline(never)]
fn missing_arguments(name: &str, missing: &[&str]) -> PyErr {
    let quoted: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
    PyTypeError::new_err(format!(
        "BaseEventLoop.{name}() missing {} required positional argument{}: {}",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        quoted.join(" and "),
    ))
}

#[cold]
#[inline(never)]
fn unexpected_keyword(name: &str, keyword: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "BaseEventLoop.{name}() got an unexpected keyword argument '{keyword}'"
    ))
}

/// The common body of the entry points: the loop, parsed arguments, `body`, and the result
/// or the exception handed back to CPython.
///
/// # Safety
/// As `parse`, with `slf` the object the method was called on.
#[inline(always)]
unsafe fn enter<const N: usize, T>(
    name: &str,
    leading: [&str; N],
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: impl FnOnce(&Bound<'_, LoopCore>, Arguments<'_, N>) -> PyResult<Py<T>>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let result = shield(|| {
        // SAFETY: per the caller's contract; and `slf` is a LoopCore: a method descriptor
        // checks its instance's type before calling, a bound method was bound by one (or
        // by `bind_call_soon`, to a LoopCore), and `CallSoonDescriptor` checks first.
        let slf = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<LoopCore>() };
        // SAFETY: per the caller's contract.
        let parsed = unsafe { parse(py, name, leading, args, nargsf, kwnames) }?;
        body(&slf, parsed)
    });
    match result {
        Ok(obj) => obj.into_ptr(),
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

macro_rules! entry_point {
    ($fn_name:ident, $name:literal, [$($lead:literal),*], $body:expr) => {
        unsafe extern "C" fn $fn_name(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargsf: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: CPython calls a METH_FASTCALL | METH_KEYWORDS method with the
            // arguments `enter` requires.
            unsafe { enter($name, [$($lead),*], slf, args, nargsf, kwnames, $body) }
        }
    };
}

entry_point!(call_soon, "call_soon", ["callback"], |slf, a| {
    let [callback] = a.leading;
    LoopCore::schedule_soon(slf, callback, a.rest, a.context)
});

entry_point!(
    call_soon_threadsafe,
    "call_soon_threadsafe",
    ["callback"],
    |slf, a| {
        let [callback] = a.leading;
        LoopCore::schedule_soon_threadsafe(slf, callback, a.rest, a.context)
    }
);

entry_point!(call_later, "call_later", ["delay", "callback"], |slf, a| {
    let [delay, callback] = a.leading;
    LoopCore::schedule_later(slf, delay, callback, a.rest, a.context)
});

entry_point!(call_at, "call_at", ["when", "callback"], |slf, a| {
    let [when, callback] = a.leading;
    LoopCore::schedule_at_time(slf, when, callback, a.rest, a.context)
});

/// What `LoopCore.__dict__['call_soon']` holds: the method descriptor, plus a cache.
///
/// On 3.10 and 3.11 the C Task and Future reach `call_soon` by `getattr(loop, 'call_soon')`
/// on every step and done callback, and a method descriptor answers that with a new bound
/// method each time: an allocation for the collector and its free, about 350 instructions
/// of a 9,000-instruction Task step (callgrind). While the loop runs it keeps one bound
/// method (`LoopCore::bound_call_soon`), and this descriptor hands that out instead.
///
/// Everything else is the method descriptor's: it is flagged METHOD_DESCRIPTOR, so
/// `loop.call_soon(...)` in Python code and 3.12's `PyObject_VectorcallMethod` call it with
/// the loop as first argument and no bound object at all; class access returns the method
/// descriptor itself, and its attributes (`__name__`, `__doc__`, `__text_signature__`)
/// are read from it. No `__set__`: an instance attribute (a mock) still wins over it.
#[repr(C)]
struct CallSoonDescriptor {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
    /// The `method_descriptor`, owned.
    method: *mut ffi::PyObject,
}

impl CallSoonDescriptor {
    fn wrap(method: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
        let py = method.py();
        let ty = descriptor_type(py)?;
        // SAFETY: `ty` is the live heap type built below, whose basicsize is this struct's:
        // GenericAlloc returns a zeroed instance (holding a reference to its type) or NULL
        // with an exception set. The fields are then written before anyone can see it.
        unsafe {
            let obj = Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty.cast(), 0))?;
            let this = obj.as_ptr().cast::<CallSoonDescriptor>();
            (*this).vectorcall = Some(descriptor_vectorcall);
            (*this).method = method.into_ptr();
            Ok(obj)
        }
    }
}

/// The `CallSoonDescriptor` type, built once.
fn descriptor_type(py: Python<'_>) -> PyResult<*mut ffi::PyObject> {
    static TYPE: pyo3::sync::PyOnceLock<Py<PyType>> = pyo3::sync::PyOnceLock::new();
    let ty = TYPE.get_or_try_init(py, || {
        let mut members = [
            ffi::PyMemberDef {
                name: c"__vectorcalloffset__".as_ptr(),
                type_code: ffi::Py_T_PYSSIZET,
                offset: std::mem::offset_of!(CallSoonDescriptor, vectorcall) as ffi::Py_ssize_t,
                flags: ffi::Py_READONLY,
                doc: ptr::null(),
            },
            ffi::PyMemberDef::default(),
        ];
        let mut slots = [
            slot(ffi::Py_tp_dealloc, descriptor_dealloc as *mut _),
            slot(ffi::Py_tp_descr_get, descriptor_get as *mut _),
            slot(ffi::Py_tp_call, ffi::PyVectorcall_Call as *mut _),
            slot(ffi::Py_tp_getattro, descriptor_getattro as *mut _),
            slot(ffi::Py_tp_repr, descriptor_repr as *mut _),
            slot(ffi::Py_tp_members, members.as_mut_ptr().cast()),
            slot(0, ptr::null_mut()),
        ];
        let mut spec = ffi::PyType_Spec {
            name: c"ferroloop._ferroloop.CallSoonDescriptor".as_ptr(),
            basicsize: std::mem::size_of::<CallSoonDescriptor>() as _,
            itemsize: 0,
            flags: (ffi::Py_TPFLAGS_DEFAULT
                | ffi::Py_TPFLAGS_METHOD_DESCRIPTOR
                | ffi::Py_TPFLAGS_HAVE_VECTORCALL
                | ffi::Py_TPFLAGS_IMMUTABLETYPE
                | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
            slots: slots.as_mut_ptr(),
        };
        // SAFETY: the spec, its slots and members are valid for the call (CPython copies
        // what it keeps: the members into the type's descriptors, the name's pointer is a
        // 'static C string). The result is a new reference or NULL with an exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec)) }
            .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
    })?;
    Ok(ty.as_ptr())
}

fn slot(slot: std::os::raw::c_int, pfunc: *mut std::os::raw::c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// # Safety
/// `obj` must be a `CallSoonDescriptor`.
unsafe fn inner(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: per the contract; `method` was set before the object was published.
    unsafe { (*obj.cast::<CallSoonDescriptor>()).method }
}

unsafe extern "C" fn descriptor_get(
    descr: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    ty: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_descr_get with the GIL held, on our own type's instance,
    // with `obj` NULL (class access) or a live object; the method descriptor's own
    // tp_descr_get takes the same arguments. A cached bound method is returned as a new
    // reference.
    unsafe {
        let py = Python::assume_attached();
        if !obj.is_null() {
            if let Ok(core) = Bound::from_borrowed_ptr(py, obj).cast::<LoopCore>() {
                if let Some(bound) = core.get().bound_call_soon(py) {
                    return bound.into_ptr();
                }
            }
        }
        let method = inner(descr);
        match (*ffi::Py_TYPE(method)).tp_descr_get {
            Some(get) => get(method, obj, ty),
            None => ffi::Py_NewRef(method),
        }
    }
}

unsafe extern "C" fn descriptor_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the vectorcall protocol (see `call_soon`); `callable` is our descriptor. The
    // first argument is the loop when called as a method: then `args + 1` holds the rest.
    // Anything else goes to the method descriptor, which raises its own TypeError.
    unsafe {
        let py = Python::assume_attached();
        let nargs = ffi::PyVectorcall_NARGS(nargsf);
        if nargs >= 1 && Bound::from_borrowed_ptr(py, *args).is_instance_of::<LoopCore>() {
            return call_soon(*args, args.add(1), (nargs - 1) as ffi::Py_ssize_t, kwnames);
        }
        ffi::PyObject_Vectorcall(inner(callable), args, nargsf, kwnames)
    }
}

unsafe extern "C" fn descriptor_getattro(
    obj: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython's getattro contract; the method descriptor answers for us.
    unsafe { ffi::PyObject_GetAttr(inner(obj), name) }
}

unsafe extern "C" fn descriptor_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython's repr contract; shown as the method descriptor it stands for.
    unsafe { ffi::PyObject_Repr(inner(obj)) }
}

unsafe extern "C" fn descriptor_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: called once, when the last reference goes; an instance of a heap type owns
    // a reference to its type, released after the memory is freed.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        ffi::Py_XDECREF(inner(obj));
        if let Some(free) = (*ty).tp_free {
            free(obj.cast());
        }
        ffi::Py_DECREF(ty.cast());
    }
}
