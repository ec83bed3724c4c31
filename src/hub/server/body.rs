//! Reading request bodies safely: every body is read with an idle timeout, small JSON bodies are read whole up
//! to a fixed size, and read failures become answers in the Hub's error shape: 408 when the client stopped
//! sending, 413 when it sent too much, 400 otherwise.
//!
//! A handler that refuses a request before reading all of its body (too large, unknown upload URL, no access)
//! leaves the client still sending. Closing the connection then would make the kernel reset it, and the client
//! would see a broken connection instead of the answer. So the rest of a body nobody read is drained in the
//! background after the answer, up to [`DRAIN_BYTES`] and [`DRAIN_TIME`] (a "lingering close"); a body that
//! stalled or failed is not drained.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use futures_util::StreamExt as _;
use http_body::{Frame, SizeHint};
use tower_http::timeout::TimeoutBody;

use super::AppState;
use super::abuse::bytes;
use super::error::{ApiError, ApiResult};

/// At most this much of a body nobody read is drained after the answer.
pub(crate) const DRAIN_BYTES: u64 = 64 << 20;
/// For at most this long.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body every request gets (`routes::serve`): reads time out after `idle` without data, and what a handler
/// leaves unread is drained in the background when it is dropped.
pub(crate) fn guarded<B>(body: B, idle: Duration) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Body::new(Lingering {
        inner: Some(Box::pin(TimeoutBody::new(idle, body))),
        finished: false,
    })
}

type Inner = Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>;

struct Lingering {
    inner: Option<Inner>,
    /// The body ended, or failed (a failed body, e.g. one that stalled, is not worth draining).
    finished: bool,
}

impl HttpBody for Lingering {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = inner.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if self.is_end_stream() {
            return;
        }
        let (Some(mut body), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let mut drained: u64 = 0;
            let drain = async {
                while let Some(Ok(frame)) =
                    std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await
                {
                    drained += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0);
                    if drained > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}

/// Largest JSON body of the small API calls (batch, verify, completion, preupload, settings, paths-info, …).
pub(crate) const SMALL_BODY_LIMIT: u64 = 2 << 20;

/// The error for a body that could not be read (`what`: "the commit body", "upload body", …).
pub(crate) fn read_error(state: &AppState, err: axum::Error, what: &str) -> ApiError {
    let inner = err.into_inner();
    if inner.is::<tower_http::timeout::TimeoutError>() {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "{what} stalled: no data for {} s (the server's body read timeout, --body-timeout); send the \
                 request again",
                state.abuse.body_read_timeout.as_secs_f64()
            ),
        )
    } else {
        ApiError::bad_request(format!("{what} could not be read: {inner}"))
    }
}

/// 413 for a body over `limit`.
pub(crate) fn too_large(what: &str, limit: u64, hint: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is larger than {}{hint}", bytes(limit)),
    )
}

/// The `Content-Length` a request announced, if any.
pub(crate) fn announced_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a whole body of at most `limit` bytes; refuses a larger announced length before reading anything.
pub(crate) async fn read_limited(
    state: &AppState,
    body: Body,
    announced: Option<u64>,
    limit: u64,
    what: &str,
) -> ApiResult<Bytes> {
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large(what, limit, ""));
    }
    let mut out = Vec::with_capacity(announced.unwrap_or(0).min(limit) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| read_error(state, e, what))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large(what, limit, ""));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A small request body read whole (up to [`SMALL_BODY_LIMIT`]), for handlers that parse JSON or forms.
pub(crate) struct SmallBody(pub Bytes);

impl FromRequest<AppState> for SmallBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let announced = announced_length(req.headers());
        let body = req.into_body();
        read_limited(state, body, announced, SMALL_BODY_LIMIT, "the request body")
            .await
            .map(SmallBody)
    }
}
