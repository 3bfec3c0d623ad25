//! A stream transport's write buffer: the bytes the kernel has not taken yet.
//!
//! A `bytes` object is immutable, so the buffer keeps a reference to it rather than a copy;
//! a bytearray or memoryview could change under us, so its bytes are copied. Flushing
//! gathers up to `MAX_SLICES` chunks into one `sendmsg`.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::runtime::sys;

/// Chunks gathered into one `sendmsg` (Linux's IOV_MAX is 1024).
const MAX_SLICES: usize = 64;

enum Chunk {
    Shared(Py<PyBytes>),
    Owned(Vec<u8>),
}

impl Chunk {
    fn data<'a>(&'a self, py: Python<'_>) -> &'a [u8] {
        match self {
            Chunk::Shared(b) => b.as_bytes(py),
            Chunk::Owned(v) => v,
        }
    }
}

#[derive(Default)]
pub(crate) struct WriteBuffer {
    /// Each chunk with how much of its front was already sent.
    chunks: VecDeque<(Chunk, usize)>,
    size: usize,
}

impl WriteBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.size
    }

    /// Keeps `bytes[sent..]` by reference.
    pub(crate) fn push_shared(&mut self, bytes: Py<PyBytes>, len: usize, sent: usize) {
        if sent < len {
            self.size += len - sent;
            self.chunks.push_back((Chunk::Shared(bytes), sent));
        }
    }

    pub(crate) fn push_owned(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.size += data.len();
            self.chunks.push_back((Chunk::Owned(data.to_vec()), 0));
        }
    }

    /// Empties the buffer. Dropping `bytes` references here is safe under any lock: a
    /// bytes object's deallocation runs no Python code.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.size = 0;
    }

    /// Sends as much as the kernel takes, in one syscall, and drops what it took.
    pub(crate) fn flush(&mut self, py: Python<'_>, fd: RawFd) -> io::Result<usize> {
        let sent = {
            let slices: Vec<IoSlice<'_>> = self
                .chunks
                .iter()
                .take(MAX_SLICES)
                .map(|(chunk, offset)| IoSlice::new(&chunk.data(py)[*offset..]))
                .collect();
            match slices.as_slice() {
                [one] => sys::send(fd, one)?,
                many => sys::send_vectored(fd, many)?,
            }
        };
        self.consume(py, sent);
        Ok(sent)
    }

    fn consume(&mut self, py: Python<'_>, mut n: usize) {
        self.size -= n;
        while n > 0 {
            let Some((chunk, offset)) = self.chunks.front_mut() else {
                break;
            };
            let left = chunk.data(py).len() - *offset;
            if n < left {
                *offset += n;
                break;
            }
            n -= left;
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_walks_chunks() {
        Python::initialize();
        Python::attach(|py| {
            let mut buffer = WriteBuffer::default();
            buffer.push_owned(b"abc");
            buffer.push_shared(PyBytes::new(py, b"defg").unbind(), 4, 1);
            assert_eq!(buffer.len(), 6);
            buffer.consume(py, 4);
            assert_eq!(buffer.len(), 2);
            assert_eq!(buffer.chunks.len(), 1);
            assert_eq!(&buffer.chunks[0].0.data(py)[buffer.chunks[0].1..], b"fg");
            buffer.consume(py, 2);
            assert!(buffer.is_empty() && buffer.chunks.is_empty());
        });
    }
}
