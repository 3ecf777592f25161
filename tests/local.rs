//! `!Send` pipelines: items and closures that are not `Send` (an `Rc`, a
//! `RefCell` of app state) run in fused stages, runtime-free or as a task of
//! smol's `LocalExecutor`. Stages that hand items to another task or thread
//! (boundaries, blocking and concurrent stages, fan-out) need `Send`: there
//! is no `spawn_local` path in `Runtime` yet.

use flowline::producer;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn rc_items_and_refcell_closures_run_runtime_free_and_on_a_local_executor() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let pipeline = producer::iter((0..5u32).map(Rc::new))
        .map(|x| Rc::new(*x * 2))
        .inspect(move |x| log.borrow_mut().push(**x))
        .on_runtime(None);
    let (out, _) = futures::executor::block_on(pipeline.run_collect()).unwrap();
    assert_eq!(out.iter().map(|x| **x).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
    assert_eq!(*seen.borrow(), [0, 2, 4, 6, 8]);
    let ex = smol::LocalExecutor::new();
    let state = Rc::new(RefCell::new(0u32));
    let add = state.clone();
    let task = ex.spawn(async move {
        producer::iter(1..=4u32)
            .then(move |x| {
                let add = add.clone();
                async move {
                    *add.borrow_mut() += x;
                    x
                }
            })
            .on_runtime(None)
            .run_count()
            .await
    });
    let (n, _) = smol::block_on(ex.run(task)).unwrap();
    assert_eq!((n, *state.borrow()), (4, 10));
}
