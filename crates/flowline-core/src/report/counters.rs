//! [`Counters`]: named counts a stage adds to its entry in the run's report.

use std::fmt;

/// Named counts a stage publishes in the run's report, beyond the item
/// buckets every stage has: a connector's acks, a cache's hits. Attached to
/// a stage with [`Pipeline::with_counters`](crate::Pipeline::with_counters);
/// read each time a report is taken (at the end of the run, and by
/// [`RunReport`](crate::RunReport)s taken on failure), so they show the
/// counts as they stand then. They are not part of the stage's item
/// balance ([`StageReport::is_balanced`](crate::StageReport::is_balanced)):
/// an owner that keeps an invariant over them checks it itself.
///
/// Implemented for any `Fn() -> Vec<(&'static str, u64)>` that is `Send +
/// Sync`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use flowline_core::producer;
///
/// let evens = Arc::new(AtomicU64::new(0));
/// let seen = evens.clone();
/// let (_, report) = futures::executor::block_on(
///     producer::iter(1..=10u64)
///         .inspect(move |n| if n % 2 == 0 { seen.fetch_add(1, Ordering::Relaxed); })
///         .named("look")
///         .with_counters(move || vec![("evens", evens.load(Ordering::Relaxed))])
///         .run_collect(),
/// )
/// .unwrap();
/// assert_eq!(report.stage("look").unwrap().counter("evens"), Some(5));
/// assert!(report.to_string().lines().next().unwrap().ends_with("evens"));
/// ```
pub trait Counters: Send + Sync + 'static {
    /// The counts now, as `(name, count)` pairs in the order to show them.
    fn counters(&self) -> Vec<(&'static str, u64)>;
}

impl<F> Counters for F
where
    F: Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
{
    fn counters(&self) -> Vec<(&'static str, u64)> {
        self()
    }
}

impl fmt::Debug for dyn Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.counters()).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::producer;

    #[test]
    fn published_counts_show_as_columns_and_in_the_entry() {
        let (_, report) = futures::executor::block_on(
            producer::iter(1..=4u32)
                .with_counters(|| vec![("hits", 3), ("misses", 0)])
                .filter(|x| x % 2 == 0)
                .named("evens")
                .run_collect(),
        )
        .unwrap();
        assert_eq!(
            report.stages[0].counters,
            [("hits".to_string(), 3), ("misses".to_string(), 0)]
        );
        assert!(report.stages[1].counters.is_empty());
        assert!(report.stages.iter().all(|s| s.is_balanced()));
        let table = report.to_string();
        assert!(
            table.starts_with(
                "stage       kind      in  out  filtered  hits  misses\n\
                 iter#0      source     4    4         0     3       0\n\
                 evens       fused      4    2         2     -       -\n\
                 consumer#2  consumer   2    2         0     -       -\n\
                 elapsed "
            ),
            "{table}"
        );
    }

    #[test]
    fn counts_are_read_when_the_report_is_taken() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;

        let seen = Arc::new(AtomicU64::new(0));
        let count = seen.clone();
        let (_, report) = futures::executor::block_on(
            producer::iter(0..5u32)
                .inspect(move |_| {
                    count.fetch_add(1, Ordering::Relaxed);
                })
                .with_counters(move || vec![("seen", seen.load(Ordering::Relaxed))])
                .with_counters(|| vec![("fixed", 7)])
                .run_collect(),
        )
        .unwrap();
        assert_eq!(
            report.stages[1].counters,
            [("seen".to_string(), 5), ("fixed".to_string(), 7)]
        );
    }
}
