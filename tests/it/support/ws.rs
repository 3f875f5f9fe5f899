//! A minimal RFC 6455 client over a raw TCP socket, speaking real frames
//! (masked, as a client must) so that tests can see what jwtgate puts
//! between them: a close frame, and where. Against `Behaviour::WebSocketEcho`
//! every frame comes back as sent (masked: the echo does not re-frame).

use super::Gate;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Every wait on the network is bounded by this.
const WAIT: Duration = Duration::from_secs(10);
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;

/// One parsed frame (payload unmasked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A masked client frame (mask fixed: the tests compare bytes).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    f
}

/// Parses a whole stream into frames; panics unless it ends exactly at a
/// frame's end (a frame cut or corrupted in flight would not).
pub fn parse_all(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (frame, used) = parse(bytes).unwrap_or_else(|| panic!("a partial frame at the end: {bytes:?}"));
        frames.push(frame);
        bytes = &bytes[used..];
    }
    frames
}

/// The first frame of `bytes` and its length, `None` when incomplete.
pub fn parse(bytes: &[u8]) -> Option<(Frame, usize)> {
    let (b0, b1) = (*bytes.first()?, *bytes.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = match masked {
        true => {
            at += 4;
            bytes.get(at - 4..at)?.try_into().ok()?
        }
        false => [0; 4],
    };
    let payload = bytes.get(at..at + len)?.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m).collect();
    Some((Frame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, masked, payload }, at + len))
}

pub struct Ws {
    pub s: TcpStream,
    /// Bytes read past the last frame returned.
    buf: Vec<u8>,
}

impl Ws {
    /// Opens a tunnel on `path` with `token` (as a Bearer), asserting the 101.
    pub async fn open(gate: &Gate, path: &str, token: &str) -> Ws {
        let mut s =
            tokio::time::timeout(WAIT, TcpStream::connect(gate.addr)).await.expect("connect in time").expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.expect("write handshake");
        let mut buf = Vec::new();
        let end = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = s.read_buf(&mut buf).await.expect("read handshake answer");
                assert!(n > 0, "EOF before the handshake answer: {:?}", String::from_utf8_lossy(&buf));
            }
        })
        .await
        .expect("handshake answer in time");
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101 "), "not switched: {head}");
        Ws { s, buf: buf.split_off(end) }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.s.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write into the tunnel");
    }

    /// The next whole frame, within `within`.
    pub async fn next_frame(&mut self, within: Duration) -> Frame {
        tokio::time::timeout(within, async {
            loop {
                if let Some((frame, used)) = parse(&self.buf) {
                    self.buf.drain(..used);
                    return frame;
                }
                let n = self.s.read_buf(&mut self.buf).await.expect("read a frame");
                assert!(n > 0, "EOF inside or before a frame: {:?}", self.buf);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no whole frame within {within:?}"))
    }

    /// Sends a binary message and asserts it comes back (the echo app).
    pub async fn echo(&mut self, payload: &[u8]) {
        self.send_raw(&client_frame(OP_BINARY, payload)).await;
        let back = self.next_frame(WAIT).await;
        assert_eq!((back.opcode, back.payload.as_slice()), (OP_BINARY, payload), "echoed frame");
    }

    /// Awaits the gate's close frame, then EOF: the close code.
    pub async fn closed_by_gate(&mut self, within: Duration) -> u16 {
        let frame = self.next_frame(within).await;
        assert_eq!(frame.opcode, OP_CLOSE, "a close frame: {frame:?}");
        assert!(!frame.masked, "a server frame is never masked");
        let code = frame.close_code().expect("a close code");
        assert!(self.buf.is_empty(), "bytes after the close frame: {:?}", self.buf);
        let mut rest = [0u8; 64];
        let n =
            tokio::time::timeout(WAIT, self.s.read(&mut rest)).await.expect("EOF after the close frame").unwrap_or(0);
        assert_eq!(n, 0, "data after the close frame: {:?}", &rest[..n]);
        code
    }
}
