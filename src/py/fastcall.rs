//! `LoopCore.call_soon`'s entry point, parsing its vectorcall arguments by hand.
//!
//! asyncio's C Task and Future call `loop.call_soon(callback, arg, context=ctx)` for every
//! step and every done callback. PyO3's generic parser matches a keyword by decoding its
//! name and comparing strings, and its varargs tuple is built through a second pass: with
//! its trampoline, about 500 instructions per call, 5 % of a Task step (callgrind). This
//! entry point takes the arguments as the caller laid them out and recognises `context`
//! by pointer (it is interned wherever Python code writes it) before comparing text.

use std::ptr;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};

use super::errors::shield;
use super::event_loop::LoopCore;

struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definition is never mutated and points only at 'static data (C strings and a
// function), so sharing it between threads is sound.
unsafe impl Sync for MethodDef {}

static CALL_SOON: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"call_soon".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: call_soon,
    },
    ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"call_soon(callback, *args, context=None)\n--\n\nArrange for callback(*args) \
to be called as soon as possible, in `context` (a copy of the current one by default)."
        .as_ptr(),
});

/// Puts `call_soon` on `LoopCore`'s type, behind a `CallSoonDescriptor`.
pub fn install(loop_type: &Bound<'_, PyType>) -> PyResult<()> {
    let py = loop_type.py();
    // SAFETY: `loop_type` is a live type object; `CALL_SOON` is 'static, and CPython only
    // reads a PyMethodDef through the pointer despite its `*mut` type. The call returns a
    // new reference or NULL with an exception set.
    let method = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyDescr_NewMethod(
                loop_type.as_ptr().cast(),
                ptr::from_ref(&CALL_SOON.0).cast_mut(),
            ),
        )?
    };
    loop_type.setattr(intern!(py, "call_soon"), CallSoonDescriptor::wrap(method)?)
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

/// The METH_FASTCALL | METH_KEYWORDS function behind `LoopCore.call_soon`.
unsafe extern "C" fn call_soon(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the vectorcall protocol: `args` holds `nargs` positional arguments followed
    // by one value per name in `kwnames` (a tuple, or NULL for none), all borrowed for the
    // duration of the call, and `slf` is the object the descriptor was bound to.
    let result = shield(|| unsafe { parse_and_call(py, slf, args, nargsf, kwnames) });
    match result {
        Ok(handle) => handle.into_ptr(),
        Err(err) => {
            err.restore(py);
            ptr::null_mut()
        }
    }
}

/// # Safety
/// The arguments are those of a vectorcall, as `call_soon` receives them.
unsafe fn parse_and_call(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<super::handles::Handle>> {
    // SAFETY (whole body): per the caller's contract, every pointer read here is a live,
    // borrowed object, and `args` has `nargs + len(kwnames)` entries.
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf) }.cast_into::<LoopCore>()?;
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) } as usize;
    let item = |i: usize| unsafe { Bound::from_borrowed_ptr(py, *args.add(i)) };
    if nargs == 0 {
        return Err(PyTypeError::new_err(
            "call_soon() missing 1 required positional argument: 'callback'",
        ));
    }
    let mut context = None;
    if !kwnames.is_null() {
        let names = unsafe { Bound::from_borrowed_ptr(py, kwnames) }.cast_into::<PyTuple>()?;
        let wanted = intern!(py, "context");
        for (i, name) in names.iter().enumerate() {
            if name.is(wanted) || name.cast::<PyString>()?.to_cow()? == "context" {
                context = Some(item(nargs + i));
            } else {
                return Err(PyTypeError::new_err(format!(
                    "call_soon() got an unexpected keyword argument '{name}'"
                )));
            }
        }
    }
    let rest = PyTuple::new(py, (1..nargs).map(item))?;
    LoopCore::schedule_soon(&slf, item(0), rest, context)
}

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
