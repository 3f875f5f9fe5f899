//! Framing and size rules a request must meet before any phase reads it,
//! and the inbound body watch that tells a client's broken body from an
//! upstream failure. hyper and h2 refuse most malformed messages
//! themselves (see the README's "Protocol limits"); this module adds what
//! they let through:
//!
//! - a `Transfer-Encoding` whose codings are not exactly `chunked` (hyper
//!   only requires `chunked` last and drops the rest) is answered 501
//!   (RFC 9112 §6.1), before anything reaches the upstream;
//! - the header count and size limits below, for both
//!   protocols: h2 has no count limit, and hyper's HTTP/1.1 size bound is
//!   its read buffer, which a read may overshoot (h2's size limit is exact
//!   and the same measure, so on HTTP/2 this check is only a backstop);
//! - a body that breaks on the client side (bad chunk, early EOF, reset
//!   stream) aborts the upstream request and is answered 400, not 502.

use crate::error::ProxyError;
use bytes::Bytes;
use http::header::{COOKIE, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, Request};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Most header fields a request may carry, on both protocols (hyper's h1
/// default, Envoy's too); one more is answered 431. hyper counts every
/// HTTP/1.1 header line; h2 has no such limit, so the gate counts HTTP/2
/// fields itself, all `cookie` fields as one (below).
pub const MAX_HEADER_FIELDS: usize = 100;
/// A request's header list must stay below this many bytes, measured as
/// RFC 9113 §6.5.2 does (name + value + 32 per field, the request line as
/// pseudo-headers), on both protocols: 431 otherwise. It is h2's
/// `SETTINGS_MAX_HEADER_LIST_SIZE` (h2 measures the same way and answers
/// 431 itself, from the first frame) and the HTTP/1.1 read buffer, so a
/// raw head that does not fit in it is refused by hyper (431) before it is
/// parsed; the gate measures the HTTP/1.1 heads hyper parsed (hyper's
/// buffer bound is approximate: a read may overshoot it). hyper's defaults
/// were 16 KiB (h2) and ~400 KiB (h1); 64 KiB holds a 100-field head of
/// large cookies and an 8 KiB token.
pub const MAX_HEADER_LIST_BYTES: usize = 64 * 1024;

/// The read buffer of an upstream connection (hyper's default grows to
/// ~400 KiB): the bound on an upstream's response head (nginx's default
/// `proxy_buffer_size` is 4–8 KiB) and the largest chunk a streamed
/// response body is read in. Smaller chunks stay under glibc's mmap
/// threshold and out of its dynamic adjustment, which otherwise keeps a
/// few hundred KiB per thread after one large download (bench/stream.sh).
pub const UPSTREAM_READ_BUF_BYTES: usize = 64 * 1024;

/// RFC 9113 §6.5.2: each field costs its name and value octets plus 32.
const FIELD_OVERHEAD: usize = 32;

/// The first phase: refuses transfer codings jwtgate cannot forward
/// faithfully, then header blocks over the limits.
pub fn check_head(req: &Parts) -> Result<(), ProxyError> {
    let tally = Tally::of(req);
    if tally.transfer_encoding && !transfer_codings_are_chunked_only(&req.headers) {
        return Err(ProxyError::UnsupportedTransferCoding);
    }
    if tally.fields > MAX_HEADER_FIELDS || tally.list_bytes >= MAX_HEADER_LIST_BYTES {
        return Err(ProxyError::HeadersTooLarge);
    }
    Ok(())
}

/// What the limits and the framing check need, from one pass over the
/// fields (instead of a pass and a lookup by name for each).
struct Tally {
    /// Header fields as HTTP/1.1 counts them: every field, except that all
    /// `cookie` fields count as one. HTTP/2 clients split a Cookie header
    /// into one field per cookie (RFC 9113 §8.2.3), which is one line in
    /// HTTP/1.1. Pseudo-headers are the request line, not fields.
    fields: usize,
    /// The header list size as h2 measures it against
    /// `SETTINGS_MAX_HEADER_LIST_SIZE` (RFC 9113 §6.5.2): name + value + 32
    /// per field, the request line counted as the pseudo-headers HTTP/2 sends.
    list_bytes: usize,
    transfer_encoding: bool,
}

impl Tally {
    fn of(req: &Parts) -> Self {
        let uri = &req.uri;
        let pseudo = [
            Some((":method".len(), req.method.as_str().len())),
            Some((":path".len(), uri.path_and_query().map_or(0, |p| p.as_str().len()))),
            uri.scheme_str().map(|s| (":scheme".len(), s.len())),
            uri.authority().map(|a| (":authority".len(), a.as_str().len())),
        ];
        let mut list_bytes: usize = pseudo.into_iter().flatten().map(|(n, v)| n + v + FIELD_OVERHEAD).sum();
        let (mut cookies, mut others, mut transfer_encoding) = (0, 0, false);
        for (name, value) in &req.headers {
            match *name == COOKIE {
                true => cookies += 1,
                false => others += 1,
            }
            transfer_encoding |= *name == TRANSFER_ENCODING;
            list_bytes += name.as_str().len() + value.len() + FIELD_OVERHEAD;
        }
        Self { fields: others + usize::from(cookies > 0), list_bytes, transfer_encoding }
    }
}

/// True without `Transfer-Encoding`, or when all its lines together list
/// exactly one coding, `chunked` (any case, RFC 9112 §7). Empty list
/// elements are ignored (RFC 9110 §5.6.1). hyper decodes the body by the
/// last coding only, and the gate re-frames it for the upstream, so any
/// other coding (`gzip, chunked`, `chunked, chunked`, `identity`, unknown
/// tokens, parameters) would be silently dropped.
fn transfer_codings_are_chunked_only(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|line| line.as_bytes().split(|b| *b == b','))
        .map(|c| c.trim_ascii())
        .filter(|c| !c.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => !headers.contains_key(TRANSFER_ENCODING),
        (Some(only), None) => only.eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    }
}

