//! Concurrent maps: `map_concurrent` (ordered), `map_concurrent_unordered`
//! and `map_concurrent_by_key`, on one engine (`concurrent.rs`) that a task of
//! the stage's own keeps moving while downstream is busy; `local.rs` for
//! their `_local` twins (upstreams, closures and futures that are not `Send`).

pub(crate) mod concurrent;
pub(crate) mod local;
pub(crate) mod map_concurrent;
pub(crate) mod map_concurrent_by_key;
pub(crate) mod map_concurrent_unordered;
