//! `CallSoonDescriptor`: what `LoopCore.__dict__['call_soon']` holds.

use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::arguments::call_soon;
use crate::py::event_loop::LoopCore;

/// What `LoopCore.__dict__['call_soon']` holds: the method descriptor, plus a cache.
///
/// On 3.11 the C Task and Future reach `call_soon` by `getattr(loop, 'call_soon')` on every
/// step and done callback, and a method descriptor answers that with a new bound method
/// each time: an allocation for the collector and its free, per step. While the loop runs
/// it keeps one bound method (`LoopCore::bound_call_soon`), and this descriptor hands that
/// out instead.
///
/// Everything else is the method descriptor's: it is flagged METHOD_DESCRIPTOR, so
/// `loop.call_soon(...)` in Python code and 3.12's `PyObject_VectorcallMethod` call it with
/// the loop as first argument and no bound object at all; class access returns the method
/// descriptor itself, and its attributes (`__name__`, `__doc__`, `__text_signature__`)
/// are read from it. No `__set__`: an instance attribute (a mock) still wins over it.
#[repr(C)]
pub(super) struct CallSoonDescriptor {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
    /// The `method_descriptor`, owned.
    method: *mut ffi::PyObject,
    /// The type of the last loop it was called on (owned, or null): a call on an instance
    /// of that exact type needs no walk of its MRO to know it is a loop. It keeps that one
    /// type alive until another takes its place.
    loop_type: *mut ffi::PyTypeObject,
}

impl CallSoonDescriptor {
    pub(super) fn wrap(method: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
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
            (*this).loop_type = ptr::null_mut();
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

/// Whether `obj` is a LoopCore: its type is the one seen last, or it is checked, and its
/// type becomes the one seen last.
///
/// # Safety
/// `descr` must be a `CallSoonDescriptor` and `obj` a live object, with the GIL held.
unsafe fn is_loop(py: Python<'_>, descr: *mut ffi::PyObject, obj: *mut ffi::PyObject) -> bool {
    // SAFETY: per the contract. `loop_type` is owned by the descriptor, so a type at that
    // address is that type, alive; the swap happens under the GIL, which every reader holds.
    unsafe {
        let this = descr.cast::<CallSoonDescriptor>();
        let ty = ffi::Py_TYPE(obj);
        if ty == (*this).loop_type {
            return true;
        }
        if !Bound::from_borrowed_ptr(py, obj).is_instance_of::<LoopCore>() {
            return false;
        }
        let previous = std::mem::replace(&mut (*this).loop_type, ffi::Py_NewRef(ty.cast()).cast());
        ffi::Py_XDECREF(previous.cast());
        true
    }
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
        if !obj.is_null() && is_loop(py, descr, obj) {
            let core = Bound::from_borrowed_ptr(py, obj).cast_into_unchecked::<LoopCore>();
            if let Some(bound) = core.get().bound_call_soon(py) {
                return bound.into_ptr();
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
        if nargs >= 1 && is_loop(py, callable, *args) {
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
        ffi::Py_XDECREF((*obj.cast::<CallSoonDescriptor>()).loop_type.cast());
        if let Some(free) = (*ty).tp_free {
            free(obj.cast());
        }
        ffi::Py_DECREF(ty.cast());
    }
}
