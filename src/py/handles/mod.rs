//! asyncio's handles: `Handle` (`call_soon`), `TimerHandle` (`call_later`, `call_at`) and
//! `_ThreadSafeHandle` (`call_soon_threadsafe` on 3.14+); how one runs; and how the loop's
//! queues hold them (`queued`: hidden from the collector while only the loop holds them;
//! `pool`: spare handles, refilled instead of made anew).

mod handle;
mod methods;
mod owner;
mod pool;
mod queued;
mod run;
mod threadsafe;
mod timer;

pub(crate) use handle::{cancel, Emptied, Handle};
pub(crate) use owner::{install_loop_link, HandleLoop};
pub(crate) use pool::{HandlePool, SpareKind};
pub(crate) use queued::Queued;
pub(crate) use run::{is_exit, report, run};
pub(crate) use threadsafe::ThreadSafeHandle;
pub(crate) use timer::{Due, TimerHandle};
