//! The request body inside the stack: streamed from the client, or buffered so that a
//! retry can send it again.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest request body buffered for retries (as linkerd, 64 KiB); a larger or
/// unknown-length body is streamed and its request is sent once.
pub const MAX_RETRY_BODY: u64 = 64 * 1024;

/// A request body: none, streamed from the client, or held in memory.
#[derive(Debug, Default)]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// Streamed from the client as it arrives.
    Stream(Incoming),
    /// Held in memory (taken by the first poll of this copy).
    Buffered(Option<Bytes>),
}

// === impl RequestBody ===

impl RequestBody {
    /// A copy for another attempt, when the body is in memory.
    pub fn try_clone(&self) -> Option<Self> {
        match self {
            Self::Empty => Some(Self::Empty),
            Self::Buffered(b) => Some(Self::Buffered(b.clone())),
            Self::Stream(_) => None,
        }
    }

    /// Whether the body could be read into memory for retries (small, known length).
    pub fn fits_retry_buffer(&self) -> bool {
        match self {
            Self::Empty | Self::Buffered(_) => true,
            Self::Stream(b) => {
                b.is_end_stream() || b.size_hint().upper().is_some_and(|n| n <= MAX_RETRY_BODY)
            }
        }
    }

    /// Reads a streamed body into memory (call only when [`Self::fits_retry_buffer`]).
    pub async fn buffer(self) -> Result<Self, hyper::Error> {
        match self {
            Self::Stream(b) if b.is_end_stream() => Ok(Self::Empty),
            Self::Stream(b) => {
                let bytes = http_body_util::BodyExt::collect(b).await?.to_bytes();
                Ok(Self::Buffered(Some(bytes)))
            }
            other => Ok(other),
        }
    }
}

impl From<Incoming> for RequestBody {
    fn from(b: Incoming) -> Self {
        Self::Stream(b)
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            Self::Empty
        } else {
            Self::Buffered(Some(b))
        }
    }
}

impl From<()> for RequestBody {
    fn from(_: ()) -> Self {
        Self::Empty
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut *self {
            Self::Empty => Poll::Ready(None),
            Self::Stream(b) => Pin::new(b).poll_frame(cx),
            Self::Buffered(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Stream(b) => b.is_end_stream(),
            Self::Buffered(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Stream(b) => b.size_hint(),
            Self::Buffered(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
