use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use crate::report::Counters;

/// What a stage does, as shown in reports and topology exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StageKind {
    /// Where items come from.
    Source,
    /// A transformation fused into its upstream's task.
    Fused,
    /// An async boundary: upstream runs as its own task behind a bounded queue.
    Boundary,
    /// Synchronous work on a pool of worker threads.
    Blocking,
    /// Several futures in flight at once.
    Concurrent,
    /// Groups items (by count, weight or time).
    Batch,
    /// Shapes the timing of items (throttle, timeout, debounce, …).
    Timing,
    /// A buffer with an overflow strategy.
    Buffer,
    /// One input, several outputs (broadcast, balance, partition).
    FanOut,
    /// Several inputs, one output (merge, zip, chain).
    FanIn,
    /// A bridge between synchronous code and the pipeline.
    Bridge,
    /// Where items end up.
    Consumer,
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StageKind::Source => "source",
            StageKind::Fused => "fused",
            StageKind::Boundary => "boundary",
            StageKind::Blocking => "blocking",
            StageKind::Concurrent => "concurrent",
            StageKind::Batch => "batch",
            StageKind::Timing => "timing",
            StageKind::Buffer => "buffer",
            StageKind::FanOut => "fan-out",
            StageKind::FanIn => "fan-in",
            StageKind::Bridge => "bridge",
            StageKind::Consumer => "consumer",
        })
    }
}

/// A monotonically growing item counter.
///
/// [`bump`](Self::bump) is for the single task that owns a stage (it holds the
/// stage's `Pin<&mut>`): a relaxed load and store, which compile to plain moves,
/// so counting costs no locked instruction on the hot path.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline(always)]
    pub(crate) fn bump(&self) {
        self.0.store(self.0.load(Relaxed) + 1, Relaxed);
    }

    /// [`bump`](Self::bump) by `n`: for a stage that moves a batch at a
    /// time.
    #[inline(always)]
    pub(crate) fn bump_by(&self, n: u64) {
        self.0.store(self.0.load(Relaxed) + n, Relaxed);
    }

    /// Takes back `n` items counted by the same task that counts them (a
    /// batch given back after a panic: see `queue::Batched`). The only
    /// time a count goes down.
    pub(crate) fn take_back(&self, n: u64) {
        self.0
            .store(self.0.load(Relaxed).saturating_sub(n), Relaxed);
    }

    /// Adds `n` from any thread (a locked add: for counters several threads
    /// share, or that move off the hot path).
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Adds the items a stage moved in a batch to its counter when dropped:
/// also when user code unwinds mid-batch, so the items moved before the
/// panic are counted as they would be one by one.
pub(crate) struct CountOnDrop<'a> {
    counter: &'a Counter,
    pub(crate) n: usize,
}

impl<'a> CountOnDrop<'a> {
    pub(crate) fn new(counter: &'a Counter) -> Self {
        CountOnDrop { counter, n: 0 }
    }
}

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        self.counter.bump_by(self.n as u64);
    }
}

/// The shared record of one stage: its name, its counters and whether user
/// code panicked inside it. Held by the stage adapter and by the pipeline.
#[derive(Debug)]
pub(crate) struct StageInfo {
    name: Mutex<String>,
    pub(crate) kind: StageKind,
    /// Indices (in the pipeline's stage list) of the stages feeding this one.
    /// Behind a lock only because fan-in renumbers an absorbed pipeline's
    /// stages (at build time, never on the hot path).
    inputs: Mutex<Vec<usize>>,
    /// Items this stage emitted downstream.
    pub(crate) out: Counter,
    /// Items dropped by an explicit overflow policy.
    pub(crate) dropped: Counter,
    /// Items merged into a unit another item stands for (batch, zip).
    pub(crate) grouped: Counter,
    /// Items left out by the stage's design (debounce, sample, an unmatched
    /// zip item, a boundary's queue when its reader went away).
    pub(crate) discarded: Counter,
    /// Items that failed (error or panic) and ended the run.
    pub(crate) failed: Counter,
    /// Items the user's predicate removed, for stages that count them one by
    /// one. Fused filters do not (see [`set_filtering`](Self::set_filtering)).
    pub(crate) filtered: Counter,
    /// Items a fused filter had passed on that a panic downstream gave back
    /// unreached (see `queue::Batched`): in flight here, not filtered.
    pub(crate) held: Counter,
    /// Whether the stage is a fused filter whose `filtered` count is what
    /// went in and did not come out otherwise.
    filtering: AtomicBool,
    /// Items routed to this stage, for a stage that counts its own input
    /// rather than summing its inputs' `out` (a `balance` or `partition`
    /// branch gets only some of its upstream's items).
    pub(crate) routed_in: Counter,
    counts_in: AtomicBool,
    /// Whether the stage is a fused one-to-one stage (`map`, `inspect`)
    /// whose `out` is derived rather than counted.
    passthrough: AtomicBool,
    /// Extra attempts made by a retry policy (attempts, not items).
    pub(crate) retried: Counter,
    /// Items whose failure a `Skip` policy (or exhausted retries) dropped.
    pub(crate) skipped: Counter,
    /// Items handed to a dead-letter consumer.
    pub(crate) dead_lettered: Counter,
    /// Nanoseconds spent in user code, where the stage measures it (the
    /// fallible stages, `try_map` and `try_then`; never fused `map`/`filter`,
    /// to keep them free).
    pub(crate) busy_nanos: Counter,
    panicked: AtomicBool,
    /// Named counts published with `Pipeline::with_counters`, read when a
    /// report is taken.
    counters: Mutex<Vec<Arc<dyn Counters>>>,
    #[cfg(feature = "tracing")]
    span: std::sync::OnceLock<tracing::Span>,
}

