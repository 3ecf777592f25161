//! Fan-in: [`Merge`], [`Zip`], [`Chain`] join two pipelines and
//! [`merge_all`] many; the other side's stages and tasks join the run.

pub(crate) mod chain;
pub(crate) mod merge;
pub(crate) mod merge_all;
pub(crate) mod zip;
