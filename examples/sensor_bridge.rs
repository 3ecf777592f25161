//! Both bridges at once: a sensor driver's callback thread feeds a pipeline
//! through a `Feeder`, and the (synchronous) main thread reads the results
//! back through a `Drain`.
//!
//! The "driver" is simulated: a `std::thread` that calls a registered
//! callback with a raw reading every few milliseconds, the way a C library or
//! a device SDK would. The pipeline converts raw ADC counts to °C, drops
//! glitches, and smooths with a moving average; main prints what comes out.
//! No `async` appears outside the pipeline.
//!
//! ```text
//! cargo run --example sensor_bridge -- --runtime smol|tokio|none
//! ```

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[path = "common/runtime.rs"]
mod runtime;

use flowline::bridge;
use flowline::runtime::Runtime;

/// One raw sample from the simulated device.
#[derive(Debug, Clone, Copy)]
struct RawReading {
    seq: u32,
    adc: u16,
}

/// A simulated sensor driver: calls `callback` from its own thread, like a
/// C library would, `count` times, then returns.
fn start_sensor(
    count: u32,
    mut callback: impl FnMut(RawReading) + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for seq in 0..count {
            thread::sleep(Duration::from_millis(5));
            // A slow warm-up curve, with a glitch (a stuck-at-max sample) now and then.
            let adc = if seq % 7 == 6 {
                u16::MAX
            } else {
                2000 + (seq * 13 % 97) as u16
            };
            callback(RawReading { seq, adc });
        }
    })
}

/// A smoothed temperature, as the main thread receives it.
#[derive(Debug)]
struct Temperature {
    seq: u32,
    celsius: f64,
}

fn celsius(adc: u16) -> f64 {
    f64::from(adc) / 4096.0 * 100.0 - 20.0
}

fn run(runtime: Option<Arc<dyn Runtime>>) -> Result<(), flowline::PipelineError> {
    let (feeder, readings) = bridge::feeder::<RawReading>(64);
    // The callback is plain sync code: it pushes and returns.
    let sensor = start_sensor(40, move |reading| {
        if let Err(e) = feeder.push(reading) {
            eprintln!("pipeline gone, dropping reading {}", e.into_inner().seq);
        }
    });

    let mut window = VecDeque::with_capacity(4);
    let drain = readings
        .named("sensor")
        .filter(|r| r.adc != u16::MAX)
        .named("deglitch")
        .map(move |r| {
            if window.len() == 4 {
                window.pop_front();
            }
            window.push_back(celsius(r.adc));
            Temperature {
                seq: r.seq,
                celsius: window.iter().sum::<f64>() / window.len() as f64,
            }
        })
        .named("smooth")
        .on_runtime(runtime)
        .into_drain(16);

    // Back in synchronous code: a blocking iterator.
    let mut drain = drain;
    for t in drain.by_ref() {
        println!("reading {:>2}: {:6.2} °C", t.seq, t.celsius);
    }
    sensor.join().expect("sensor thread panicked");
    let report = drain.finish()?;
    println!("\n{report}");
    Ok(())
}

const EXAMPLE: runtime::Example = runtime::Example {
    smol_hint: "cargo run --example sensor_bridge --features smol",
    tokio_hint: "cargo run --example sensor_bridge --features tokio -- --runtime tokio",
};

fn main() -> ExitCode {
    let runtime = runtime::runtime_arg();
    println!("sensor bridge on {runtime}");
    runtime::exit_code(runtime::with_runtime(EXAMPLE, &runtime, run))
}
