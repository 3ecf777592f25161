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
        .for_each(|n| async move {
            println!("{:>6.3}s  consumed {n}", start.elapsed().as_secs_f64());
        })
        .await?;
    println!("\n{report}");
    Ok(())
}

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let runtime = runtime_arg();
    println!("async generator on {runtime}");
    let result = match runtime.as_str() {
        "smol" => smol_main(),
        "tokio" => tokio_main(),
        "none" => futures::executor::block_on(run(None)).map_err(Error::from),
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
fn smol_main() -> Result<(), Error> {
    let rt = Arc::new(flowline::smol::SmolRuntime::new());
    Ok(smol::block_on(run(Some(rt)))?)
}

#[cfg(not(feature = "smol"))]
fn smol_main() -> Result<(), Error> {
    Err("--runtime smol needs the `smol` feature: cargo run --example async_generator --features smol".into())
}

#[cfg(feature = "tokio")]
fn tokio_main() -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        let handle = Arc::new(flowline::tokio::TokioRuntime::current());
        run(Some(handle)).await
    })?)
}

#[cfg(not(feature = "tokio"))]
fn tokio_main() -> Result<(), Error> {
    Err("--runtime tokio needs the `tokio` feature: cargo run --release --example async_generator --features tokio -- --runtime tokio".into())
}

fn runtime_arg() -> String {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix("--runtime=") {
            return v.to_string();
        }
        if arg == "--runtime" {
            return args.next().unwrap_or_default();
        }
    }
    "smol".to_string()
}
