//! flowline benchmarks: flowline against hand-written peers, side by side.
//!
//! ```text
//! cargo run --release -p flowline-bench [-- --quick] [--only W1,W3] [--runs N]
//!                                          [--write-docs | --no-docs] [--help]
//! ```
//!
//! Every run prints a table and writes `target/flowline-bench.json`. A full
//! run (no `--quick`, no `--only`) also regenerates `docs/benchmarks.md`,
//! `docs/benchmarks.json` and the charts in `docs/img/`; `--write-docs` forces
//! that for any run, `--no-docs` prevents it.

#![allow(unreachable_pub, dead_code, clippy::too_many_arguments)]

mod charts;
mod docs;
mod harness;
mod machine;
mod w1_fan_out;
mod w1_latency;
mod w1_linear;
mod w2_concurrent;
mod w3_blocking;
mod w4_bridge;
mod w5_memory;
mod w6_python;
mod w7_redis;

use harness::{has_flag, Command, Config, Report, USAGE};

fn main() {
    if std::env::var_os("SMOL_THREADS").is_none() {
        // smol's global executor: 2 threads, like the tokio cases' 2 workers.
        std::env::set_var("SMOL_THREADS", "2");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        // A measurement in a fresh process (W5): `--child w5 <case> <n>`.
        match args.get(1).map(String::as_str) {
            Some("w5") => w5_memory::child(&args[2..]),
            other => panic!("flowline-bench: unknown child workload {other:?}"),
        }
        return;
    }
    let cfg = match Config::from_args() {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("flowline-bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let machine = machine::Machine::describe();
    println!(
        "flowline-bench: {} ({} CPUs), {}, load {}{}",
        machine.cpu,
        machine.nproc,
        machine.rustc,
        machine.load,
        if cfg.quick { ", --quick" } else { "" }
    );
    let mut report = Report::default();
    if cfg.wants("W1") {
        w1_linear::run(&cfg, &mut report);
    }
    if cfg.wants("W2") {
        w2_concurrent::run(&cfg, &mut report);
    }
    if cfg.wants("W3") {
        w3_blocking::run(&cfg, &mut report);
    }
    if cfg.wants("W4") {
        w4_bridge::run(&cfg, &mut report);
    }
    if cfg.wants("W5") {
        w5_memory::run(&cfg, &mut report);
    }
    if cfg.wants("W6") {
        w6_python::run(&cfg, &mut report);
    }
    if cfg.wants("W7") {
        w7_redis::run(&cfg, &mut report);
    }
    docs::print_summary(&report);
    let missed = report.comparisons.iter().filter(|c| !c.met).count();
    println!(
        "\n{} cases, {} comparisons, {} targets not met",
        report.cases.len(),
        report.comparisons.len(),
        missed
    );

    let root = docs::workspace_root();
    let json = docs::to_json(&cfg, &report, &machine);
    let json_path = root.join("target").join("flowline-bench.json");
    match docs::write_json(&json_path, &json) {
        Ok(()) => println!("wrote {}", json_path.display()),
        Err(e) => eprintln!("flowline-bench: writing {}: {e}", json_path.display()),
    }
    let full = !cfg.quick && cfg.only.is_none();
    if (full || has_flag("--write-docs")) && !has_flag("--no-docs") {
        let docs_dir = root.join("docs");
        let result = docs::write_docs(&cfg, &report, &machine, &docs_dir)
            .and_then(|()| docs::write_json(&docs_dir.join("benchmarks.json"), &json));
        match result {
            Ok(()) => println!("wrote {}", docs_dir.join("benchmarks.md").display()),
            Err(e) => {
                eprintln!("flowline-bench: writing docs: {e}");
                std::process::exit(1);
            }
        }
    } else {
        println!(
            "docs/benchmarks.md not rewritten (only a full run, or --write-docs, rewrites it)"
        );
    }
}
