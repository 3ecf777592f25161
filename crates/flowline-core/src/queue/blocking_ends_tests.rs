//! The ends that are not async tasks: a plain thread's blocking send and
//! receive, a sink's wait for room, a failure delivered after the items.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::Duration;

use futures::Stream;

use super::tests::cx;
use super::*;
use crate::run::End;
use crate::PipelineError;

/// Waits (up to 10 s) until `cond` holds.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

#[test]
fn a_thread_trickling_into_a_stalled_queue_holds_one_slot_per_item() {
    // One item per batch (flushed at once, as for a waiting receiver), into
    // a receiver that takes nothing: the thread blocks at the capacity, and
    // the queue holds exactly one slot per item.
    const CAPACITY: usize = 256;
    let ctx = Arc::new(RunContext::default());
    let (mut tx, mut rx) = bounded::<[u8; 64]>(CAPACITY, ctx);
    let shared = rx.shared.clone();
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let thread = std::thread::spawn(move || {
        for i in 0..CAPACITY + 10 {
            tx.send_blocking([i as u8; 64]).unwrap();
            tx.flush().unwrap();
            s.fetch_add(1, SeqCst);
        }
        tx.finish(End::Completed);
    });
    assert!(eventually(|| shared.queued() == CAPACITY));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        sent.load(SeqCst),
        CAPACITY,
        "a full queue blocks the thread"
    );
    assert_eq!(shared.queued_slots(), CAPACITY);
    let mut got = Vec::new();
    while let Some(batch) = rx.recv_batch_blocking() {
        got.extend(batch.iter().map(|item| item[0]));
    }
    thread.join().unwrap();
    let expected: Vec<u8> = (0..CAPACITY + 10).map(|i| i as u8).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_blocked_thread_is_released_when_the_receiver_goes() {
    let ctx = Arc::new(RunContext::default());
    let (mut tx, rx) = bounded::<u32>(4, ctx);
    let thread = std::thread::spawn(move || {
        let mut sent = 0;
        while tx.send_blocking(sent).is_ok() {
            sent += 1;
        }
        sent
    });
    assert!(eventually(|| rx.queued() == 4));
    drop(rx);
    assert_eq!(thread.join().unwrap(), 4);
}

#[test]
fn recv_batch_blocking_ends_on_every_outcome() {
    for end in [End::Completed, End::Failed, End::Aborted] {
        let ctx = Arc::new(RunContext::default());
        let (mut tx, mut rx) = bounded::<u32>(16, ctx.clone());
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        tx.flush().unwrap();
        tx.try_push(3).unwrap();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            tx.flush().unwrap();
            tx.finish(end);
        });
        assert_eq!(rx.recv_batch_blocking(), Some(vec![1, 2]));
        assert_eq!(rx.recv_batch_blocking(), Some(vec![3]));
        assert_eq!(rx.recv_batch_blocking(), None);
        thread.join().unwrap();
        assert_eq!(ctx.lifecycle.is_halted(), end != End::Completed);
    }
}

#[test]
fn a_failure_reaches_the_run_after_the_items_before_it() {
    let ctx = Arc::new(RunContext::default());
    let (mut tx, mut rx) = bounded::<u32>(16, ctx.clone());
    for i in 0..6 {
        tx.try_push(i).unwrap();
    }
    tx.fail(PipelineError::panicked("stage#0".into(), "broke".into()));
    assert!(!ctx.has_failed(), "not before the items are taken");
    for i in 0..6 {
        assert_eq!(Pin::new(&mut rx).poll_next(&mut cx()), Poll::Ready(Some(i)));
        assert!(!ctx.has_failed());
    }
    assert!(Pin::new(&mut rx).poll_next(&mut cx()).is_pending());
    assert!(ctx.has_failed() && ctx.lifecycle.is_halted());
}

/// Counts wake-ups.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn poll_room_waits_while_full_and_wakes_when_the_queue_drains() {
    // Capacity 8, batches of 2: a full sender goes on at half (4 queued).
    let ctx = Arc::new(RunContext::default());
    let (mut tx, mut rx) = bounded::<u32>(8, ctx);
    let wakes = Arc::new(Wakes::default());
    let waker = wakes.clone().into();
    let mut cx = Context::from_waker(&waker);
    let mut listener = None;
    for i in 0..8 {
        assert!(tx.poll_room(&mut cx, &mut listener).is_ready());
        tx.try_push(i).unwrap();
    }
    assert!(tx.poll_room(&mut cx, &mut listener).is_pending());
    assert_eq!(tx.open_len(), 0, "nothing held back while full");
    // Two batches taken (asked for one at a time: a receiver gathers small
    // batches): 4 queued, half the capacity.
    let mut batch = Vec::new();
    for _ in 0..2 {
        batch.clear();
        assert_eq!(rx.poll_batch(&mut cx, &mut batch, 2), Poll::Ready(true));
        assert_eq!(batch.len(), 2);
    }
    assert!(eventually(|| wakes.0.load(SeqCst) == 1));
    assert!(tx.poll_room(&mut cx, &mut listener).is_ready());
    // A receiver that goes away also lets a waiting sender go on.
    while tx.try_push(0).is_ok() {}
    assert!(tx.poll_room(&mut cx, &mut listener).is_pending());
    drop(rx);
    assert!(eventually(|| wakes.0.load(SeqCst) == 2));
    assert!(tx.poll_room(&mut cx, &mut listener).is_ready());
    assert!(tx.is_closed());
}
