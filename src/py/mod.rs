//! The PyO3 layer: asyncio's vocabulary (Loop, Handle, TimerHandle) over the runtime.
//!
//! It converts and calls; it owns no scheduling logic of its own (the ready queue and the
//! timer heap are the runtime's). Two rules keep it sound when callbacks re-enter the
//! loop: the loop state is locked only for short stretches that neither call Python nor
//! drop a Python object (a drop can run `__del__`, which can call back into the loop), and
//! every entry point runs under `errors::shield`, so a Rust panic becomes RuntimeError.

pub mod connect;
pub mod errors;
pub mod event_loop;
pub mod fastcall;
mod gil_cell;
mod handle_pool;
pub mod handles;
mod io;
mod pyapi;
mod queued;
pub mod server;
pub(crate) mod sockaddr;
pub mod transports;
