use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::runtime::Runtime;

/// A unit of work for a pool thread. Jobs catch their own panics.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a thread with nothing to do waits for work before it exits.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(500);

/// A bounded set of worker threads that several blocking stages can share,
/// so that together they never use more than `threads` threads.
///
/// Threads start when work arrives, are named `flowline-blk-N`, and exit
/// after waiting [`idle_timeout`](Self::idle_timeout) (500 ms unless set
/// with [`with_idle_timeout`](Self::with_idle_timeout)) with nothing to do,
/// like the `blocking` crate's pool: a quiet pipeline holds no thread. When
/// the last handle is dropped — the `BlockingPool` values and every stage
/// built on it — work that has not started is discarded, calls in progress
/// finish, and the threads exit at once.
///
/// Pass it to a blocking stage with
/// [`BlockingOptions::pool`](crate::blocking::BlockingOptions::pool). A stage
/// given no pool creates one of its own, which ends with the stage.
///
/// # Panics
///
/// [`new`](Self::new) panics if `threads` is 0.
///
/// # Examples
///
/// ```
/// use flowline_core::{blocking::{BlockingOptions, BlockingPool}, producer};
///
/// let pool = BlockingPool::new(2); // at most 2 threads for both stages
/// let (mut out, _) = futures::executor::block_on(
///     producer::iter(1..=4u64)
///         .map_blocking_with(BlockingOptions::new().pool(&pool), |x| x * 10)
///         .map_blocking_with(BlockingOptions::new().pool(&pool).unordered(), |x| x + 1)
///         .run_collect(),
/// )
/// .unwrap();
/// out.sort();
/// assert_eq!(out, [11, 21, 31, 41]);
/// ```
#[derive(Clone)]
pub struct BlockingPool {
    handle: Arc<PoolHandle>,
}

/// Shuts the pool down when the last `BlockingPool` clone is dropped. The
/// threads and queued jobs hold `Shared`, not this, so they cannot keep the
/// pool alive.
struct PoolHandle {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    max_threads: usize,
    name: &'static str,
    state: Mutex<State>,
    work: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Threads started that have not yet looked for work. The first one
    /// starts whatever more the queued work needs, all at once, so thread
    /// creation stays off the submitting task and never waits for a new
    /// thread to be scheduled before starting the next.
    starting: usize,
    shutdown: bool,
    next_id: usize,
    idle_timeout: Duration,
    started: u64,
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
    /// assert_eq!(pool.live_threads(), 0);
    /// ```
    #[track_caller]
    pub fn new(threads: usize) -> Self {
        if threads == 0 {
            crate::rejection::reject(format_args!(
                "blocking pool threads must be at least 1, got 0; \
                 pass how many blocking calls may run at once, e.g. BlockingPool::new(4)"
            ));
        }
        Self::named(threads, "flowline-blk-")
    }

    /// A pool whose threads are named `name`, followed by a number when
    /// `name` ends with `-`.
    pub(crate) fn named(threads: usize, name: &'static str) -> Self {
        BlockingPool {
            handle: Arc::new(PoolHandle {
                shared: Arc::new(Shared {
                    max_threads: threads,
                    name,
                    state: Mutex::new(State {
                        jobs: VecDeque::new(),
                        threads: 0,
                        idle: 0,
                        starting: 0,
                        shutdown: false,
                        next_id: 0,
                        idle_timeout: DEFAULT_IDLE_TIMEOUT,
                        started: 0,
                    }),
                    work: Condvar::new(),
                }),
            }),
        }
    }

    /// Sets how long a thread waits for work before it exits (500 ms by
    /// default). Threads already waiting keep the timeout they started with.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowline_core::blocking::BlockingPool;
    ///
    /// let pool = BlockingPool::new(8).with_idle_timeout(Duration::from_secs(2));
    /// assert_eq!(pool.idle_timeout(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_idle_timeout(self, timeout: Duration) -> Self {
        lock(&self.handle.shared.state).idle_timeout = timeout;
        self
    }

    /// How long a thread waits for work before it exits.
    pub fn idle_timeout(&self) -> Duration {
        lock(&self.handle.shared.state).idle_timeout
    }

    /// The most threads this pool runs at once.
    pub fn threads(&self) -> usize {
        self.handle.shared.max_threads
    }

    /// How many threads are alive now (busy or waiting for work).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = flowline_core::blocking::BlockingPool::new(2);
    /// assert_eq!(pool.live_threads(), 0); // threads start with the first work
    /// ```
    pub fn live_threads(&self) -> usize {
        lock(&self.handle.shared.state).threads
    }

    /// How many threads this pool has started since it was created (threads
    /// that exited when idle included).
    pub fn started_threads(&self) -> u64 {
        lock(&self.handle.shared.state).started
    }

    /// The queue jobs go to; it does not keep the pool alive.
    pub(crate) fn queue(&self) -> PoolQueue {
        PoolQueue(self.handle.shared.clone())
    }
}

