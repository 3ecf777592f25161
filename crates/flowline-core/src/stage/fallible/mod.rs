//! Fallible stages: `try_map` and `try_then`, whose failures the stage's
//! error policy handles (stop, skip, retry, dead-letter).

pub(crate) mod try_map;
pub(crate) mod try_then;
