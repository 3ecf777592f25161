//! Probes in the style of Akka Streams' `TestSource`/`TestSink`: a source
//! and a sink the test drives by hand, step by step, in virtual time.
//!
//! Inside: `source.rs` ([`TestSource`]), `sink.rs` ([`TestSink`]).

mod sink;
mod source;

pub use sink::TestSink;
pub use source::TestSource;
