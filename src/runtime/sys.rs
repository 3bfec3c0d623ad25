//! The syscall funnel: thin, checked wrappers over the few kernel calls the loop makes.
//! Each returns `io::Result` so callers never look at `errno` themselves.

use std::io;
use std::os::fd::RawFd;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) fn epoll_create() -> io::Result<RawFd> {
    // SAFETY: epoll_create1 takes no pointers; the flag is a valid constant.
    check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

pub(crate) fn epoll_ctl(
    epfd: RawFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid, initialised epoll_event that outlives the call; the kernel
    // only reads it (and ignores it for EPOLL_CTL_DEL).
    check(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
}

/// Waits for events; `timeout_ms` < 0 blocks indefinitely. Returns how many entries of
/// `events` the kernel filled in.
pub(crate) fn epoll_wait(
    epfd: RawFd,
    events: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> io::Result<usize> {
    let cap = events.len().min(i32::MAX as usize) as libc::c_int;
    // SAFETY: `events` is a live, writable buffer of `cap` epoll_event entries; the kernel
    // writes at most `cap` of them.
    check(unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), cap, timeout_ms) })
        .map(|n| n as usize)
}

/// `epoll_pwait2` (Linux 5.11+): like `epoll_wait`, with a nanosecond timeout (`None`
/// blocks). Returns ENOSYS on older kernels; the caller falls back to `epoll_wait`.
pub(crate) fn epoll_pwait2(
    epfd: RawFd,
    events: &mut [libc::epoll_event],
    timeout: Option<std::time::Duration>,
) -> io::Result<usize> {
    let cap = events.len().min(i32::MAX as usize) as libc::c_int;
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `events` is a live, writable buffer of `cap` entries; `ts_ptr` is null or
    // points at `ts`, which outlives the call; a null sigmask with size 0 leaves the
    // signal mask alone, as epoll_wait does.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            epfd,
            events.as_mut_ptr(),
            cap,
            ts_ptr,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub(crate) fn eventfd() -> io::Result<RawFd> {
    // SAFETY: eventfd takes no pointers; the flags are valid constants.
    check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

pub(crate) fn write_u64(fd: RawFd, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    // SAFETY: `bytes` is an 8-byte buffer that lives across the call; write only reads it.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn read_u64(fd: RawFd) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is a writable 8-byte buffer that lives across the call.
    let n = unsafe { libc::read(fd, bytes.as_mut_ptr().cast(), bytes.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u64::from_ne_bytes(bytes))
    }
}

pub(crate) fn close(fd: RawFd) {
    // SAFETY: callers pass an fd they own and never use again; a failed close leaves
    // nothing to recover, so its result is ignored as std's OwnedFd does.
    unsafe { libc::close(fd) };
}

/// CLOCK_MONOTONIC in nanoseconds: the clock behind Python's `time.monotonic()`.
pub(crate) fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The CPU's time-stamp counter, where there is one: cheaper to read than any clock.
#[cfg(target_arch = "x86_64")]
pub(crate) fn time_stamp_counter() -> u64 {
    // SAFETY: RDTSC reads a register and has no preconditions on x86-64; it is `unsafe`
    // only because some kernels may forbid it, which Linux does not for user space.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The calling thread's identity: never 0, and unique among the threads alive. Cheaper
/// than `std::thread::current().id()`, which takes a reference to the thread's handle.
pub(crate) fn thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
}

/// The clock's resolution in seconds, as `time.get_clock_info('monotonic').resolution`.
pub(crate) fn monotonic_resolution() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for clock_getres to fill.
    unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// `recv(fd, buf, len, 0)` on a non-blocking socket.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes for the whole call.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `send(fd, buf, len, MSG_NOSIGNAL)`: a peer that is gone gives EPIPE, never SIGPIPE.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live buffer of `buf.len()` bytes that the kernel only reads.
    check_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

/// Gathers `bufs` into one `sendmsg` (a `writev` that cannot raise SIGPIPE).
pub(crate) fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs`, which outlives the call; the kernel only reads them.
    check_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
}

/// `shutdown(fd, SHUT_WR)`.
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown takes no pointers.
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(drop)
}

extern "C" {
    // glibc's, which the libc crate does not declare.
    fn inet_pton(af: libc::c_int, src: *const libc::c_char, dst: *mut libc::c_void) -> libc::c_int;
}

/// A socket address as the kernel wrote it: the storage and how much of it is filled.
pub(crate) struct SockAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl SockAddr {
    /// Room for any address. Zeroed, which also gives an unnamed Unix socket an empty,
    /// NUL-terminated path, as CPython (which zeroes its buffer too) sees it.
    fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: an all-zero sockaddr_storage is a valid value.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The (address, length) pair the kernel fills in.
    fn out_params(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        (
            (&mut self.storage as *mut libc::sockaddr_storage).cast(),
            &mut self.len,
        )
    }

    /// An IPv4 or IPv6 address from its text form, parsed by glibc's `inet_pton` as
    /// CPython's socket module parses it; None when `host` is not one.
    pub(crate) fn inet(family: libc::c_int, host: &str, port: u16) -> Option<SockAddr> {
        // NUL-terminated on the stack: the longest numeric address (an IPv6 one with an
        // embedded IPv4 part) is 45 characters, and anything with a NUL is no address.
        let mut text = [0u8; 64];
        if host.len() >= text.len() || host.as_bytes().contains(&0) {
            return None;
        }
        text[..host.len()].copy_from_slice(host.as_bytes());
        let mut addr = SockAddr::empty();
        let base = (&mut addr.storage as *mut libc::sockaddr_storage).cast::<u8>();
        let (dst, len) = match family {
            libc::AF_INET => {
                // SAFETY: sockaddr_storage is aligned and large enough for a sockaddr_in,
                // and `addr` is zeroed, a valid sockaddr_in.
                let sin = unsafe { &mut *base.cast::<libc::sockaddr_in>() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = port.to_be();
                (
                    (&mut sin.sin_addr as *mut libc::in_addr).cast::<libc::c_void>(),
                    std::mem::size_of::<libc::sockaddr_in>(),
                )
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for a sockaddr_in6.
                let sin6 = unsafe { &mut *base.cast::<libc::sockaddr_in6>() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = port.to_be();
                (
                    (&mut sin6.sin6_addr as *mut libc::in6_addr).cast::<libc::c_void>(),
                    std::mem::size_of::<libc::sockaddr_in6>(),
                )
            }
            _ => return None,
        };
        // SAFETY: `text` is NUL-terminated and `dst` points at the address field of the
        // family's struct inside `addr`, which is large enough for that family.
        if unsafe { inet_pton(family, text.as_ptr().cast(), dst) } != 1 {
            return None;
        }
        addr.len = len as libc::socklen_t;
        Some(addr)
    }

    /// Whether this is one particular address rather than a wildcard (INADDR_ANY, `::`):
    /// a listener bound to one gives every connection it accepts that same local
    /// address. Unix addresses always are.
    pub(crate) fn is_specific(&self) -> bool {
        let base = (&self.storage as *const libc::sockaddr_storage).cast::<u8>();
        match self.family() {
            libc::AF_INET => {
                // SAFETY: an AF_INET address in the (aligned, large enough) storage.
                let sin = unsafe { &*base.cast::<libc::sockaddr_in>() };
                sin.sin_addr.s_addr != 0
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for AF_INET6.
                let sin6 = unsafe { &*base.cast::<libc::sockaddr_in6>() };
                sin6.sin6_addr.s6_addr != [0; 16]
            }
            libc::AF_UNIX => true,
            _ => false,
        }
    }

    pub(crate) fn family(&self) -> libc::c_int {
        self.storage.ss_family as libc::c_int
    }
}

/// `socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto)`: what
/// `socket.socket()` makes, already non-blocking.
pub(crate) fn stream_socket(family: libc::c_int, proto: libc::c_int) -> io::Result<RawFd> {
    // SAFETY: socket takes no pointers.
    check(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    })
}

/// `connect(fd, addr)`. On a non-blocking socket a connect in progress is
/// `EINPROGRESS`.
pub(crate) fn connect(fd: RawFd, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: `addr.storage` holds an address of `addr.len` bytes, alive for the call;
    // the kernel only reads it.
    check(unsafe {
        libc::connect(
            fd,
            (&addr.storage as *const libc::sockaddr_storage).cast(),
            addr.len,
        )
    })
    .map(drop)
}

/// `getsockopt(fd, SOL_SOCKET, SO_ERROR)`: the outcome of a non-blocking connect.
pub(crate) fn socket_error(fd: RawFd) -> io::Result<libc::c_int> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live, writable, and `len` holds `err`'s size.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(err)
}

/// `accept4(fd, …, SOCK_NONBLOCK | SOCK_CLOEXEC)`: the new connection comes back ready for
/// the loop, with no `fcntl`/`ioctl` to follow.
pub(crate) fn accept(fd: RawFd) -> io::Result<(RawFd, SockAddr)> {
    let mut addr = SockAddr::empty();
    let (ptr, len) = addr.out_params();
    // SAFETY: `ptr` is writable for `*len` bytes and `len` is a live socklen_t the kernel
    // updates with the length it wrote; both point into `addr`, alive across the call.
    let conn =
        check(unsafe { libc::accept4(fd, ptr, len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) })?;
    Ok((conn, addr))
}

/// `getsockname(fd)`.
pub(crate) fn local_address(fd: RawFd) -> io::Result<SockAddr> {
    let mut addr = SockAddr::empty();
    let (ptr, len) = addr.out_params();
    // SAFETY: as in `accept`.
    check(unsafe { libc::getsockname(fd, ptr, len) })?;
    Ok(addr)
}

/// `getpeername(fd)`.
pub(crate) fn peer_address(fd: RawFd) -> io::Result<SockAddr> {
    let mut addr = SockAddr::empty();
    let (ptr, len) = addr.out_params();
    // SAFETY: as in `accept`.
    check(unsafe { libc::getpeername(fd, ptr, len) })?;
    Ok(addr)
}

/// `setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1)`: small writes leave without waiting for
/// the previous one's ACK.
pub(crate) fn set_nodelay(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and the length passed is its size.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_parses_as_inet_pton_does() {
        assert!(SockAddr::inet(libc::AF_INET, "127.0.0.1", 80).is_some());
        assert!(SockAddr::inet(libc::AF_INET, "::1", 80).is_none());
        assert!(SockAddr::inet(libc::AF_INET6, "::1", 80).is_some());
        assert!(SockAddr::inet(libc::AF_INET, "1.2.3", 80).is_none());
        assert!(SockAddr::inet(libc::AF_INET, "1.2.3.4\0", 80).is_none());
        let addr = SockAddr::inet(libc::AF_INET6, "fe80::1", 443).unwrap();
        assert_eq!(addr.family(), libc::AF_INET6);
        assert_eq!(addr.len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    }

    #[test]
    fn wildcard_addresses_are_not_specific() {
        for (family, host, specific) in [
            (libc::AF_INET, "127.0.0.1", true),
            (libc::AF_INET, "0.0.0.0", false),
            (libc::AF_INET6, "::1", true),
            (libc::AF_INET6, "::", false),
            (libc::AF_INET6, "::ffff:127.0.0.1", true),
        ] {
            let addr = SockAddr::inet(family, host, 8080).unwrap();
            assert_eq!(addr.is_specific(), specific, "{host}");
        }
    }
}
