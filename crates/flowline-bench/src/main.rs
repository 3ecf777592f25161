//! flowline benchmarks: flowline against hand-written peers, side by side.
//!
//! ```text
//! cargo run --release -p flowline-bench [-- --quick] [--only W1,W3] [--runs N]
//! ```

#![allow(unreachable_pub, dead_code, clippy::too_many_arguments)]

mod harness;
mod w1_linear;
mod w2_concurrent;
mod w3_blocking;
mod w4_bridge;

use harness::{Config, Report};

fn main() {
    if std::env::var_os("SMOL_THREADS").is_none() {
        // smol's global executor: 2 threads, like the tokio cases' 2 workers.
        std::env::set_var("SMOL_THREADS", "2");
    }
    let cfg = Config::from_args();
    let mut report = Report::default();
    if cfg.wants("W1") {
        w1_linear::run(&cfg, &mut report);
    }
    if cfg.wants("W3") {
        w3_blocking::run(&cfg, &mut report);
    }
    if cfg.wants("W4") {
        w4_bridge::run(&cfg, &mut report);
    }
    if cfg.wants("W2") {
        w2_concurrent::run(&cfg, &mut report);
    }
    let missed = report.comparisons.iter().filter(|c| !c.met).count();
    println!(
        "\n{} cases, {} comparisons, {} targets not met",
        report.cases.len(),
        report.comparisons.len(),
        missed
    );
}
