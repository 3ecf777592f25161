//! The `--runtime smol|tokio|none` scaffolding the examples share.
//!
//! Included by each example with
//! `#[path = "common/runtime.rs"] mod runtime;` (or `"../common/runtime.rs"`
//! from a directory example); a directory under `examples/` without a
//! `main.rs` is not an example of its own.

// Each example uses only part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use flowline::runtime::Runtime;

/// What an example's `main` returns before it becomes an exit code.
pub(crate) type Error = Box<dyn std::error::Error>;

/// What an example prints when the runtime it was asked for is compiled out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Example {
    /// How to run it with the `smol` feature, or `""` for no hint.
    pub(crate) smol_hint: &'static str,
    /// How to run it with the `tokio` feature, or `""` for no hint.
    pub(crate) tokio_hint: &'static str,
}

impl Example {
    /// `Err` for a `--runtime` this build cannot run: a runtime whose
    /// feature is off, or one that does not exist.
    fn unsupported(self, runtime: &str) -> Error {
        let (feature, hint) = match runtime {
            "smol" => ("smol", self.smol_hint),
            "tokio" => ("tokio", self.tokio_hint),
            other => {
                return format!("unknown runtime `{other}`: use --runtime smol|tokio|none").into()
            }
        };
        if hint.is_empty() {
            format!("--runtime {feature} needs the `{feature}` feature").into()
        } else {
            format!("--runtime {feature} needs the `{feature}` feature: {hint}").into()
        }
    }
}

/// Runs the future `run` makes on the runtime named `runtime` (smol, tokio,
/// or none: `futures::executor::block_on` with no runtime), blocking until it
/// is done.
pub(crate) fn block_on<T, E, Fut>(
    example: Example,
    runtime: &str,
    run: impl FnOnce(Option<Arc<dyn Runtime>>) -> Fut,
) -> Result<T, Error>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    match runtime {
        #[cfg(feature = "smol")]
        "smol" => {
            let rt = Arc::new(flowline::smol::SmolRuntime::new());
            smol::block_on(run(Some(rt))).map_err(Into::into)
        }
        #[cfg(feature = "tokio")]
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let handle = Arc::new(flowline::tokio::TokioRuntime::current());
                run(Some(handle)).await
            })
            .map_err(Into::into)
        }
        "none" => futures::executor::block_on(run(None)).map_err(Into::into),
        other => Err(example.unsupported(other)),
    }
}

/// Calls the synchronous `run` with the runtime named `runtime` (smol, tokio
/// or none) running in the background, for examples whose `main` stays
/// synchronous.
pub(crate) fn with_runtime<T, E>(
    example: Example,
    runtime: &str,
    run: impl FnOnce(Option<Arc<dyn Runtime>>) -> Result<T, E>,
) -> Result<T, Error>
where
    E: Into<Error>,
{
    match runtime {
        // smol's global executor runs the pipeline on its own threads.
        #[cfg(feature = "smol")]
        "smol" => run(Some(Arc::new(flowline::smol::SmolRuntime::new()))).map_err(Into::into),
        // The runtime runs the pipeline; the caller stays synchronous.
        #[cfg(feature = "tokio")]
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let handle = flowline::tokio::TokioRuntime::from_handle(rt.handle().clone());
            run(Some(Arc::new(handle))).map_err(Into::into)
        }
        "none" => run(None).map_err(Into::into),
        other => Err(example.unsupported(other)),
    }
}

/// The whole `main` of an example whose only flag is `--runtime`: prints
/// `{title} on {runtime}`, runs `run` there with [`block_on`], and exits as
/// [`exit_code`] says.
pub(crate) fn main<E, Fut>(
    title: &str,
    example: Example,
    run: impl FnOnce(Option<Arc<dyn Runtime>>) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: Into<Error>,
{
    let runtime = runtime_arg();
    println!("{title} on {runtime}");
    exit_code(block_on(example, &runtime, run))
}

/// `SUCCESS`, or `FAILURE` after printing `error: {e}` on stderr.
pub(crate) fn exit_code(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where `--name value` or `--name=value` is on the command line: `None` if
/// it is not, `Some(None)` if `--name` is the last argument.
fn find_arg(name: &str) -> Option<Option<String>> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(v) = arg
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            return Some(Some(v.to_string()));
        }
        if arg == name {
            return Some(args.next());
        }
    }
    None
}

/// The value of `--name value` or `--name=value`.
pub(crate) fn arg(name: &str) -> Option<String> {
    find_arg(name).flatten()
}

/// The value of `--runtime`: `smol` when it is absent, empty when it is the
/// last argument.
pub(crate) fn runtime_arg() -> String {
    match find_arg("--runtime") {
        None => "smol".to_string(),
        Some(value) => value.unwrap_or_default(),
    }
}
