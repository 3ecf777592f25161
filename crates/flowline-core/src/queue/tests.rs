//! The queue's bound, memory, latency and end outcomes, polled by hand with
//! a no-op waker so every step is deterministic.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::task::noop_waker_ref;
use futures::{Stream, StreamExt};

use super::*;
use crate::run::End;

/// A context whose waker does nothing (the queue's test modules share it).
pub(super) fn cx() -> Context<'static> {
    Context::from_waker(noop_waker_ref())
}

/// A queue whose receiver is not marked starving, so no pump sends a batch
/// early for it (that depends on the clock).
pub(super) fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>, Arc<RunContext>) {
    let ctx = Arc::new(RunContext::default());
    let (tx, rx) = bounded(capacity, ctx.clone());
    tx.shared.set_starving(false);
    (tx, rx, ctx)
}

fn poll_item<T>(rx: &mut Receiver<T>) -> Poll<Option<T>> {
    Pin::new(rx).poll_next(&mut cx())
}

#[test]
fn geometry_comes_from_the_capacity() {
    assert_eq!(batch_size(1), 1);
    assert_eq!(batch_size(16), 4);
    assert_eq!(batch_size(1024), 256);
    assert_eq!(batch_size(1 << 20), 2048);
}

#[test]
fn a_pump_fills_exactly_to_capacity_then_waits() {
    let (mut tx, mut rx, _) = queue::<u64>(16);
    let mut upstream = futures::stream::iter(0..1000u64);
    {
        let pump = pin!(tx.pump(Pin::new(&mut upstream)));
        assert!(pump.poll(&mut cx()).is_pending(), "a full queue waits");
    }
    assert_eq!(tx.shared.queued() + tx.open.len(), 16);
    // Batches of 4, in order.
    let got: Vec<u64> = (0..16)
        .map(|_| poll_item(&mut rx))
        .map(|p| match p {
            Poll::Ready(Some(x)) => x,
            other => panic!("expected an item, got {other:?}"),
        })
        .collect();
    assert_eq!(got, (0..16).collect::<Vec<_>>());
    assert!(poll_item(&mut rx).is_pending());
}

#[test]
fn a_trickle_is_sent_at_the_first_pending() {
    let (mut tx, mut rx, _) = queue::<u64>(1024);
    let (items, upstream) = mpsc::unbounded::<u64>();
    let mut upstream = upstream;
    let mut pump = Box::pin(tx.pump(Pin::new(&mut upstream)));
    for i in 0..5 {
        items.unbounded_send(i).unwrap();
        // One poll: the item is taken, upstream would wait, the batch goes.
        assert!(pump.as_mut().poll(&mut cx()).is_pending());
        assert_eq!(poll_item(&mut rx), Poll::Ready(Some(i)));
        assert!(poll_item(&mut rx).is_pending());
    }
}

#[test]
fn a_one_item_batch_holds_one_items_memory() {
    // A trickle into a stalled receiver: every item leaves as its own batch.
    const CAPACITY: usize = 256;
    let (mut tx, rx, _) = queue::<[u8; 64]>(CAPACITY);
    let (items, mut upstream) = mpsc::unbounded();
    {
        let mut pump = Box::pin(tx.pump(Pin::new(&mut upstream)));
        for _ in 0..CAPACITY + 10 {
            items.unbounded_send([7u8; 64]).unwrap();
            assert!(pump.as_mut().poll(&mut cx()).is_pending());
        }
    }
    assert_eq!(tx.shared.queued() + tx.open.len(), CAPACITY);
    // Exactly one slot per item held: no batch keeps room it does not use.
    assert_eq!(tx.allocated_slots(), CAPACITY);
    drop(rx);
}

#[test]
fn slots_allocated_never_exceed_capacity_whatever_the_rhythm() {
    const CAPACITY: usize = 1000; // batches of 250: not a power of two
    let (mut tx, _rx, _) = queue::<u32>(CAPACITY);
    let (items, mut upstream) = mpsc::unbounded();
    let mut pump = Box::pin(tx.pump(Pin::new(&mut upstream)));
    // Bursts of 1, 2, 3, … items, each followed by a wait.
    let mut next = 0u32;
    for burst in 1..60 {
        for _ in 0..burst {
            items.unbounded_send(next).unwrap();
            next += 1;
        }
        assert!(pump.as_mut().poll(&mut cx()).is_pending());
    }
    drop(pump);
    assert_eq!(tx.shared.queued() + tx.open.len(), CAPACITY);
    assert!(
        tx.allocated_slots() <= CAPACITY,
        "{} slots allocated for a capacity of {CAPACITY}",
        tx.allocated_slots()
    );
}

#[test]
fn completed_ends_the_stream_after_every_item() {
    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    for i in 0..3 {
        tx.try_push(i).unwrap();
    }
    tx.finish(End::Completed);
    let got: Vec<u32> = futures::executor::block_on((&mut rx).collect());
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(poll_item(&mut rx), Poll::Ready(None));
    assert!(!ctx.lifecycle.is_halted());
}

#[test]
fn failed_halts_the_run_and_stays_pending() {
    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    tx.try_push(1).unwrap();
    tx.flush().unwrap();
    tx.try_push(2).unwrap(); // still open: dropped with the failure
    tx.finish(End::Failed);
    assert_eq!(poll_item(&mut rx), Poll::Ready(Some(1)));
    assert!(!ctx.lifecycle.is_halted());
    assert!(poll_item(&mut rx).is_pending());
    assert!(ctx.lifecycle.is_halted());
    assert!(poll_item(&mut rx).is_pending());
}

