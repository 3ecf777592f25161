//! Pattern 2 — heavy IO: blocking calls on worker threads, results flowing
//! through a bounded queue to an async consumer, the executor never blocked.
//!
//! A producer makes 4 items, each by a blocking call that sleeps 100 ms
//! (standing in for a file read or a sync client) and prints
//! "Blocking IO complete". Each item crosses a bounded queue to a consumer
//! that prints "Consumed 1 item". Meanwhile a ticker task on the same
//! executor prints a tick every 25 ms: the ticks keep coming while the
//! blocking calls run, so the executor was never blocked.
//!
//! The asyncio original: `await asyncio.to_thread(blocking_io)` in a producer
//! task that `put`s into an `asyncio.Queue(maxsize=2)` read by a consumer task.
//!
//! ```text
//! cargo run --release --example heavy_io -- --runtime smol|tokio|none
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/runtime.rs"]
mod runtime;

use flowline::producer;
use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};

/// The blocking call: 100 ms of "IO" on whatever thread runs it.
fn blocking_io(n: u32, start: Instant) -> u32 {
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "{:>6.3}s  Blocking IO complete ({n})",
        start.elapsed().as_secs_f64()
    );
    n
}

/// Prints a tick every 25 ms until `done`; returns how many it printed.
async fn ticker(clock: Arc<dyn Runtime>, done: Arc<AtomicBool>, start: Instant) -> u32 {
    let mut ticks = 0;
    while !done.load(SeqCst) {
        clock.sleep(Duration::from_millis(25)).await;
        ticks += 1;
        println!("{:>6.3}s  tick", start.elapsed().as_secs_f64());
    }
    ticks
}

async fn run(runtime: Option<Arc<dyn Runtime>>) -> Result<(), flowline::PipelineError> {
    let clock: Arc<dyn Runtime> = runtime.clone().unwrap_or_else(|| Arc::new(RuntimeFree));
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ticks = ticker(clock, done.clone(), start);

    let finished = done.clone();
    let on = runtime.clone();
    let pipeline = async move {
        // `next()` of this iterator runs on a worker thread, never on the executor.
        let items = (1..=4).map(move |n| blocking_io(n, start));
        let result = producer::from_blocking_iter(items)
            .named("blocking io")
            .boundary(2) // the bounded queue between producer and consumer
            .on_runtime(on)
            .run_for_each(|_item| async move {
                println!("{:>6.3}s  Consumed 1 item", start.elapsed().as_secs_f64());
            })
            .await;
        finished.store(true, SeqCst);
        result
    };

    let (result, ticks) = match &runtime {
        // The ticker is a task of its own on the same executor.
        Some(rt) => {
            let ticker = rt.spawn(ticks);
            let result = pipeline.await;
            (result, ticker.await.unwrap_or(0))
        }
        // No executor to spawn on: the ticker shares the one future.
        None => futures::join!(pipeline, ticks),
    };
    let report = result?;
    println!("\n{ticks} ticks during 4 x 100 ms of blocking IO: the executor was never blocked");
    println!("\n{report}");
    Ok(())
}

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "cargo run --example heavy_io --features smol",
    tokio_hint: "cargo run --release --example heavy_io --features tokio -- --runtime tokio",
};

fn main() -> ExitCode {
    runtime::main("heavy IO", EXAMPLE, run)
}
