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

impl Config {
    /// Parses `--quick`, `--only W1,W3` and `--runs N` from the process arguments.
    pub fn from_args() -> Self {
        let mut cfg = Config {
            quick: false,
            only: None,
            runs: 5,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => cfg.quick = true,
                "--only" => {
                    let list = args.next().unwrap_or_default();
                    cfg.only = Some(list.split(',').map(|s| s.trim().to_uppercase()).collect());
                }
                "--runs" => cfg.runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(5),
                // Read by `main` through `has_flag`.
                "--write-docs" | "--no-docs" => {}
                other => eprintln!("flowline-bench: ignoring unknown argument `{other}`"),
            }
        }
        cfg.runs = cfg.runs.max(1);
        if cfg.quick {
            cfg.runs = cfg.runs.min(3);
        }
        cfg
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

    fn push_case(&mut self, case: Case, sorted_times: &[Duration]) -> Case {
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
