//! The [smol](https://docs.rs/smol) runtime for
//! [flowline](https://docs.rs/flowline).
//!
//! [`SmolRuntime`] runs a pipeline's tasks on smol's global executor (or an
//! `Executor` you own), its timers on `async-io` and its blocking calls on the
//! `blocking` thread pool. It is defined in `flowline-core` behind its `smol`
//! feature, which this crate turns on, so that a pipeline that names no
//! runtime runs on smol (see `flowline_core::runtime::default_runtime`).
//!
//! # Examples
//!
//! ```
//! use flowline_core::producer;
//! use flowline_smol::SmolRuntime;
//!
//! let (sum, _) = smol::block_on(
//!     producer::iter(1..=100u64)
//!         .boundary(32)
//!         .on(SmolRuntime::new())
//!         .run_fold(0, |a, x| a + x),
//! )
//! .unwrap();
//! assert_eq!(sum, 5050);
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub use flowline_core::runtime::SmolRuntime;
