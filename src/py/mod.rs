//! The PyO3 layer: asyncio's vocabulary (Loop, Handle, TimerHandle, Transport, Server) over
//! the runtime.
//!
//! It converts and calls; scheduling decisions are the runtime's. Two rules keep it sound
//! when callbacks re-enter the loop: the loop state is held only for short stretches that
//! neither call Python nor drop a Python object (a drop can run `__del__`, which can call
//! back into the loop), and every entry point runs under `errors::shield`, so a Rust
//! panic becomes RuntimeError.
//!
//! From the top down:
//! - `event_loop`: `LoopCore`, the loop itself;
//! - `fastcall`: the loop's hottest entry points, with argument parsing of their own;
//! - `server`, `connect`: accepting and connecting natively;
//! - `sock_ops`: `sock_recv` and `sock_sendall` natively;
//! - `transports`: native stream transports;
//! - `handles`: Handle, TimerHandle, and how the loop's queues hold them;
//! - at the bottom, what everything uses: `messages` (asyncio's words), `errors`,
//!   `report` (the exception handler's context), `context` (contextvars), `args` (a
//!   callback's arguments), `gc` (the collector), `cmethod` (C-style methods), `gil_cell`,
//!   `pyapi` (CPython's own code), `sockaddr`.

mod args;
mod cmethod;
pub(crate) mod connect;
pub(crate) mod context;
pub(crate) mod errors;
pub(crate) mod event_loop;
pub(crate) mod fastcall;
mod gc;
mod gil_cell;
pub(crate) mod handles;
mod messages;
mod pyapi;
mod report;
pub(crate) mod server;
pub(crate) mod sock_ops;
pub(crate) mod sockaddr;
pub(crate) mod transports;
