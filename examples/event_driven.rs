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
        .for_each(|n| async move {
            println!("consume: {n}   ({:.3}s)", start.elapsed().as_secs_f64());
        })
        .await?;
    events.join().expect("event thread panicked");
    println!("\n{report}");
    Ok(())
}

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let runtime = arg("--runtime").unwrap_or_else(|| "smol".to_string());
    let interval = match arg("--interval-ms").map(|ms| ms.parse::<u64>()) {
        None => Duration::from_millis(1000),
        Some(Ok(ms)) => Duration::from_millis(ms),
        Some(Err(e)) => {
            eprintln!("error: --interval-ms: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("event driven on {runtime}, one request every {interval:?}");
    let result = match runtime.as_str() {
        "smol" => smol_main(interval),
        "tokio" => tokio_main(interval),
        "none" => futures::executor::block_on(run(None, interval)).map_err(Error::from),
        other => Err(format!("unknown runtime `{other}`: use --runtime smol|tokio|none").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "smol")]
fn smol_main(interval: Duration) -> Result<(), Error> {
    let rt = Arc::new(flowline::smol::SmolRuntime::new());
    Ok(smol::block_on(run(Some(rt), interval))?)
}

#[cfg(not(feature = "smol"))]
fn smol_main(_: Duration) -> Result<(), Error> {
    Err(
        "--runtime smol needs the `smol` feature: cargo run --example event_driven --features smol"
            .into(),
    )
}

#[cfg(feature = "tokio")]
fn tokio_main(interval: Duration) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        let handle = Arc::new(flowline::tokio::TokioRuntime::current());
        run(Some(handle), interval).await
    })?)
}

#[cfg(not(feature = "tokio"))]
fn tokio_main(_: Duration) -> Result<(), Error> {
    Err("--runtime tokio needs the `tokio` feature: cargo run --example event_driven --features tokio -- --runtime tokio".into())
}

/// The value of `--name value` or `--name=value`.
fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(v) = arg
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            return Some(v.to_string());
        }
        if arg == name {
            return args.next();
        }
    }
    None
}
