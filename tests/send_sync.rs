//! Producers, pipelines, handles, reports and errors are `Send`/`Sync` where
//! users need them to be (moved into spawned tasks, shared across threads).

use flowline::runtime::{JoinError, JoinHandle, RuntimeFree};
use flowline::smol::SmolRuntime;
use flowline::tokio::TokioRuntime;
use flowline::{consumer, producer, PipelineError, RunReport};

fn is_send<T: Send>(_: &T) {}
fn is_send_sync<T: Send + Sync>() {}

#[test]
fn pipelines_and_their_run_futures_are_send() {
    let p = producer::iter(0..10u32)
        .map(|x| x + 1)
        .filter(|x| x % 2 == 0)
        .then(|x| async move { x })
        .boundary(4)
        .inspect(|_| {});
    is_send(&p);
    let gen = producer::generator(|out| async move { out.emit(1u8).await });
    is_send(&gen);
    // An emitter goes to other tasks and threads, its emit futures with it.
    is_send_sync::<producer::Emitter<String>>();
    is_send_sync::<producer::Emit<'static, String>>();
    is_send(&producer::iter(0..3).run(consumer::collect()));
    is_send(&producer::iter(0..3).run_fold(0, |a, x| a + x));
    is_send(&producer::iter(0..3).boundary(2).run_collect());
}

#[test]
fn handles_reports_errors_and_runtimes_are_send_sync() {
    is_send_sync::<JoinHandle<u32>>();
    is_send_sync::<JoinError>();
    is_send_sync::<RunReport>();
    is_send_sync::<PipelineError>();
    is_send_sync::<SmolRuntime>();
    is_send_sync::<TokioRuntime>();
    is_send_sync::<RuntimeFree>();
}
