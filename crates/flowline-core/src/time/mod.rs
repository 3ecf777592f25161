//! Timers for user code that follow the pipeline's runtime: [`sleep`],
//! [`sleep_until`], [`interval`], [`timeout`] and [`now`].
//!
//! Called from code a pipeline runs (a generator, a `then` future, a
//! consumer), they use that pipeline's runtime — smol, tokio, or a test kit's
//! virtual clock — so user code does not change when the runtime does.
//! Called elsewhere, they use [`default_runtime`](crate::runtime::default_runtime),
//! or the runtime-free timers (`async-io`) when no runtime feature is on.
//!
//! A pipeline makes its runtime current while it polls user code: its run
//! does for the fused stages and the consumer, and each of its tasks does
//! for the stages the task runs.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use flowline_core::{producer, time};
//!
//! let ticks = producer::generator(|out| async move {
//!     for n in 0..3u32 {
//!         time::sleep(Duration::from_millis(1)).await; // the pipeline's runtime
//!         out.emit(n).await;
//!     }
//! });
//! let (items, _) = futures::executor::block_on(ticks.run_collect()).unwrap();
//! assert_eq!(items, [0, 1, 2]);
//! ```

mod current;
mod interval;
mod timeout;

use std::time::{Duration, Instant};

pub use crate::stage::Elapsed;
pub use current::current_runtime;
pub(crate) use current::{enter_in, pipeline_runtime, swap_in, InRuntime};
pub use interval::{interval, Interval};
pub use timeout::{timeout, Timeout};

use crate::runtime::{RuntimeExt as _, Sleep};

/// A future that completes after `duration` on the current runtime's clock
/// (see the [module docs](self)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// futures::executor::block_on(flowline_core::time::sleep(Duration::from_millis(1)));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    current_runtime().sleep(duration)
}

/// A future that completes at `deadline` on the current runtime's clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowline_core::time;
///
/// let deadline = time::now() + Duration::from_millis(1);
/// futures::executor::block_on(time::sleep_until(deadline));
/// assert!(time::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    current_runtime().sleep_until(deadline)
}

/// The current instant on the current runtime's clock (virtual under a test
/// kit's clock, paused under `tokio::time::pause`).
///
/// # Examples
///
/// ```
/// let before = flowline_core::time::now();
/// assert!(flowline_core::time::now() >= before);
/// ```
pub fn now() -> Instant {
    current_runtime().now()
}
