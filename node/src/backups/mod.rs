//! Backups: every finished output on more than one machine (`repair`, on
//! the leader), every held copy re-verified (`scrub`, on every node), and
//! blobs nothing refers to any more removed (`gc`, on every node; `discard`
//! when one operation is done with a blob). The
//! decisions are pure functions in `plan`; [`Backups`] is the handle.

pub mod discard;
pub mod gc;
mod handle;
pub mod plan;
pub mod repair;
pub mod scrub;
pub mod serve;

pub use handle::Backups;
