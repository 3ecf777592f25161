//! flowline benchmarks.
fn main() {}
