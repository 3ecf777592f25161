//! [`free_capacity`]: how many items the queue a producer feeds can take.

use std::cell::Cell;

thread_local! {
    static FREE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// How many more items the queue this stream feeds can take without
/// waiting, when called from a stream's `poll_next` polled by a boundary
/// (`.boundary(capacity)`, `.buffer(capacity)`); `None` when the stream is
/// not feeding a queue (it is fused straight into the consumer, say).
///
/// A lower bound, valid for the whole poll: the queue's capacity minus the
/// items it holds and the most the boundary takes before it next asks. A
/// producer that fetches items in batches from somewhere else (a broker, a
/// database) asks for at most this many, less what it already holds, so
/// that a stalled consumer never makes it fetch more than the pipeline can
/// hold. Counted in the queue's items: stages between the producer and the
/// boundary that drop or group items make it approximate.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use flowline_core::{producer, ProducerExt as _};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let numbers = futures::stream::iter(0..100u32).inspect(move |_| {
///     log.lock().unwrap().push(producer::free_capacity());
/// });
/// # use futures::StreamExt as _;
/// let (out, _) = futures::executor::block_on(
///     numbers.into_pipeline().boundary(16).run_collect(),
/// )
/// .unwrap();
/// assert_eq!(out.len(), 100);
/// // Every poll saw the room left in the boundary's queue of 16.
/// assert!(seen.lock().unwrap().iter().all(|free| matches!(free, Some(n) if *n < 16)));
/// assert_eq!(producer::free_capacity(), None); // not inside a boundary
/// ```
pub fn free_capacity() -> Option<usize> {
    FREE.with(Cell::get)
}

/// Runs `f` (a poll of the stream feeding a queue) with [`free_capacity`]
/// returning `Some(free)`, restoring the previous value after, also when
/// `f` unwinds.
pub(crate) fn feeding<R>(free: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FREE.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(FREE.with(|cell| cell.replace(Some(free))));
    f()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::StreamExt as _;

    use crate::ProducerExt as _;

    /// Behind a boundary of 32: the first poll sees an empty queue less
    /// the one item the boundary asks for first; every poll sees less than
    /// the capacity; the queue filling up shows as less room.
    #[test]
    fn a_stream_behind_a_boundary_sees_the_room_left() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let numbers = futures::stream::iter(0..200u32).inspect(move |_| {
            log.lock().unwrap().push(super::free_capacity());
        });
        let (out, _) =
            futures::executor::block_on(numbers.into_pipeline().boundary(32).run_collect())
                .unwrap();
        assert_eq!(out, (0..200).collect::<Vec<_>>());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 200);
        assert_eq!(seen[0], Some(31));
        assert!(seen.iter().all(|free| matches!(free, Some(n) if *n < 32)));
        // A never-waiting stream fills batches of up to 8 (a quarter of
        // 32): the room shrinks as they are asked for.
        assert!(seen.iter().any(|free| matches!(free, Some(n) if *n <= 24)));
    }

    #[test]
    fn outside_a_boundary_there_is_no_free_capacity() {
        assert_eq!(super::free_capacity(), None);
        let (out, _) = futures::executor::block_on(
            futures::stream::iter(0..3u32)
                .map(|_| super::free_capacity())
                .into_pipeline()
                .run_collect(),
        )
        .unwrap();
        assert_eq!(out, [None, None, None]);
        assert_eq!(super::feeding(7, super::free_capacity), Some(7));
        assert_eq!(super::free_capacity(), None);
    }
}
