//! Rejection of invalid configuration when a pipeline is built (design
//! invariant 5), before any item moves.
//!
//! Every rejection panics through [`reject`], so all of them look alike and
//! carry the same payload type: a `String` reading
//! `flowline: <what is wrong>; <what to pass>, e.g. <call>`, where `<call>`
//! is valid Rust: the call that was made, with each invalid argument
//! replaced by a typical value and every other argument kept — its value
//! when it prints as Rust (a count, an [`Overflow`](crate::stage::Overflow)),
//! else its parameter's name (`f`, `key_fn`, `max_wait`).

use std::fmt;
use std::time::Duration;

use crate::stage::Overflow;

/// Panics with `flowline: {message}`, as a `String` payload.
#[cold]
#[track_caller]
pub(crate) fn reject(message: fmt::Arguments<'_>) -> ! {
    panic!("flowline: {message}")
}

/// `value`, or `typical` in its place when it is 0: an argument of a
/// suggested call.
pub(crate) fn or_typical(value: usize, typical: usize) -> usize {
    if value == 0 {
        typical
    } else {
        value
    }
}

/// `overflow` as the Rust expression that makes it.
pub(crate) fn overflow_expr(overflow: Overflow) -> String {
    format!("Overflow::{overflow:?}")
}

/// `d` as a Rust expression making that `Duration`.
pub(crate) fn duration_expr(d: Duration) -> String {
    match (d.as_secs(), d.subsec_nanos()) {
        (s, 0) => format!("Duration::from_secs({s})"),
        (s, n) if n % 1_000_000 == 0 => {
            format!(
                "Duration::from_millis({})",
                s * 1000 + u64::from(n / 1_000_000)
            )
        }
        _ => format!("Duration::from_nanos({})", d.as_nanos()),
    }
}
