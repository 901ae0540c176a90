//! Keeping something alive until a reply has been sent, not just returned.
//!
//! tonic encodes a unary reply after the handler returns, into one buffer
//! that hyper then writes as the client's flow-control window allows; a
//! permit dropped when the handler returns (or kept in the response's
//! extensions, which hyper drops with the headers) is gone before the
//! encoded copy exists. So a handler puts a [`HoldUntilSent`] in its
//! response's extensions, and the server's response layer moves it into
//! an [`UntilSent`] body around tonic's: it lives until the body's last
//! frame (the trailers) has been asked for, or the body is dropped (the
//! client went away).
//!
//! hyper asks for the next frame as soon as it has queued the previous
//! one, whatever its size, so [`UntilSent`] hands tonic's one big data
//! frame on in [`SLICE`]-sized pieces (sharing its buffer): hyper waits
//! for window before queueing each piece, so the trailers, and the
//! release, come only when all but the last piece has been written.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http_body::{Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Bytes;

/// Largest data frame passed on to hyper.
pub const SLICE: usize = 256 * 1024;

/// Something a handler wants kept until its reply has been sent (e.g. a
/// permit of a memory budget). Clone only because extensions must be;
/// the value is released when the last clone is.
#[derive(Clone)]
pub struct HoldUntilSent {
    /// Never read: only its drop matters.
    _value: Arc<dyn Any + Send + Sync>,
}

impl HoldUntilSent {
    pub fn new(value: impl Any + Send + Sync) -> Self {
        Self {
            _value: Arc::new(value),
        }
    }
}

/// A reply body that keeps a [`HoldUntilSent`] until it has been sent.
pub struct UntilSent {
    inner: Body,
    held: Option<HoldUntilSent>,
    /// The part of a large data frame not passed on yet.
    rest: Bytes,
}

impl UntilSent {
    pub fn new(inner: Body, held: HoldUntilSent) -> Self {
        Self {
            inner,
            held: Some(held),
            rest: Bytes::new(),
        }
    }
}

/// The next piece of `data` (at most `max` bytes), leaving the rest in it
/// (pure; the pieces share `data`'s buffer).
pub fn next_piece(data: &mut Bytes, max: usize) -> Bytes {
    data.split_to(data.len().min(max))
}

impl http_body::Body for UntilSent {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if !this.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(next_piece(&mut this.rest, SLICE)))));
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    let piece = next_piece(&mut data, SLICE);
                    this.rest = data;
                    Poll::Ready(Some(Ok(Frame::data(piece))))
                }
                Err(trailers) => {
                    this.held = None;
                    Poll::Ready(Some(Ok(trailers)))
                }
            },
            end => {
                this.held = None;
                Poll::Ready(end)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(rest));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn pieces_share_the_buffer_and_cover_it() {
        let mut data = Bytes::from(vec![7u8; 10]);
        let first = next_piece(&mut data, 4);
        assert_eq!((first.len(), data.len()), (4, 6));
        assert_eq!(next_piece(&mut data, 100).len(), 6);
        assert!(data.is_empty());
    }

    #[tokio::test]
    async fn the_hold_lasts_until_the_trailers_are_asked_for() {
        let released = Arc::new(AtomicBool::new(false));
        let frames = vec![
            Ok::<_, Status>(Frame::data(Bytes::from(vec![1u8; 2 * SLICE + 5]))),
            Ok(Frame::trailers(Default::default())),
        ];
        let inner = Body::new(http_body_util_stream(frames));
        let mut body = UntilSent::new(inner, HoldUntilSent::new(Flag(released.clone())));
        let mut sizes = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.expect("frame");
            match frame.into_data() {
                Ok(data) => {
                    assert!(!released.load(Ordering::SeqCst), "released mid-body");
                    sizes.push(data.len());
                }
                Err(_) => assert!(released.load(Ordering::SeqCst), "kept past the trailers"),
            }
        }
        assert_eq!(sizes, [SLICE, SLICE, 5]);
        // Dropped unsent: released too.
        let released = Arc::new(AtomicBool::new(false));
        let body = UntilSent::new(Body::empty(), HoldUntilSent::new(Flag(released.clone())));
        drop(body);
        assert!(released.load(Ordering::SeqCst));
    }

    /// A body of the given frames.
    fn http_body_util_stream(
        frames: Vec<Result<Frame<Bytes>, Status>>,
    ) -> impl http_body::Body<Data = Bytes, Error = Status> + Send + 'static {
        struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, Status>>);
        impl http_body::Body for Frames {
            type Data = Bytes;
            type Error = Status;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
                Poll::Ready(self.0.pop_front())
            }
        }
        Frames(frames.into())
    }
}
