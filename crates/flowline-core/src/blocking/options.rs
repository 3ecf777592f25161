use std::fmt;
use std::num::NonZeroUsize;

use super::BlockingPool;

/// How a blocking stage runs: how many calls at once, in which order results
/// leave, and on which threads. Passed to
/// [`Pipeline::map_blocking_with`](crate::Pipeline::map_blocking_with).
///
/// The defaults ([`BlockingOptions::new`], also what
/// [`map_blocking`](crate::Pipeline::map_blocking) uses): ordered output, as
/// many calls at once as the machine has cores
/// ([`std::thread::available_parallelism`]), on threads of the stage's own.
/// Work that waits rather than computes (network, slow disks) usually wants
/// a higher [`parallelism`](Self::parallelism).
///
/// # Examples
///
/// ```
/// use flowline_core::{blocking::{BlockingOptions, BlockingPool}, producer};
///
/// let pool = BlockingPool::new(8);
/// let (mut out, _) = futures::executor::block_on(
///     producer::iter(1..=4u64)
///         .map_blocking_with(BlockingOptions::new().parallelism(2).unordered().pool(&pool), |x| x * x)
///         .run_collect(),
/// )
/// .unwrap();
/// out.sort();
/// assert_eq!(out, [1, 4, 9, 16]);
/// ```
#[derive(Clone, Default)]
pub struct BlockingOptions {
    parallelism: Option<NonZeroUsize>,
    unordered: bool,
    pool: Option<BlockingPool>,
}

impl BlockingOptions {
    /// The defaults: ordered, one call per core at once, threads of the
    /// stage's own.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` calls at once (and at most `2 × n` items between upstream
    /// and downstream). On a [`pool`](Self::pool) with fewer threads, the
    /// pool's thread count is the limit.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::blocking::BlockingOptions;
    ///
    /// let opts = BlockingOptions::new().parallelism(16); // 16 files read at once
    /// # let _ = opts;
    /// ```
    #[must_use]
    #[track_caller]
    pub fn parallelism(mut self, n: usize) -> Self {
        let Some(n) = NonZeroUsize::new(n) else {
            crate::rejection::reject(format_args!(
                "blocking parallelism must be at least 1, got 0; pass how many \
                 calls may run at once, e.g. .map_blocking_with(BlockingOptions::new().parallelism(4), f)"
            ));
        };
        self.parallelism = Some(n);
        self
    }

    /// Emits each result as soon as it is ready, in any order: a slow item
    /// does not hold back the ones after it. The stage is then named
    /// `map_blocking_unordered#N`.
    #[must_use]
    pub fn unordered(mut self) -> Self {
        self.unordered = true;
        self
    }

    /// Runs the calls on `pool`, shared with other stages: all stages on it
    /// together never use more than its threads. Parallelism defaults to the
    /// pool's thread count.
    #[must_use]
    pub fn pool(mut self, pool: &BlockingPool) -> Self {
        self.pool = Some(pool.clone());
        self
    }

    pub(crate) fn is_ordered(&self) -> bool {
        !self.unordered
    }

    /// The pool to run on and how many calls at once.
    pub(crate) fn resolve(self) -> (BlockingPool, usize) {
        let requested = self.parallelism.map(NonZeroUsize::get);
        match self.pool {
            Some(pool) => {
                let n = requested.map_or(pool.threads(), |n| n.min(pool.threads()));
                (pool, n)
            }
            None => {
                let n = requested.unwrap_or_else(default_parallelism);
                (BlockingPool::new(n), n)
            }
        }
    }
}

fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

impl fmt::Debug for BlockingOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingOptions")
            .field("parallelism", &self.parallelism)
            .field("ordered", &!self.unordered)
            .field("pool", &self.pool)
            .finish()
    }
}
