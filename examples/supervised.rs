//! A supervised job: fallible stages with error policies, a spawned run
//! watched with progress snapshots, a graceful shutdown, and the report.
//!
//! Records arrive from an endless source. Malformed ones go to a dead-letter
//! consumer; a flaky "enrichment service" is retried with exponential
//! backoff and jitter; after one second the job is shut down gracefully:
//! everything already read reaches the sink, and the report shows where
//! every record ended.
//!
//! ```text
//! cargo run --example supervised
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowline::runtime::{Runtime, RuntimeExt, RuntimeFree};
use flowline::{consumer, producer, Backoff, DeadLetter, ErrorPolicy};

#[derive(Debug, Clone)]
struct Record {
    id: u64,
    amount: u32,
}

fn parse(line: String) -> Result<Record, String> {
    let (id, amount) = line
        .split_once(',')
        .ok_or_else(|| format!("no comma in {line:?}"))?;
    Ok(Record {
        id: id.parse().map_err(|e| format!("bad id {id:?}: {e}"))?,
        amount: amount
            .parse()
            .map_err(|e| format!("bad amount {amount:?}: {e}"))?,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = flowline::default_runtime();
    let clock: Arc<dyn Runtime> = runtime.clone().unwrap_or_else(|| Arc::new(RuntimeFree));

    // An endless feed; every 17th line is malformed.
    let feed_clock = clock.clone();
    let lines = producer::generator(move |out| async move {
        for i in 0u64.. {
            feed_clock.sleep(Duration::from_millis(2)).await;
            let line = if i % 17 == 16 {
                format!("{i};oops")
            } else {
                format!("{i},{}", i % 100)
            };
            out.emit(line).await;
        }
    });

    let rejected: Arc<Mutex<Vec<DeadLetter<String>>>> = Arc::default();
    let rejected_sink = rejected.clone();
    let calls = Arc::new(AtomicU64::new(0));
    let service_clock = clock.clone();

    let pipeline = lines
        .named("feed")
        .try_map(parse)
        .on_error(ErrorPolicy::dead_letter(consumer::for_each(
            move |letter| {
                rejected_sink.lock().unwrap().push(letter);
                async {}
            },
        )))
        .named("parse")
        .boundary(64)
        .try_then(move |record: Record| {
            // The service fails every 5th call; a retry usually succeeds.
            let failing = calls.fetch_add(1, Ordering::Relaxed) % 5 == 4;
            let clock = service_clock.clone();
            async move {
                clock.sleep(Duration::from_micros(300)).await;
                if failing {
                    Err("service unavailable")
                } else {
                    Ok((record.id, record.amount * 2))
                }
            }
        })
        .on_error(ErrorPolicy::Retry {
            attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(1), Duration::from_millis(20))
                .with_jitter(),
        })
        .named("enrich")
        .on_progress(Duration::from_millis(250), |snapshot| {
            println!("{snapshot}")
        })
        .on_runtime(runtime);

    println!("topology (Mermaid):\n{}", pipeline.describe().mermaid());

    let total = Arc::new(AtomicU64::new(0));
    let sum = total.clone();
    let handle = pipeline.spawn(consumer::for_each(move |(_id, amount): (u64, u32)| {
        sum.fetch_add(u64::from(amount), Ordering::Relaxed);
        async {}
    }));

    let report = futures::executor::block_on(async {
        clock.sleep(Duration::from_secs(1)).await;
        handle.shutdown().await
    })?;

    println!("\n{report}\n");
    println!("total amount: {}", total.load(Ordering::Relaxed));
    let rejected = rejected.lock().unwrap();
    println!("{} rejected lines, e.g.:", rejected.len());
    for letter in rejected.iter().take(3) {
        println!("  {:?} in {}: {}", letter.item, letter.stage, letter.error);
    }
    assert_eq!(
        report.delivered() + report.stage("parse").unwrap().dead_lettered,
        report.stages[0].items_out
    );
    Ok(())
}
