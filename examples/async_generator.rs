//! Pattern 1 — an async generator feeding a consumer, with backpressure.
//!
//! An async generator yields 0..=5, sleeping 200 ms before each; a consumer
//! prints each number as it arrives.
//!
//! ```text
//! cargo run --release --example async_generator -- --runtime smol|tokio|none
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/runtime.rs"]
mod runtime;

use flowline::producer;
use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};

async fn run(runtime: Option<Arc<dyn Runtime>>) -> Result<(), flowline::PipelineError> {
    let clock: Arc<dyn Runtime> = runtime.clone().unwrap_or_else(|| Arc::new(RuntimeFree));
    let start = Instant::now();
    let numbers = producer::generator(move |out| async move {
        for n in 0..=5u32 {
            clock.sleep(Duration::from_millis(200)).await;
            out.emit(n).await;
        }
    });
    let report = numbers
        .named("numbers")
        .boundary(4)
        .on_runtime(runtime)
        .run_for_each(|n| async move {
            println!("{:>6.3}s  consumed {n}", start.elapsed().as_secs_f64());
        })
        .await?;
    println!("\n{report}");
    Ok(())
}

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "cargo run --example async_generator --features smol",
    tokio_hint: "cargo run --release --example async_generator --features tokio -- --runtime tokio",
};

fn main() -> ExitCode {
    runtime::main("async generator", EXAMPLE, run)
}
