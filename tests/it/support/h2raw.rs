//! A minimal HTTP/2 client writing frames by hand (h2c, prior knowledge),
//! for what hyper's and h2's clients will not do: send connection-specific
//! fields such as `transfer-encoding`, reset a stream mid-body, or send a
//! request before acknowledging the server's SETTINGS.
//!
//! Requests are encoded as HPACK literals (never indexed, no Huffman).
//! Of a response only `:status` is decoded (static table, or a literal of
//! Huffman-coded digits, as h2 writes it) and the DATA bytes are kept: one
//! stream per connection, so the dynamic table never matters.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// The server's SETTINGS_MAX_FRAME_SIZE until it says otherwise.
const MAX_FRAME: usize = 16_384;
/// The stream every request here uses.
pub const STREAM: u32 = 1;
/// RFC 9113 §7 error codes.
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// How the server ended stream 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Response { status: u16, body: Vec<u8> },
    Reset(u32),
    GoAway(u32),
    Closed,
}

pub struct H2 {
    s: TcpStream,
    buf: Vec<u8>,
}

impl H2 {
    /// Preface and an empty SETTINGS. With `ack`, waits for the server's
    /// SETTINGS and acknowledges them, so its limits (header list size)
    /// apply to everything sent after; without, they never do.
    pub async fn connect(addr: SocketAddr, ack: bool) -> H2 {
        let s = TcpStream::connect(addr).await.expect("connect to jwtgate");
        let mut h2 = H2 { s, buf: Vec::new() };
        h2.write(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()).await;
        if ack {
            loop {
                let (kind, flags, _, _) = h2.frame().await.expect("server SETTINGS");
                if kind == SETTINGS && flags & ACK == 0 {
                    break;
                }
            }
            h2.write(&frame(SETTINGS, ACK, 0, &[])).await;
        }
        h2
    }

    /// HEADERS (+ CONTINUATION) for `GET`-like `method` `path` with
    /// `fields` after the pseudo-headers; ends the stream unless `more`
    /// (a body follows with [`H2::data`]).
    pub async fn headers(&mut self, method: &str, path: &str, fields: &[(&str, &[u8])], more: bool) {
        let pseudo: [(&str, &[u8]); 4] =
            [(":method", method.as_bytes()), (":scheme", b"http"), (":path", path.as_bytes()), (":authority", b"g")];
        let mut block = Vec::new();
        for (name, value) in pseudo.iter().chain(fields) {
            block.push(0x00); // literal without indexing, new name
            string(&mut block, name.as_bytes());
            string(&mut block, value);
        }
        let mut frames = Vec::new();
        let pieces: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let last = if i + 1 == pieces.len() { END_HEADERS } else { 0 };
            let (kind, end) = if i == 0 { (HEADERS, if more { 0 } else { END_STREAM }) } else { (CONTINUATION, 0) };
            frames.extend(frame(kind, last | end, STREAM, piece));
        }
        self.write(&frames).await;
    }

    pub async fn data(&mut self, bytes: &[u8], end: bool) {
        self.write(&frame(DATA, if end { END_STREAM } else { 0 }, STREAM, bytes)).await;
    }

    pub async fn reset(&mut self, code: u32) {
        self.write(&frame(RST_STREAM, 0, STREAM, &code.to_be_bytes())).await;
    }

    /// Reads until the server answers or ends stream 1 (10 s at most).
    pub async fn outcome(&mut self) -> Outcome {
        tokio::time::timeout(Duration::from_secs(10), self.read_outcome()).await.expect("h2 outcome within 10 s")
    }

    async fn read_outcome(&mut self) -> Outcome {
        let mut status = None;
        let mut body = Vec::new();
        loop {
            let Some((kind, flags, stream, payload)) = self.frame().await else {
                return match status {
                    Some(status) => Outcome::Response { status, body },
                    None => Outcome::Closed,
                };
            };
            match (kind, stream) {
                (GOAWAY, 0) => return Outcome::GoAway(u32::from_be_bytes(payload[4..8].try_into().unwrap())),
                (RST_STREAM, STREAM) => match status {
                    // h2's own 431 is followed by a reset: the answer stands.
                    Some(status) => return Outcome::Response { status, body },
                    None => return Outcome::Reset(u32::from_be_bytes(payload[..4].try_into().unwrap())),
                },
                (HEADERS, STREAM) if status.is_none() => status = Some(decode_status(&payload)),
                (DATA, STREAM) => body.extend_from_slice(&payload),
                _ => continue,
            }
            if flags & END_STREAM != 0 && matches!(kind, HEADERS | DATA) {
                return Outcome::Response { status: status.expect("HEADERS before DATA"), body };
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("write h2 frames");
    }

    /// The next frame (type, flags, stream, payload); `None` at EOF or reset.
    async fn frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload = self.buf.drain(..len).collect();
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return Some((head[3], head[4], stream, payload));
                }
            }
            match self.s.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string literal without Huffman coding (RFC 7541 §5.2).
