//! Fused stages: one-to-one or filtering adapters that run inside the task
//! polling them, at the cost of a call (`map`, `filter`, `filter_map`,
//! `then`, `inspect`).

pub(crate) mod filter;
pub(crate) mod filter_map;
pub(crate) mod inspect;
pub(crate) mod map;
pub(crate) mod then;