impl StageInfo {
    pub(crate) fn new(name: String, kind: StageKind, inputs: Vec<usize>) -> Self {
        StageInfo {
            name: Mutex::new(name),
            kind,
            inputs: Mutex::new(inputs),
            out: Counter::default(),
            dropped: Counter::default(),
            grouped: Counter::default(),
            discarded: Counter::default(),
            failed: Counter::default(),
            filtered: Counter::default(),
            held: Counter::default(),
            filtering: AtomicBool::new(false),
            routed_in: Counter::default(),
            counts_in: AtomicBool::new(false),
            passthrough: AtomicBool::new(false),
            retried: Counter::default(),
            skipped: Counter::default(),
            dead_lettered: Counter::default(),
            busy_nanos: Counter::default(),
            panicked: AtomicBool::new(false),
            counters: Mutex::default(),
            #[cfg(feature = "tracing")]
            span: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn name(&self) -> String {
        self.name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes `counters` in this stage's report entries.
    pub(crate) fn add_counters(&self, counters: Arc<dyn Counters>) {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(counters);
    }

    /// The published counts now, in the order they were added.
    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        let all = self
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        all.iter()
            .flat_map(|c| c.counters())
            .map(|(name, n)| (name.to_owned(), n))
            .collect()
    }

    pub(crate) fn rename(&self, name: String) {
        *self.name.lock().unwrap_or_else(PoisonError::into_inner) = name;
    }

    /// The stage's `tracing` span (`flowline.stage`, with its name and kind),
    /// created on first use so a rename with `.named(..)` is reflected.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> &tracing::Span {
        self.span.get_or_init(|| {
            tracing::info_span!(
                "flowline.stage",
                stage = %self.name(),
                kind = %self.kind,
            )
        })
    }

    /// Counts `item`, if there is one, as emitted downstream, and returns it.
    #[inline]
    pub(crate) fn emit<T>(&self, item: Option<T>) -> Option<T> {
        if item.is_some() {
            self.out.bump();
        }
        item
    }

    /// Adds `elapsed` to the stage's busy time.
    pub(crate) fn add_busy(&self, elapsed: std::time::Duration) {
        self.busy_nanos
            .add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Marks a fused filter: it holds no item between polls, so every item
    /// that went in and did not come out, fail or get dropped was filtered.
    /// Deriving the count keeps a counter update off the filter's hot path.
    pub(crate) fn set_filtering(&self) {
        self.filtering.store(true, Relaxed);
    }

    pub(crate) fn is_filtering(&self) -> bool {
        self.filtering.load(Relaxed)
    }

    /// Marks the stage as counting its own input in `routed_in`.
    pub(crate) fn set_counts_in(&self) {
        self.counts_in.store(true, Relaxed);
    }

    pub(crate) fn counts_in(&self) -> bool {
        self.counts_in.load(Relaxed)
    }

    /// Marks a fused one-to-one stage: it holds no item between polls and
    /// emits exactly one item per item in unless the item failed, so its
    /// `out` is `in − failed` and needs no counter on the hot path.
    pub(crate) fn set_passthrough(&self) {
        self.passthrough.store(true, Relaxed);
    }

    pub(crate) fn is_passthrough(&self) -> bool {
        self.passthrough.load(Relaxed)
    }

    /// Indices of the stages feeding this one.
    pub(crate) fn inputs(&self) -> Vec<usize> {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Renumbers this stage after its pipeline was absorbed by another (fan-in):
    /// its inputs through `map`, and a default name `<prefix>#<old>` to
    /// `<prefix>#<new>`.
    pub(crate) fn renumber(&self, old: usize, new: usize, map: impl Fn(usize) -> usize) {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        for i in inputs.iter_mut() {
            *i = map(*i);
        }
        let mut name = self.name.lock().unwrap_or_else(PoisonError::into_inner);
        // A generated name is `<prefix>#<index>`; a fan-out branch's stages
        // carry a branch suffix (`#2.1`) that keeps them unique as they are,
        // and a user's name is left alone.
        if let Some((prefix, index)) = name.rsplit_once('#') {
            if index == old.to_string() {
                *name = format!("{prefix}#{new}");
            }
        }
    }

    /// Whether user code of this stage unwound since the last call: the
    /// mark is taken, so each panic is charged to its stage once.
    pub(crate) fn take_panic_mark(&self) -> bool {
        self.panicked.swap(false, Relaxed)
    }

    /// Runs user code `f`, marking this stage if it unwinds.
    ///
    /// The guard is forgotten on the normal path, so the cost is a landing pad,
    /// not a branch; the panic itself keeps unwinding to the task boundary,
    /// which reads the mark to name the stage in the error.
    #[inline(always)]
    pub(crate) fn guard<R>(&self, f: impl FnOnce() -> R) -> R {
        let mark = PanicMark(self);
        let out = f();
        std::mem::forget(mark);
        out
    }
}

struct PanicMark<'a>(&'a StageInfo);

impl Drop for PanicMark<'_> {
    fn drop(&mut self) {
        self.0.panicked.store(true, Relaxed);
    }
}
