use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

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
    /// Several inputs, one output (merge, zip, concat).
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

    /// Adds `n` from any thread (a locked add: for counters several threads
    /// share, or that move off the hot path).
    #[allow(dead_code)]
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
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
    /// Items that failed (error or panic) and ended the run.
    pub(crate) failed: Counter,
    panicked: AtomicBool,
}

impl StageInfo {
    pub(crate) fn new(name: String, kind: StageKind, inputs: Vec<usize>) -> Self {
        StageInfo {
            name: Mutex::new(name),
            kind,
            inputs: Mutex::new(inputs),
            out: Counter::default(),
            dropped: Counter::default(),
            failed: Counter::default(),
            panicked: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> String {
        self.name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn rename(&self, name: String) {
        *self.name.lock().unwrap_or_else(PoisonError::into_inner) = name;
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
        if let Some((prefix, index)) = name.rsplit_once('#') {
            if index == old.to_string() {
                *name = format!("{prefix}#{new}");
            }
        }
    }

    pub(crate) fn has_panicked(&self) -> bool {
        self.panicked.load(Relaxed)
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
