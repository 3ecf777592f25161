//! The measuring harness shared by every workload: configuration, timed
//! cases with result checks, side-by-side comparisons against targets.

use std::time::{Duration, Instant};

/// Command-line configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `--quick`: 10× smaller inputs, fewer runs (CI smoke; nothing asserted about time).
    pub quick: bool,
    /// `--only W1,W3`: the workloads to run (all when `None`).
    pub only: Option<Vec<String>>,
    /// Measured runs per case (after one warm-up); the median is reported.
    pub runs: usize,
}

/// The command line, printed by `--help` and with any argument error.
pub const USAGE: &str = "\
usage: flowline-bench [--quick] [--only W1,W3] [--runs N] [--write-docs | --no-docs]

  --quick        10x smaller inputs, at most 3 runs (a smoke run)
  --only LIST    run only these workloads (W1 ... W7, comma-separated)
  --runs N       measured runs per case after one warm-up (default 5)
  --write-docs   rewrite docs/benchmarks.md, docs/benchmarks.json and the charts
                 even for a partial run
  --no-docs      never rewrite the docs
  -h, --help     print this and exit

Every run prints a table and writes target/flowline-bench.json. A full run
(no --quick, no --only) also rewrites the docs.";

/// The workloads `--only` accepts.
pub const WORKLOADS: [&str; 7] = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"];

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Measure with this configuration.
    Run(Config),
    /// `--help`: print the usage.
    Help,
}

impl Config {
    /// Parses the process arguments (see [`USAGE`]).
    ///
    /// # Errors
    ///
    /// A message naming the first argument that is unknown or malformed.
    pub fn from_args() -> Result<Command, String> {
        Self::parse(std::env::args().skip(1))
    }

    /// Parses `args` (without the program name).
    ///
    /// # Errors
    ///
    /// As [`Config::from_args`].
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
        let mut cfg = Config {
            quick: false,
            only: None,
            runs: 5,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "--quick" => cfg.quick = true,
                "--only" => {
                    let list = args
                        .next()
                        .ok_or("--only needs a list, e.g. --only W1,W3")?;
                    let only: Vec<String> =
                        list.split(',').map(|s| s.trim().to_uppercase()).collect();
                    if let Some(bad) = only.iter().find(|w| !WORKLOADS.contains(&w.as_str())) {
                        return Err(format!("unknown workload `{bad}` in --only"));
                    }
                    cfg.only = Some(only);
                }
                "--runs" => {
                    let n = args.next().ok_or("--runs needs a number")?;
                    cfg.runs = n
                        .parse()
                        .map_err(|_| format!("--runs needs a number, got `{n}`"))?;
                }
                // Read by `main` through `has_flag`.
                "--write-docs" | "--no-docs" => {}
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        cfg.runs = cfg.runs.max(1);
        if cfg.quick {
            cfg.runs = cfg.runs.min(3);
        }
        Ok(Command::Run(cfg))
    }

    /// Measured runs for a case whose warm-up took `warmup`: `runs`, raised
    /// for short cases (up to 21, about half a second of measuring) so the
    /// median of a millisecond-scale case is not at the mercy of a few
    /// scheduler hiccups; never raised with `--quick`.
    pub fn runs_for(&self, warmup: Duration) -> usize {
        if self.quick {
            return self.runs;
        }
        let fit = (Duration::from_millis(500).as_nanos() / warmup.as_nanos().max(1)) as usize;
        fit.clamp(self.runs, self.runs.max(21))
    }

    /// `n`, or `n / 10` with `--quick`.
    pub fn scale(&self, n: u64) -> u64 {
        if self.quick {
            (n / 10).max(1)
        } else {
            n
        }
    }

    /// Whether workload `id` (e.g. `"W1"`) was selected.
    pub fn wants(&self, id: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|w| w == id))
    }
}

/// Whether `flag` (e.g. `"--write-docs"`) is among the process arguments.
pub fn has_flag(flag: &str) -> bool {
    std::env::args().skip(1).any(|a| a == flag)
}

