use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

/// A unit of work for a pool thread. Jobs catch their own panics.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded set of worker threads that several blocking stages can share,
/// so that together they never use more than `threads` threads.
///
/// Threads start lazily, when work first arrives, and are named
/// `flowline-blk-N`. When the last handle is dropped — the `BlockingPool`
/// values and every stage built on it — queued work that has not started is
/// discarded, calls in progress finish, and the threads exit.
///
/// Pass it to [`Pipeline::map_blocking_on`](crate::Pipeline::map_blocking_on)
/// or [`Pipeline::map_blocking_unordered_on`](crate::Pipeline::map_blocking_unordered_on).
/// [`Pipeline::map_blocking`](crate::Pipeline::map_blocking) creates a pool of
/// its own.
///
/// # Panics
///
/// [`new`](Self::new) panics if `threads` is 0.
///
/// # Examples
///
/// ```
/// use flowline_core::{blocking::BlockingPool, producer};
///
/// let pool = BlockingPool::new(2); // at most 2 threads for both stages
/// let (out, _) = futures::executor::block_on(
///     producer::iter(1..=4u64)
///         .map_blocking_on(&pool, |x| x * 10)
///         .map_blocking_unordered_on(&pool, |x| x + 1)
///         .collect(),
/// )
/// .unwrap();
/// let mut out = out;
/// out.sort();
/// assert_eq!(out, [11, 21, 31, 41]);
/// ```
#[derive(Clone)]
pub struct BlockingPool {
    handle: Arc<PoolHandle>,
}

/// Shuts the pool down when the last `BlockingPool` clone is dropped. The
/// threads hold `Shared`, not this, so they cannot keep the pool alive.
struct PoolHandle {
    shared: Arc<Shared>,
}

struct Shared {
    max_threads: usize,
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// A thread is being started: it starts the next one itself if work is
    /// still waiting, so thread creation stays off the submitting task.
    spawning: bool,
    shutdown: bool,
    next_id: usize,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BlockingPool {
    /// A pool of at most `threads` worker threads, none started yet.
    ///
    /// # Panics
    ///
    /// If `threads` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flowline_core::blocking::BlockingPool::new(4);
    /// assert_eq!(pool.threads(), 4);
    /// ```
    #[track_caller]
    pub fn new(threads: usize) -> Self {
        if threads == 0 {
            crate::rejection::reject(format_args!(
                "blocking pool threads must be at least 1, got 0; \
                 pass how many blocking calls may run at once, e.g. BlockingPool::new(4)"
            ));
        }
        BlockingPool {
            handle: Arc::new(PoolHandle {
                shared: Arc::new(Shared {
                    max_threads: threads,
                    state: Mutex::new(State::default()),
                    work: Condvar::new(),
                }),
            }),
        }
    }

    /// The most threads this pool runs at once.
    pub fn threads(&self) -> usize {
        self.handle.shared.max_threads
    }

    /// Queues `job`, starting a thread if every running one is busy and the
    /// pool has room for another.
    pub(crate) fn submit(&self, job: Job) {
        let shared = &self.handle.shared;
        let mut state = lock(&shared.state);
        state.jobs.push_back(job);
        if state.idle >= state.jobs.len() {
            drop(state);
            shared.work.notify_one();
        } else if state.threads < shared.max_threads && !state.spawning {
            Shared::spawn(shared, state);
        } else if state.idle > 0 {
            drop(state);
            shared.work.notify_one();
        }
    }
}

impl Shared {
    /// Starts one more thread; `state` is the locked state.
    fn spawn(shared: &Arc<Shared>, mut state: MutexGuard<'_, State>) {
        state.threads += 1;
        state.spawning = true;
        let id = state.next_id;
        state.next_id += 1;
        drop(state);
        let worker = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("flowline-blk-{id}"))
            .spawn(move || worker.run());
        if spawned.is_err() {
            // Out of threads: the running ones (if any) will take the work.
            let mut state = lock(&shared.state);
            state.threads -= 1;
            state.spawning = false;
            drop(state);
            shared.work.notify_one();
        }
    }

    fn run(self: Arc<Self>) {
        let mut state = lock(&self.state);
        state.spawning = false;
        // This thread takes one job; start another if more are waiting.
        if state.jobs.len() > state.idle + 1 && state.threads < self.max_threads && !state.shutdown
        {
            Shared::spawn(&self, state);
            state = lock(&self.state);
        }
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                job();
                state = lock(&self.state);
            } else if state.shutdown {
                state.threads -= 1;
                return;
            } else {
                state.idle += 1;
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.idle -= 1;
            }
        }
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        let discarded = {
            let mut state = lock(&self.shared.state);
            state.shutdown = true;
            std::mem::take(&mut state.jobs)
        };
        // Dropped outside the lock: a job's captures may run arbitrary drops.
        drop(discarded);
        self.shared.work.notify_all();
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.handle.shared.state);
        f.debug_struct("BlockingPool")
            .field("max_threads", &self.handle.shared.max_threads)
            .field("threads", &state.threads)
            .field("idle", &state.idle)
            .field("queued", &state.jobs.len())
            .finish()
    }
}
