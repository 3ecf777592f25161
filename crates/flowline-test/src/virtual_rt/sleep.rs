use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::shared::Shared;

/// A timer on the virtual clock: ready once virtual time reaches `deadline`.
#[derive(Debug)]
pub(crate) struct VirtualSleep {
    pub(crate) shared: Arc<Shared>,
    pub(crate) deadline: Instant,
    pub(crate) key: Option<(Instant, u64)>,
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.key = this
            .shared
            .register_timer(this.key, this.deadline, cx.waker());
        if this.key.is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.cancel_timer(key);
        }
    }
}