/// One measured case: a workload variant on one runtime.
#[derive(Debug, Clone)]
pub struct Case {
    /// Workload id, e.g. `"W1"`.
    pub workload: &'static str,
    /// What was measured, e.g. `"flowline fused"`.
    pub name: String,
    /// `"smol"`, `"tokio"`, `"none"`, `"python"`, …
    pub runtime: &'static str,
    /// Items processed per run.
    pub items: u64,
    /// Median wall time of the measured runs.
    pub median: Duration,
}

impl Case {
    /// Median nanoseconds per item.
    pub fn ns_per_item(&self) -> f64 {
        self.median.as_nanos() as f64 / self.items.max(1) as f64
    }
}

/// A ratio between two cases (or any derived figure) set against a target.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Workload id.
    pub workload: &'static str,
    /// What the figure is, e.g. `"fused / StreamExt (smol)"`.
    pub label: String,
    /// The measured figure.
    pub value: f64,
    /// The target, as text, e.g. `"<= 1.2"`.
    pub target: String,
    /// Whether the target was met.
    pub met: bool,
}

/// Everything measured in one harness run.
#[derive(Debug, Default)]
pub struct Report {
    /// Every case, in the order measured.
    pub cases: Vec<Case>,
    /// Every comparison against a target.
    pub comparisons: Vec<Comparison>,
    /// Free-form notes per workload (e.g. memory figures), shown in the docs.
    pub notes: Vec<(&'static str, String)>,
    /// Figures that are not times (e.g. peak RSS), shown in the docs.
    pub metrics: Vec<Metric>,
    /// Per workload, the name of the case other cases are compared with
    /// (the workload's first case when unset).
    pub baselines: Vec<(&'static str, String)>,
    /// Workloads whose cases are grouped by name (the text before ` (`), each
    /// group compared with its own first case.
    pub grouped: Vec<&'static str>,
    /// Per case (same index as `cases`): fastest and slowest measured run.
    pub spreads: Vec<(Duration, Duration)>,
}

/// The group a case belongs to: its name up to ` (`.
fn group_of(name: &str) -> &str {
    name.split(" (").next().unwrap_or(name)
}

/// A measured figure that is not a time per item, e.g. peak RSS in MB.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Workload id.
    pub workload: &'static str,
    /// What was measured, e.g. `"flowline boundary, N = 1M"`.
    pub name: String,
    /// `"smol"`, `"tokio"`, …
    pub runtime: &'static str,
    /// The figure.
    pub value: f64,
    /// Its unit, e.g. `"MB"`.
    pub unit: &'static str,
}

impl Report {
    /// Times `f` once to warm up and `cfg.runs` times more, checking that every
    /// run returns `expected` (so no case can be a no-op), and records the median.
    ///
    /// # Panics
    ///
    /// If a run returns anything but `expected`.
    pub fn measure(
        &mut self,
        cfg: &Config,
        workload: &'static str,
        name: impl Into<String>,
        runtime: &'static str,
        items: u64,
        expected: u64,
        mut f: impl FnMut() -> u64,
    ) -> Case {
        let name = name.into();
        let mut times = Vec::with_capacity(cfg.runs);
        let mut runs = cfg.runs;
        let mut run = 0;
        while run <= runs {
            let start = Instant::now();
            let got = f();
            let elapsed = start.elapsed();
            assert_eq!(
                got, expected,
                "{workload} `{name}` on {runtime}: wrong result"
            );
            if run == 0 {
                runs = cfg.runs_for(elapsed);
            } else {
                times.push(elapsed);
            }
            run += 1;
        }
        times.sort();
        self.push_case(
            Case {
                workload,
                name,
                runtime,
                items,
                median: times[times.len() / 2],
            },
            &times,
        )
    }

    /// Records `value` against a target; `met` says whether it was reached.
    pub fn compare(
        &mut self,
        workload: &'static str,
        label: impl Into<String>,
        value: f64,
        target: impl Into<String>,
        met: bool,
    ) {
        let c = Comparison {
            workload,
            label: label.into(),
            value,
            target: target.into(),
            met,
        };
        println!(
            "{:<4} {:<52} {:>9.3}  target {:<8} {}",
            c.workload,
            c.label,
            c.value,
            c.target,
            if c.met { "met" } else { "NOT MET" }
        );
        self.comparisons.push(c);
    }