/// Runs `f` inside `runtime`'s context (see [`Runtime::enter`]), or plainly
/// when the pipeline runs without a runtime.
pub(crate) fn run_in(runtime: Option<Arc<dyn Runtime>>, f: impl FnOnce()) {
    match runtime {
        Some(rt) => {
            let mut f = Some(f);
            rt.enter(&mut || {
                if let Some(f) = f.take() {
                    f();
                }
            });
        }
        None => f(),
    }
}

/// Submits jobs to a pool without keeping it alive: after the last
/// [`BlockingPool`] handle is gone, submitted jobs are dropped unrun.
#[derive(Clone)]
pub(crate) struct PoolQueue(Arc<Shared>);

impl PoolQueue {
    /// Queues `job`, starting a thread if every running one is busy and the
    /// pool has room for another.
    pub(crate) fn submit(&self, job: Job) {
        let shared = &self.0;
        let mut state = lock(&shared.state);
        if state.shutdown {
            drop(state);
            drop(job);
            return;
        }
        state.jobs.push_back(job);
        let idle = state.idle;
        if state.jobs.len() > idle + state.starting
            && state.threads < shared.max_threads
            && state.starting == 0
        {
            Shared::spawn(shared, state, 1);
        } else {
            drop(state);
        }
        if idle > 0 {
            shared.work.notify_one();
        }
    }

    /// Whether jobs are waiting for a thread: a long-running job should make
    /// room (requeue itself) so that every stage on the pool gets its turn.
    pub(crate) fn is_contended(&self) -> bool {
        let state = lock(&self.0.state);
        !state.jobs.is_empty() && state.idle == 0
    }
}

impl Shared {
    /// Starts `n` more threads; `state` is the locked state.
    fn spawn(shared: &Arc<Shared>, mut state: MutexGuard<'_, State>, n: usize) {
        state.threads += n;
        state.started += n as u64;
        state.starting += n;
        let first_id = state.next_id;
        state.next_id += n;
        drop(state);
        for id in first_id..first_id + n {
            let worker = shared.clone();
            let spawned = thread::Builder::new()
                .name(if shared.name.ends_with('-') {
                    format!("{}{id}", shared.name)
                } else {
                    shared.name.to_string()
                })
                .spawn(move || worker.run());
            if spawned.is_err() {
                // Out of threads: the running ones (if any) take the work.
                let mut state = lock(&shared.state);
                state.threads -= 1;
                state.started -= 1;
                state.starting -= 1;
            }
        }
    }

    fn run(self: Arc<Self>) {
        let mut state = lock(&self.state);
        state.starting -= 1;
        loop {
            if state.shutdown {
                break;
            }
            if let Some(job) = state.jobs.pop_front() {
                // Grow from the worker side: the submitting task never waits
                // for a thread to start.
                let wanted = state
                    .jobs
                    .len()
                    .saturating_sub(state.idle + state.starting)
                    .min(self.max_threads - state.threads);
                if wanted > 0 {
                    Shared::spawn(&self, state, wanted);
                } else {
                    drop(state);
                }
                job();
                state = lock(&self.state);
                continue;
            }
            let timeout = state.idle_timeout;
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.jobs.is_empty() {
                break;
            }
        }
        state.threads -= 1;
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
            .field("idle_timeout", &state.idle_timeout)
            .finish()
    }
}

impl fmt::Debug for PoolQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolQueue").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn idle_threads_exit_after_the_timeout() {
        let pool = BlockingPool::new(3).with_idle_timeout(Duration::from_millis(20));
        let (done_tx, done_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        for _ in 0..3 {
            let (done_tx, go_rx) = (done_tx.clone(), go_rx.clone());
            pool.queue().submit(Box::new(move || {
                done_tx.send(()).unwrap();
                // Holds the thread until the test lets go, so the pool must
                // start a thread per job.
                let _ = go_rx.lock().unwrap().recv();
            }));
        }
        for _ in 0..3 {
            done_rx.recv().unwrap();
        }
        assert_eq!(pool.live_threads(), 3);
        drop(go_tx);
        // Each thread exits once it has been idle for 20 ms.
        while pool.live_threads() > 0 {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.started_threads(), 3);
        // Work after that starts a thread again.
        pool.queue()
            .submit(Box::new(move || done_tx.send(()).unwrap()));
        done_rx.recv().unwrap();
        assert_eq!(pool.started_threads(), 4);
    }

    #[test]
    fn dropping_the_pool_discards_queued_jobs() {
        let pool = BlockingPool::new(1);
        let queue = pool.queue();
        drop(pool);
        let (tx, rx) = mpsc::channel::<()>();
        queue.submit(Box::new(move || tx.send(()).unwrap()));
        assert!(rx.recv().is_err(), "the job was dropped unrun");
    }
}
