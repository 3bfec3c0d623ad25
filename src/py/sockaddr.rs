//! Socket addresses as Python sees them: the objects CPython's socket module builds
//! (`makesockaddr` in socketmodule.c), so a natively accepted connection's peername equals
//! what `socket.accept()` would have returned.

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::runtime::sys::{self, SockAddr};

/// Whether `family` is one `to_python` converts.
pub(crate) fn is_supported(family: i32) -> bool {
    matches!(family, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX)
}

pub(crate) fn to_python<'py>(py: Python<'py>, addr: &SockAddr) -> PyResult<Bound<'py, PyAny>> {
    let base = (&addr.storage as *const libc::sockaddr_storage).cast::<u8>();
    match addr.family() {
        libc::AF_INET => {
            // SAFETY: the kernel wrote an AF_INET address, so the storage (aligned and
            // large enough for any address) holds a sockaddr_in.
            let a = unsafe { &*base.cast::<libc::sockaddr_in>() };
            let host = ascii_str(py, &ipv4_text(a.sin_addr.s_addr.to_ne_bytes()))?;
            Ok((host, u16::from_be(a.sin_port))
                .into_pyobject(py)?
                .into_any())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for an AF_INET6 address and sockaddr_in6.
            let a = unsafe { &*base.cast::<libc::sockaddr_in6>() };
            let host = ascii_str(py, &ipv6_text(Ipv6Addr::from(a.sin6_addr.s6_addr)))?;
            Ok((
                host,
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )
                .into_pyobject(py)?
                .into_any())
        }
        libc::AF_UNIX => {
            let offset = size_of::<libc::sa_family_t>();
            // SAFETY: as above, for an AF_UNIX address and sockaddr_un.
            let a = unsafe { &*base.cast::<libc::sockaddr_un>() };
            // SAFETY: sun_path is a c_char array; reading it as bytes changes no layout.
            let path: &[u8] =
                unsafe { std::slice::from_raw_parts(a.sun_path.as_ptr().cast(), a.sun_path.len()) };
            let len = (addr.len as usize).saturating_sub(offset).min(path.len());
            if len > 0 && path[0] == 0 {
                // Linux's abstract namespace: the name is bytes, NULs included.
                return Ok(PyBytes::new(py, &path[..len]).into_any());
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            decode_fs(py, &path[..end])
        }
        other => Err(PyOSError::new_err(format!(
            "unsupported address family {other}"
        ))),
    }
}

/// A new transport's `(sockname, peername)`, each None where the call fails, as
/// `SocketTransport` records them; None for a family `to_python` does not convert.
///
/// CPython's own `getsockname()` formats an IPv4 address with glibc's `inet_ntop`, which
/// goes through `sprintf`, twice per connection.
#[pyfunction]
pub(crate) fn _socket_names(py: Python<'_>, fd: i32) -> PyResult<Option<(Py<PyAny>, Py<PyAny>)>> {
    let name = |addr: std::io::Result<SockAddr>| -> PyResult<Option<Py<PyAny>>> {
        match addr {
            Ok(addr) if !is_supported(addr.family()) => Ok(None),
            Ok(addr) => Ok(Some(to_python(py, &addr)?.unbind())),
            Err(_) => Ok(Some(py.None())),
        }
    };
    let Some(local) = name(sys::local_address(fd))? else {
        return Ok(None);
    };
    let Some(peer) = name(sys::peer_address(fd))? else {
        return Ok(None);
    };
    Ok(Some((local, peer)))
}

/// A `str` of ASCII text, built directly: `PyString::new` first decodes the text as UTF-8,
/// twice the cost of the rest of a peername.
fn ascii_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    debug_assert!(text.is_ascii());
    let len = text.len() as pyo3::ffi::Py_ssize_t;
    // SAFETY: PyUnicode_New returns a new compact string of `len` one-byte (ASCII, max
    // char 127) characters, or NULL with an exception set. Its data is filled with exactly
    // `len` ASCII bytes before the object is handed to anyone.
    unsafe {
        let obj = pyo3::ffi::PyUnicode_New(len, 127);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let data = pyo3::ffi::PyUnicode_DATA(obj).cast::<u8>();
        std::ptr::copy_nonoverlapping(text.as_ptr(), data, text.len());
        Ok(Bound::from_owned_ptr(py, obj).cast_into_unchecked())
    }
}

/// Dotted decimal, written directly: `Ipv4Addr`'s Display goes through the formatting
/// machinery, ten times the cost for a string every accepted connection needs.
fn ipv4_text(octets: [u8; 4]) -> String {
    let mut text = String::with_capacity(15);
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// An IPv6 address as glibc's `inet_ntop` (which CPython uses) writes it. Rust's
/// formatting agrees except for IPv4-compatible addresses (`::a.b.c.d`), which glibc
/// writes with an embedded IPv4 address.
fn ipv6_text(addr: Ipv6Addr) -> String {
    let words = addr.segments();
    if words[..6] == [0; 6] && words[6] != 0 {
        let [.., a, b, c, d] = addr.octets();
        return format!("::{}", Ipv4Addr::new(a, b, c, d));
    }
    addr.to_string()
}

/// `PyUnicode_DecodeFSDefault`: a path as `os.fsdecode` would give it.
fn decode_fs<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `bytes` is live for the call; the function copies it and returns a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyUnicode_DecodeFSDefaultAndSize(
                bytes.as_ptr().cast(),
                bytes.len() as pyo3::ffi::Py_ssize_t,
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_is_dotted_decimal() {
        for octets in [
            [127, 0, 0, 1],
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 99, 100, 9],
        ] {
            assert_eq!(ipv4_text(octets), Ipv4Addr::from(octets).to_string());
        }
    }

    #[test]
    fn ipv6_text_matches_inet_ntop() {
        let cases = [
            ("::1", "::1"),
            ("::", "::"),
            ("fe80::1:2", "fe80::1:2"),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
            // IPv4-compatible: glibc embeds the IPv4 address, Rust would write ::102:304.
            ("::1.2.3.4", "::1.2.3.4"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ];
        for (input, text) in cases {
            assert_eq!(ipv6_text(input.parse().unwrap()), text, "{input}");
        }
    }
}
