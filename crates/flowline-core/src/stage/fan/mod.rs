//! Fan-out: one pipeline split into several branch pipelines
//! ([`broadcast`](crate::Pipeline::broadcast),
//! [`balance`](crate::Pipeline::balance),
//! [`partition`](crate::Pipeline::partition)).
//!
//! Inside: `branch.rs` (the [`Branch`] stream every branch ends in),
//! `upstream.rs` (the one driver task the branches share), and one file per
//! routing method.
//!
//! The upstream runs as a single task that feeds one bounded queue per branch
//! (one queue shared by all workers for `balance`, pumped as a boundary's:
//! whole batches when the upstream's stages can hand them over). Every branch pipeline
//! holds a handle to that task: whichever branch is polled drives it, so the
//! branches may run on a runtime (each `.on_runtime(..)` spawns its handle, the
//! task still runs once at a time) or runtime-free under one
//! `futures::join!`. Dropping every branch cancels the upstream.

mod balance;
mod branch;
mod broadcast;
mod partition;
mod upstream;

pub use branch::Branch;
