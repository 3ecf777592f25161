//! Buffers and overflow: the async [`Boundary`] (upstream in a task of its
//! own behind a bounded queue), its [`BoundaryLocal`] twin for upstreams that
//! are not `Send`, and the [`Buffer`] whose queue applies an [`Overflow`]
//! policy.

pub(crate) mod boundary;
pub(crate) mod boundary_local;
pub(crate) mod buffer;
pub(crate) mod overflow;
