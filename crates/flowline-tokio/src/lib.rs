//! The [tokio](https://docs.rs/tokio) runtime for
//! [flowline](https://docs.rs/flowline).
//!
//! [`TokioRuntime`] runs a pipeline's tasks, timers and blocking calls on a
//! tokio runtime: the current one ([`TokioRuntime::current`],
//! [`TokioRuntime::try_current`]) or one given by its
//! [`Handle`].
//!
//! [`Handle`]: tokio::runtime::Handle
//!
//! # Examples
//!
//! ```
//! use flowline_core::producer;
//! use flowline_tokio::TokioRuntime;
//!
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(2)
//!     .enable_time()
//!     .build()
//!     .unwrap();
//! let (sum, _) = rt
//!     .block_on(async {
//!         producer::iter(1..=100u64)
//!             .boundary(32)
//!             .on(TokioRuntime::current())
//!             .run_fold(0, |a, x| a + x)
//!             .await
//!     })
//!     .unwrap();
//! assert_eq!(sum, 5050);
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub use flowline_core::runtime::{NoTokioRuntime, TokioRuntime};
