//! The batch path: a receiver handing over batches, the batch pump, its
//! bound and its memory — polled by hand with a no-op waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};

use super::tests::{cx, queue};
use super::*;
use crate::run::End;

/// A [`PollBatch`] for any plain stream, item by item.
fn per_item<S: Stream>(
    mut stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    out: &mut dyn BatchOut<S>,
    max: usize,
) -> Poll<bool> {
    let out = out.items();
    let mut appended = 0;
    while appended < max {
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                out.push(item);
                appended += 1;
            }
            Poll::Ready(None) => return Poll::Ready(false),
            Poll::Pending if appended == 0 => return Poll::Pending,
            Poll::Pending => break,
        }
    }
    Poll::Ready(true)
}

fn batch_of<T>(rx: &mut Receiver<T>, max: usize) -> (Poll<bool>, Vec<T>) {
    let mut out = Vec::new();
    let polled = rx.poll_batch(&mut cx(), &mut out, max);
    (polled, out)
}

#[test]
fn a_receiver_hands_a_batch_over_whole_or_split_to_fit() {
    let (mut tx, mut rx, _) = queue::<u32>(16); // batches of 4
    for i in 0..8 {
        tx.try_push(i).unwrap();
    }
    // Two full batches queued: the first moves whole, the second (small)
    // is appended to it.
    let (polled, out) = batch_of(&mut rx, 100);
    assert_eq!((polled, out), (Poll::Ready(true), (0..8).collect()));
    // Asked for fewer than a batch: the batch is split, in order.
    for i in 8..12 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(batch_of(&mut rx, 3), (Poll::Ready(true), vec![8, 9, 10]));
    assert_eq!(batch_of(&mut rx, 3), (Poll::Ready(true), vec![11]));
    assert_eq!(batch_of(&mut rx, 3).0, Poll::Pending);
    // Appended after what `out` holds.
    tx.try_push(8).unwrap();
    tx.flush().unwrap();
    let mut out = vec![100];
    assert_eq!(rx.poll_batch(&mut cx(), &mut out, 5), Poll::Ready(true));
    assert_eq!(out, [100, 8]);
}

#[test]
fn a_batch_read_ends_on_completed_and_halts_on_failed() {
    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    tx.try_push(1).unwrap();
    tx.finish(End::Completed);
    assert_eq!(batch_of(&mut rx, 8), (Poll::Ready(true), vec![1]));
    assert_eq!(batch_of(&mut rx, 8), (Poll::Ready(false), vec![]));
    assert!(!ctx.lifecycle.is_halted());

    let (mut tx, mut rx, ctx) = queue::<u32>(8);
    tx.try_push(1).unwrap();
    tx.flush().unwrap();
    tx.finish(End::Failed);
    assert_eq!(batch_of(&mut rx, 8), (Poll::Ready(true), vec![1]));
    assert_eq!(batch_of(&mut rx, 8), (Poll::Pending, vec![]));
    assert!(ctx.lifecycle.is_halted());
}

#[test]
fn the_batch_pump_fills_exactly_to_capacity_in_order() {
    let (mut tx, rx, _) = queue::<u64>(16);
    let mut upstream = futures::stream::iter(0..1000u64);
    {
        let pump = std::pin::pin!(tx.pump_batches(Pin::new(&mut upstream), per_item));
        assert!(pump.poll(&mut cx()).is_pending(), "a full queue waits");
    }
    assert_eq!(tx.shared.queued() + tx.open.len(), 16);
    let mut got = Vec::new();
    while let Some(batch) = rx.shared.pop() {
        assert!(batch.len() <= 4, "batches of at most a quarter: {batch:?}");
        got.extend(batch);
    }
    got.append(&mut tx.open);
    assert_eq!(got, (0..16).collect::<Vec<_>>());
}

#[test]
fn a_receiver_gathers_small_queued_batches_up_to_64_items() {
    let (mut tx, mut rx, _) = queue::<u32>(1024);
    // One-item batches, as a sender flushing to a waiting receiver sends.
    for i in 0..100 {
        tx.try_push(i).unwrap();
        tx.flush().unwrap();
    }
    assert_eq!(
        batch_of(&mut rx, 1000),
        (Poll::Ready(true), (0..64).collect())
    );
    assert_eq!(
        batch_of(&mut rx, 20),
        (Poll::Ready(true), (64..84).collect())
    );
    assert_eq!(
        batch_of(&mut rx, 1000),
        (Poll::Ready(true), (84..100).collect())
    );
    assert_eq!(batch_of(&mut rx, 1000).0, Poll::Pending);
    // A whole batch of 64 or more is handed over alone, never copied.
    for i in 0..300 {
        tx.try_push(i).unwrap();
    }
    tx.flush().unwrap();
    tx.try_push(300).unwrap();
    tx.flush().unwrap();
    let (_, out) = batch_of(&mut rx, 1000);
    assert_eq!(out.len(), 256);
}

#[test]
fn the_batch_pump_sends_a_trickle_at_once_one_items_memory_each() {
    const CAPACITY: usize = 256;
    let (mut tx, mut rx, _) = queue::<[u8; 64]>(CAPACITY);
    let (items, mut upstream) = mpsc::unbounded();
    {
        let mut pump = Box::pin(tx.pump_batches(Pin::new(&mut upstream), per_item));
        items.unbounded_send([1u8; 64]).unwrap();
        assert!(pump.as_mut().poll(&mut cx()).is_pending());
        // Sent at the first wait: the receiver has it now.
        assert_eq!(batch_of(&mut rx, 8).1, vec![[1u8; 64]]);
        // A stalled receiver: every item leaves as its own batch.
        for _ in 0..CAPACITY + 10 {
            items.unbounded_send([7u8; 64]).unwrap();
            assert!(pump.as_mut().poll(&mut cx()).is_pending());
        }
    }
    assert_eq!(tx.shared.queued() + tx.open.len(), CAPACITY);
    assert_eq!(tx.allocated_slots(), CAPACITY);
}

#[test]
fn the_batch_pump_returns_when_upstream_ends() {
    let (mut tx, mut rx, _) = queue::<u32>(64);
    let mut upstream = futures::stream::iter(0..10u32);
    futures::executor::block_on(tx.pump_batches(Pin::new(&mut upstream), per_item)).unwrap();
    tx.finish(End::Completed);
    let got: Vec<u32> = futures::executor::block_on((&mut rx).collect());
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}
