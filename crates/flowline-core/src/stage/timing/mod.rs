//! Batching and time: `batch`, `batch_weighted`, `throttle`, `debounce`,
//! `sample`, `idle_timeout`, `then_timeout` — pull-based adapters whose timers
//! come from the pipeline's runtime — and [`Elapsed`], their timeout error.

pub(crate) mod batch;
pub(crate) mod batch_weighted;
pub(crate) mod debounce;
pub(crate) mod elapsed;
pub(crate) mod idle_timeout;
pub(crate) mod sample;
pub(crate) mod then_timeout;
pub(crate) mod throttle;