fn string(dst: &mut Vec<u8>, s: &[u8]) {
    integer(dst, 7, 0x00, s.len());
    dst.extend_from_slice(s);
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(dst: &mut Vec<u8>, n: u8, first: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        dst.push(first | v as u8);
        return;
    }
    dst.push(first | max as u8);
    v -= max;
    while v >= 128 {
        dst.push((v % 128 + 128) as u8);
        v /= 128;
    }
    dst.push(v as u8);
}

/// `:status` from the first field of a response header block.
fn decode_status(block: &[u8]) -> u16 {
    let mut at = 0;
    // A dynamic table size update may come first (RFC 7541 §6.3).
    while block[at] & 0xe0 == 0x20 {
        at += 1;
    }
    let first = block[at];
    if first & 0x80 != 0 {
        // Indexed field: the static table's :status entries (Appendix A).
        return match first & 0x7f {
            8 => 200,
            9 => 204,
            10 => 206,
            11 => 304,
            12 => 400,
            13 => 404,
            14 => 500,
            other => panic!("indexed field {other} is not a static :status"),
        };
    }
    let name = if first & 0xc0 == 0x40 { first & 0x3f } else { first & 0x0f };
    assert!((8..=14).contains(&name), "first response field is not :status: {block:02x?}");
    let (huffman, len) = (block[at + 1] & 0x80 != 0, (block[at + 1] & 0x7f) as usize);
    let value = &block[at + 2..at + 2 + len];
    let digits = if huffman { huffman_digits(value) } else { String::from_utf8_lossy(value).into_owned() };
    digits.parse().unwrap_or_else(|_| panic!("status {digits:?}"))
}

/// Huffman-coded ASCII digits (RFC 7541 Appendix B: `0`–`2` are 5-bit
/// codes 0x00–0x02, `3`–`9` are 6-bit codes 0x19–0x1f).
fn huffman_digits(bytes: &[u8]) -> String {
    let bits: Vec<u8> = bytes.iter().flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1)).collect();
    let value = |from: usize, n: usize| bits[from..from + n].iter().fold(0u8, |acc, b| acc << 1 | b);
    let (mut at, mut out) = (0, String::new());
    while bits.len() - at >= 5 && bits[at..].contains(&0) {
        match value(at, 5) {
            v @ 0..=2 => {
                out.push((b'0' + v) as char);
                at += 5;
            }
            _ => {
                let v = value(at, 6);
                assert!((0x19..=0x1f).contains(&v), "not a Huffman digit: {bytes:02x?}");
                out.push((b'3' + v - 0x19) as char);
                at += 6;
            }
        }
    }
    out
}

#[test]
fn huffman_digits_decode_like_rfc_7541() {
    // "431": 011010 011001 00001, then seven padding ones.
    assert_eq!(huffman_digits(&[0b0110_1001, 0b1001_0000, 0b1111_1111]), "431");
    // "302": 011001 00000 00010, no padding (RFC 7541 C.6.1).
    assert_eq!(huffman_digits(&[0x64, 0x02]), "302");
}