#[test]
fn a_dropped_sender_aborts() {
    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    tx.try_push(1).unwrap();
    drop(tx);
    assert_eq!(rx.shared.end(), Some(End::Aborted));
    assert!(poll_item(&mut rx).is_pending());
    assert!(ctx.lifecycle.is_halted());
}

#[test]
fn the_first_end_wins() {
    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    tx.end(End::Failed);
    tx.finish(End::Completed);
    assert!(poll_item(&mut rx).is_pending());
    assert!(ctx.lifecycle.is_halted());
}

#[test]
fn overflow_moves_count_items_not_batches() {
    let (mut tx, mut rx, _) = queue::<u32>(4); // batches of 1
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.try_push(4), Err(PushError::Full(4)));
    assert_eq!(tx.push_displacing(5), Ok(Some(0)));
    tx.finish(End::Completed);
    let got: Vec<u32> = futures::executor::block_on((&mut rx).collect());
    assert_eq!(got, [1, 2, 3, 5]);
}

#[test]
fn a_full_sender_waits_until_the_queue_is_half_empty() {
    let (mut tx, mut rx, _) = queue::<u32>(8); // batches of 2
    for i in 0..8 {
        tx.try_push(i).unwrap();
    }
    let mut send = Box::pin(tx.send(8));
    assert!(send.as_mut().poll(&mut cx()).is_pending());
    // Taking an item takes its whole batch out of the queue: room for two,
    // but the sender sleeps until the queue is down to half.
    assert_eq!(poll_item(&mut rx), Poll::Ready(Some(0)));
    assert!(send.as_mut().poll(&mut cx()).is_pending());
    assert_eq!(poll_item(&mut rx), Poll::Ready(Some(1)));
    assert_eq!(poll_item(&mut rx), Poll::Ready(Some(2)));
    assert_eq!(send.as_mut().poll(&mut cx()), Poll::Ready(Ok(())));
    drop(send);
    assert_eq!(tx.shared.queued() + tx.open.len(), 5);
}

#[test]
fn a_dropped_receiver_closes_the_queue() {
    let (mut tx, rx, _) = queue::<u32>(2);
    tx.try_push(0).unwrap();
    tx.try_push(1).unwrap();
    let mut send = Box::pin(tx.send(2));
    assert!(send.as_mut().poll(&mut cx()).is_pending());
    drop(rx);
    assert_eq!(
        send.as_mut().poll(&mut cx()),
        Poll::Ready(Err(PushError::Closed(2)))
    );
}

#[test]
fn every_batch_goes_to_exactly_one_receiver() {
    let (mut tx, mut a, _) = queue::<u32>(64);
    let mut b = a.another(Arc::new(RunContext::default()));
    for i in 0..40 {
        tx.try_push(i).unwrap();
        if i % 5 == 4 {
            tx.flush().unwrap();
        }
    }
    tx.finish(End::Completed);
    let mut got = Vec::new();
    loop {
        match (poll_item(&mut a), poll_item(&mut b)) {
            (Poll::Ready(None), Poll::Ready(None)) => break,
            (x, y) => {
                got.extend([x, y].into_iter().filter_map(|p| match p {
                    Poll::Ready(Some(v)) => Some(v),
                    _ => None,
                }));
            }
        }
    }
    got.sort_unstable();
    assert_eq!(got, (0..40).collect::<Vec<_>>());
}

#[test]
fn a_receiver_not_polled_yet_gets_whole_batches() {
    // A fan-out branch whose consumer starts late: the sender sends its
    // open batch after every item for a starving receiver, not for this one.
    let (mut tx, rx) = bounded::<u32>(1024, Arc::new(RunContext::default()));
    assert!(rx.shared.may_starve() && !rx.shared.starves());
    for i in 0..300 {
        tx.try_push(i).unwrap();
        tx.flush_if_starving();
    }
    // One batch of 256 queued, 44 items in the open batch.
    assert_eq!(rx.shared.queued(), 256);
    assert_eq!(tx.open_len(), 44);
}

#[test]
fn a_starving_receiver_is_marked() {
    let (mut tx, mut rx, _) = queue::<u32>(8);
    tx.try_push(1).unwrap();
    tx.flush().unwrap();
    assert_eq!(poll_item(&mut rx), Poll::Ready(Some(1)));
    assert!(!rx.shared.may_starve());
    assert!(poll_item(&mut rx).is_pending());
    assert!(rx.shared.starves());
}

#[test]
fn stream_impl_is_usable_on_a_plain_stream() {
    // The pump works on any `Stream`, including one that is not `Unpin`.
    let (mut tx, mut rx, _) = queue::<u32>(64);
    let upstream = futures::stream::iter(0..10u32).then(|x| async move { x * 2 });
    let upstream = pin!(upstream);
    futures::executor::block_on(tx.pump(upstream)).unwrap();
    tx.finish(End::Completed);
    let got: Vec<u32> = futures::executor::block_on((&mut rx).collect());
    assert_eq!(got, (0..10).map(|x| x * 2).collect::<Vec<_>>());
}
