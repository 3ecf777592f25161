//! Pattern 3 — event driven: plain synchronous code hands items to an async
//! consumer.
//!
//! `add_request` is an ordinary (non-async) function, as a callback or an FFI
//! hook would be: it prints `add_request: n` and pushes `n` into a `Feeder`.
//! A `std::thread` calls it six times, one interval apart; the pipeline's
//! async consumer prints `consume: n` as each arrives.
//!
//! The asyncio version pairs a queue with an `Event` that is set and cleared,
//! and strands an item whenever two requests land between two wake-ups. A
//! `Feeder` hands over everything pushed since the consumer last looked, so
//! it cannot: try `--interval-ms 0`.
//!
//! ```text
//! cargo run --example event_driven -- --runtime smol|tokio|none [--interval-ms 1000]
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/runtime.rs"]
mod runtime;

use flowline::bridge::{self, Feeder};
use flowline::runtime::Runtime;

/// A plain synchronous function: no `async`, no runtime in sight.
fn add_request(feeder: &Feeder<u32>, n: u32) {
    println!("add_request: {n}");
    // Blocks only if the pipeline is 16 requests behind (backpressure).
    feeder.push(n).expect("the pipeline stopped");
}

async fn run(
    runtime: Option<Arc<dyn Runtime>>,
    interval: Duration,
) -> Result<(), flowline::PipelineError> {
    let (feeder, requests) = bridge::feeder(16);
    let start = Instant::now();
    let events = thread::spawn(move || {
        for n in 0..6 {
            thread::sleep(interval);
            add_request(&feeder, n);
        }
        // Dropping the last feeder ends the pipeline once everything is consumed.
    });
    let report = requests
        .named("requests")
        .on_runtime(runtime)
        .run_for_each(|n| async move {
            println!("consume: {n}   ({:.3}s)", start.elapsed().as_secs_f64());
        })
        .await?;
    events.join().expect("event thread panicked");
    println!("\n{report}");
    Ok(())
}

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "cargo run --example event_driven --features smol",
    tokio_hint: "cargo run --example event_driven --features tokio -- --runtime tokio",
};

fn main() -> ExitCode {
    let runtime = runtime::arg("--runtime").unwrap_or_else(|| "smol".to_string());
    let interval = match runtime::arg("--interval-ms").map(|ms| ms.parse::<u64>()) {
        None => Duration::from_millis(1000),
        Some(Ok(ms)) => Duration::from_millis(ms),
        Some(Err(e)) => {
            eprintln!("error: --interval-ms: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("event driven on {runtime}, one request every {interval:?}");
    runtime::exit_code(runtime::block_on(EXAMPLE, &runtime, |rt| run(rt, interval)))
}
