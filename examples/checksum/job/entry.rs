//! What happened to one path.

use std::path::PathBuf;

/// The result for one path, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Read and hashed.
    Hashed {
        /// The path as given or as found under a given directory.
        path: PathBuf,
        /// Lowercase hex digest, as `sha256sum` / `b3sum` print it.
        hex: String,
        /// Bytes read.
        bytes: u64,
    },
    /// Not opened: a special file found by the walk, or a directory on a
    /// pseudo filesystem (proc, sysfs).
    Skipped {
        /// The path.
        path: PathBuf,
        /// Why, e.g. `fifo` or `symlink`.
        why: String,
    },
    /// Could not be read: missing, permission denied, read error.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The error, worded as coreutils words it.
        error: String,
    },
}
