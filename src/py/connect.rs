//! Connecting without a socket object: the syscalls of `create_connection`'s short path.
//!
//! asyncio makes a `socket.socket` for every connection, which costs about 6k
//! instructions to make and 2.5k to close (callgrind), yet a transport's socket object is
//! rarely asked for. On the short path the transport owns the bare fd and makes the socket
//! object on first request (`SocketTransport._sock`); these functions are what
//! `socket.socket()`, `connect_ex()` and `getsockopt(SO_ERROR)` did there, natively.

use std::os::fd::RawFd;

use pyo3::exceptions::{PyOSError, PyOverflowError};
use pyo3::prelude::*;

use super::errors::{os_error, shield};
use crate::runtime::sys::{self, SockAddr};

/// A non-blocking stream socket of `family`/`proto`, connecting to `(host, port)`:
/// `(fd, errno)`, where errno is `connect_ex`'s result (0, or EINPROGRESS while the
/// connect goes on). The caller owns the fd. TCP sockets get TCP_NODELAY, as the transport
/// made on them would set it.
#[pyfunction]
pub fn _connect_stream(
    family: i32,
    proto: i32,
    host: &str,
    port: &Bound<'_, PyAny>,
) -> PyResult<(RawFd, i32)> {
    shield(|| {
        let fd = sys::stream_socket(family, proto).map_err(os_error)?;
        let started = start_connect(fd, family, proto, host, port);
        if started.is_err() {
            sys::close(fd);
        }
        Ok((fd, started?))
    })
}

fn start_connect(
    fd: RawFd,
    family: i32,
    proto: i32,
    host: &str,
    port: &Bound<'_, PyAny>,
) -> PyResult<i32> {
    // socket.connect()'s own check and message, for any int out of range: asyncio's path
    // raises it from there.
    let port: u16 = port
        .extract()
        .map_err(|_| PyOverflowError::new_err("connect(): port must be 0-65535."))?;
    let addr = SockAddr::inet(family, host, port)
        .ok_or_else(|| PyOSError::new_err("illegal IP address string passed to inet_pton"))?;
    if proto == libc::IPPROTO_TCP {
        sys::set_nodelay(fd).map_err(os_error)?;
    }
    Ok(match sys::connect(fd, &addr) {
        Ok(()) => 0,
        Err(err) => err.raw_os_error().unwrap_or(libc::EIO),
    })
}

/// The family of a numeric host, as asyncio's `_ipaddr_info` decides it (`inet_pton`,
/// IPv4 first, then IPv6); None for anything else (a name to resolve).
#[pyfunction]
pub fn _numeric_family(host: &str) -> Option<i32> {
    [libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find(|&family| SockAddr::inet(family, host, 0).is_some())
}

/// `sock.getsockopt(SOL_SOCKET, SO_ERROR)` on a bare fd.
#[pyfunction]
pub fn _socket_error(fd: RawFd) -> PyResult<i32> {
    shield(|| sys::socket_error(fd).map_err(os_error))
}