/// The request body on its way upstream. An error from it is the client's
/// (bad chunk framing, EOF before the end, a reset stream): it is passed
/// on, so hyper aborts the upstream request and the app never sees it
/// complete, and recorded for [`BodyWatch::failed`]. Its bytes are counted
/// for the access log.
pub struct Inbound {
    inner: Incoming,
    watched: Arc<Watched>,
}

#[derive(Default)]
struct Watched {
    failed: AtomicBool,
    bytes: AtomicU64,
}

/// Tells, once the upstream call has failed, whether the inbound body
/// failed first; and how much of it was read.
#[derive(Clone)]
pub struct BodyWatch(Arc<Watched>);

impl BodyWatch {
    pub fn failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }

    /// Body bytes read from the client so far.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }
}

/// A request body the phases take: the client's, watched on its way to
/// the upstream, or none (a gRPC check asks about a request it does not
/// carry). Generic, so the proxy's path is compiled without a branch.
pub trait Arriving: Sized + Send {
    type Watched: Forwardable;
    fn watch(req: Request<Self>) -> (Request<Self::Watched>, BodyWatch);
}

impl Arriving for Incoming {
    type Watched = Inbound;
    fn watch(req: Request<Self>) -> (Request<Inbound>, BodyWatch) {
        watch_body(req)
    }
}

impl Arriving for () {
    type Watched = ();
    fn watch(req: Request<()>) -> (Request<()>, BodyWatch) {
        (req, BodyWatch(Arc::default()))
    }
}

/// A watched body the phases may forward, when there is one.
pub trait Forwardable: Send {
    fn forwardable(self) -> Option<Inbound>;
}

impl Forwardable for Inbound {
    fn forwardable(self) -> Option<Inbound> {
        Some(self)
    }
}

impl Forwardable for () {
    fn forwardable(self) -> Option<Inbound> {
        None
    }
}

/// A request without a body reached the upstream step (only a verdict
/// may have no body; a bug if seen).
#[derive(Debug, thiserror::Error)]
#[error("a request without a body cannot be forwarded")]
pub struct NoBody;

/// Wraps the request's body in [`Inbound`].
pub fn watch_body(req: Request<Incoming>) -> (Request<Inbound>, BodyWatch) {
    let watched = Arc::new(Watched::default());
    let watch = BodyWatch(watched.clone());
    (req.map(|inner| Inbound { inner, watched }), watch)
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.watched.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Some(Err(err)) => {
                // Set before hyper sees the error, so the failed upstream
                // call that follows always finds it.
                self.watched.failed.store(true, Ordering::Release);
                tracing::debug!(error = %err, "request body failed on the client side; upstream request aborted");
            }
            None => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn te(lines: &[&[u8]]) -> bool {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(TRANSFER_ENCODING, HeaderValue::from_bytes(line).unwrap());
        }
        transfer_codings_are_chunked_only(&h)
    }

    #[test]
    fn only_chunked_alone_is_a_transfer_coding_the_gate_forwards() {
        assert!(te(&[]), "no Transfer-Encoding");
        for ok in
            [&[&b"chunked"[..]][..], &[b"CHUNKED"], &[b"Chunked"], &[b" chunked\t"], &[b", chunked"], &[b"chunked,"]]
        {
            assert!(te(ok), "{ok:?}");
        }
        assert!(te(&[b"", b"chunked"]), "an empty line beside chunked");
        for bad in [
            &[&b"gzip, chunked"[..]][..],
            &[b"chunked, chunked"],
            &[b"identity, chunked"],
            &[b"deflate,chunked"],
            &[b"x-custom , chunked"],
            &[b"chunked;q=1"],
            &[b"gzip", b"chunked"],
            &[b"chunked", b"chunked"],
            &[b"\xff, chunked"],
            &[b""],
            &[b" , "],
        ] {
            assert!(!te(bad), "{bad:?}");
        }
    }

    #[test]
    fn split_h2_cookies_count_as_one_field() {
        let mut h = HeaderMap::new();
        for i in 0..150 {
            h.append(COOKIE, HeaderValue::from_str(&format!("c{i}=v")).unwrap());
        }
        h.append("x-a", HeaderValue::from_static("1"));
        let mut req = Request::builder().uri("/").body(()).unwrap();
        *req.headers_mut() = h;
        assert_eq!(Tally::of(&req.into_parts().0).fields, 2);
    }

    #[test]
    fn header_list_size_counts_pseudo_headers_like_h2() {
        let req = Request::builder().uri("http://a.example/p?q").header("x-a", "12345").body(()).unwrap();
        // :method GET, :path /p?q, :scheme http, :authority a.example, x-a.
        let want = (7 + 3) + (5 + 4) + (7 + 4) + (10 + 9) + (3 + 5) + 5 * 32;
        assert_eq!(Tally::of(&req.into_parts().0).list_bytes, want);
    }
}