    /// Like [`Report::measure`], but `f` times itself and returns `(result, elapsed)`:
    /// for cases measured in another process (e.g. a Python script that reports
    /// the time of its own work, leaving out interpreter start-up).
    ///
    /// # Panics
    ///
    /// If a run returns anything but `expected`.
    pub fn measure_timed(
        &mut self,
        cfg: &Config,
        workload: &'static str,
        name: impl Into<String>,
        runtime: &'static str,
        items: u64,
        expected: u64,
        mut f: impl FnMut() -> (u64, Duration),
    ) -> Case {
        let name = name.into();
        let mut times = Vec::with_capacity(cfg.runs);
        for run in 0..=cfg.runs {
            let (got, elapsed) = f();
            assert_eq!(
                got, expected,
                "{workload} `{name}` on {runtime}: wrong result"
            );
            if run > 0 {
                times.push(elapsed);
            }
        }
        times.sort();
        self.push_case(
            Case {
                workload,
                name,
                runtime,
                items,
                median: times[times.len() / 2],
            },
            &times,
        )
    }

    /// Measures two cases alternately — warm-up of each, then `a`, `b`, `a`,
    /// `b`, … — so that on a shared, noisy machine both see the same load and
    /// their ratio stays meaningful. Same checks as [`Report::measure`].
    ///
    /// # Panics
    ///
    /// If a run returns anything but `expected`.
    pub fn measure_pair(
        &mut self,
        cfg: &Config,
        workload: &'static str,
        items: u64,
        expected: u64,
        a: (&str, &'static str, &mut dyn FnMut() -> u64),
        b: (&str, &'static str, &mut dyn FnMut() -> u64),
    ) -> (Case, Case) {
        let (a_name, a_rt, fa) = a;
        let (b_name, b_rt, fb) = b;
        let mut ta = Vec::with_capacity(cfg.runs);
        let mut tb = Vec::with_capacity(cfg.runs);
        let time = |name: &str, runtime: &str, f: &mut dyn FnMut() -> u64| {
            let start = Instant::now();
            let got = f();
            let elapsed = start.elapsed();
            assert_eq!(
                got, expected,
                "{workload} `{name}` on {runtime}: wrong result"
            );
            elapsed
        };
        let mut runs = cfg.runs;
        let mut run = 0;
        while run <= runs {
            let da = time(a_name, a_rt, fa);
            let db = time(b_name, b_rt, fb);
            if run == 0 {
                runs = cfg.runs_for(da.max(db));
            } else {
                ta.push(da);
                tb.push(db);
            }
            run += 1;
        }
        ta.sort();
        tb.sort();
        let ca = self.push_case(
            Case {
                workload,
                name: a_name.to_string(),
                runtime: a_rt,
                items,
                median: ta[ta.len() / 2],
            },
            &ta,
        );
        let cb = self.push_case(
            Case {
                workload,
                name: b_name.to_string(),
                runtime: b_rt,
                items,
                median: tb[tb.len() / 2],
            },
            &tb,
        );
        (ca, cb)
    }

    /// The fastest and slowest measured run of `case` (one of `self.cases`).
    pub fn spread_of(&self, case: &Case) -> Option<(Duration, Duration)> {
        let i = self.cases.iter().position(|c| std::ptr::eq(c, case))?;
        self.spreads.get(i).copied()
    }

    /// Records a measured case with its sorted run times (the fastest and
    /// slowest become its spread). Every case goes through here, so
    /// `spreads` stays indexed like `cases`.
    pub fn push_case(&mut self, case: Case, sorted_times: &[Duration]) -> Case {
        let lo = sorted_times.first().copied().unwrap_or(case.median);
        let hi = sorted_times.last().copied().unwrap_or(case.median);
        self.spreads.push((lo, hi));
        println!(
            "{:<4} {:<44} {:<7} {:>10.2} ns/item  (median {:.3?})",
            case.workload,
            case.name,
            case.runtime,
            case.ns_per_item(),
            case.median
        );
        self.cases.push(case.clone());
        case
    }

    /// Records a figure that is not a time per item (e.g. peak memory in MB).
    pub fn metric(
        &mut self,
        workload: &'static str,
        name: impl Into<String>,
        runtime: &'static str,
        value: f64,
        unit: &'static str,
    ) {
        let m = Metric {
            workload,
            name: name.into(),
            runtime,
            value,
            unit,
        };
        println!(
            "{:<4} {:<44} {:<7} {:>10.2} {}",
            m.workload, m.name, m.runtime, m.value, m.unit
        );
        self.metrics.push(m);
    }

    /// Names the case of `workload` that the summary tables divide by
    /// (default: the workload's first case).
    pub fn set_baseline(&mut self, workload: &'static str, case_name: impl Into<String>) {
        self.baselines.push((workload, case_name.into()));
    }

    /// The baseline case of `workload`, if any case of it was measured.
    pub fn baseline(&self, workload: &str) -> Option<&Case> {
        let mut cases = self.cases.iter().filter(|c| c.workload == workload);
        let named = self
            .baselines
            .iter()
            .rev()
            .find(|(w, _)| *w == workload)
            .and_then(|(_, name)| cases.clone().find(|c| &c.name == name));
        named.or_else(|| cases.next())
    }

    /// Compares each case of `workload` with the first case of its group
    /// (cases named `"<group> (<variant>)"`), for workloads made of
    /// unrelated sub-benchmarks.
    pub fn baseline_per_group(&mut self, workload: &'static str) {
        self.grouped.push(workload);
    }

    /// The case `case` is compared with in the summary tables.
    pub fn baseline_of(&self, case: &Case) -> Option<&Case> {
        if self.grouped.contains(&case.workload) {
            let group = group_of(&case.name);
            self.cases
                .iter()
                .find(|c| c.workload == case.workload && group_of(&c.name) == group)
        } else {
            self.baseline(case.workload)
        }
    }

    /// The workloads that recorded anything, in order of first appearance.
    pub fn workloads(&self) -> Vec<&'static str> {
        let mut seen: Vec<&'static str> = Vec::new();
        let all = self
            .cases
            .iter()
            .map(|c| c.workload)
            .chain(self.metrics.iter().map(|m| m.workload))
            .chain(self.comparisons.iter().map(|c| c.workload))
            .chain(self.notes.iter().map(|n| n.0));
        for w in all {
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
        seen
    }

    /// Records a free-form note for `workload`.
    pub fn note(&mut self, workload: &'static str, text: impl Into<String>) {
        let text = text.into();
        println!("{workload:<4} {text}");
        self.notes.push((workload, text));
    }
}

/// A 2-worker tokio runtime, as every tokio case uses.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Config::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn help_is_not_a_run() {
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(&["--quick", "-h"]), Ok(Command::Help)));
    }

    #[test]
    fn unknown_arguments_are_rejected() {
        assert_eq!(parse(&["--quik"]).unwrap_err(), "unknown argument `--quik`");
        assert_eq!(
            parse(&["--only", "W9"]).unwrap_err(),
            "unknown workload `W9` in --only"
        );
        assert_eq!(
            parse(&["--runs", "x"]).unwrap_err(),
            "--runs needs a number, got `x`"
        );
        assert!(parse(&["--only"]).is_err());
    }

    #[test]
    fn known_arguments_configure_the_run() {
        let Ok(Command::Run(cfg)) = parse(&["--only", "w1,W5", "--runs", "3", "--no-docs"]) else {
            panic!("expected a run");
        };
        assert_eq!(cfg.only, Some(vec!["W1".to_string(), "W5".to_string()]));
        assert_eq!(cfg.runs, 3);
        assert!(!cfg.quick);
    }

    #[test]
    fn every_workload_main_measures_can_be_picked() {
        // main.rs asks `cfg.wants("W1")` … `cfg.wants("W7")`.
        for w in ["W1", "W2", "W3", "W4", "W5", "W6", "W7"] {
            let Ok(Command::Run(cfg)) = parse(&["--only", w]) else {
                panic!("--only {w} was rejected");
            };
            assert!(cfg.wants(w));
        }
    }
}
