//! Just enough RFC 6455 framing (§5.2) for a tunnel to end cleanly: where
//! each frame of a direction ends, so a close frame can be put between two
//! frames and never inside one. Payloads are never read, unmasked or
//! changed; the bytes are relayed as they come ([`relay`]).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// A close frame's status: 1008, policy violation (RFC 6455 §7.4.1).
const POLICY_VIOLATION: [u8; 2] = 1008u16.to_be_bytes();
/// The close frame's reason text (UTF-8, under 124 bytes).
const REVOKED: &[u8] = b"token revoked";
/// FIN + opcode 0x8 (close).
const CLOSE: u8 = 0x88;

/// Tracks the frame boundaries of one direction of a WebSocket stream.
#[derive(Debug, Default)]
pub struct Boundaries {
    /// The bytes of a header read so far (2 to 14 bytes long in all).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
}

impl Boundaries {
    /// True between two frames (or before the first).
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }

    /// Follows every byte of `data`.
    pub fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = self.through_frame_end(data);
            data = data.get(used..).unwrap_or_default();
        }
    }

    /// Follows `data` up to the end of the current frame: how many bytes
    /// that took (all of `data` when the frame goes on past it). After the
    /// call, either all of `data` was taken or [`Self::at_boundary`] holds.
    pub fn through_frame_end(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        if self.payload_left == 0 {
            loop {
                if header_len(&self.header[..self.have]).is_some_and(|n| n == self.have) {
                    break;
                }
                let (Some(&byte), Some(slot)) = (data.get(used), self.header.get_mut(self.have)) else {
                    return used;
                };
                *slot = byte;
                self.have += 1;
                used += 1;
            }
            self.payload_left = payload_len(&self.header[..self.have]);
            self.have = 0;
            if self.payload_left == 0 {
                return used;
            }
        }
        let rest = (data.len() - used) as u64;
        let take = self.payload_left.min(rest);
        self.payload_left -= take;
        used + take as usize
    }
}

/// The full header length once its first two bytes are known.
fn header_len(head: &[u8]) -> Option<usize> {
    let second = *head.get(1)?;
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

/// The payload length of a complete header.
fn payload_len(head: &[u8]) -> u64 {
    let second = head.get(1).copied().unwrap_or(0);
    let be = |bytes: &[u8]| bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    match second & 0x7f {
        126 => be(head.get(2..4).unwrap_or_default()),
        127 => be(head.get(2..10).unwrap_or_default()),
        n => u64::from(n),
    }
}

/// The close frame a server sends a client: unmasked, 1008 "token revoked".
pub fn close_to_client() -> Vec<u8> {
    let mut frame = vec![CLOSE, (POLICY_VIOLATION.len() + REVOKED.len()) as u8];
    frame.extend_from_slice(&POLICY_VIOLATION);
    frame.extend_from_slice(REVOKED);
    frame
}

/// The close frame a client sends a server: the same, masked with `mask`
/// (§5.3: every client-to-server frame is masked).
pub fn close_to_server(mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![CLOSE, 0x80 | (POLICY_VIOLATION.len() + REVOKED.len()) as u8];
    frame.extend_from_slice(&mask);
    let payload = POLICY_VIOLATION.iter().chain(REVOKED);
    frame.extend(payload.zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// Relays `from` to `to` until EOF; once `stop` turns true, finishes the
/// frame in flight, sends `close` instead of anything after it, shuts `to`
/// and reads `from` to its end (not closing a socket with unread data in
/// it, which would reset it and could lose the close frame).
pub async fn relay<R, W>(mut from: R, mut to: W, mut stop: watch::Receiver<bool>, close: Vec<u8>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = Boundaries::default();
    let mut buf = vec![0u8; RELAY_BUF_BYTES];
    let mut stopping = false;
    loop {
        if stopping && frames.at_boundary() {
            to.write_all(&close).await?;
            to.shutdown().await?;
            while from.read(&mut buf).await? > 0 {}
            return Ok(());
        }
        let n = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                continue;
            }
            n = from.read(&mut buf) => n?,
        };
        let Some(read) = buf.get(..n).filter(|r| !r.is_empty()) else {
            to.shutdown().await?;
            return Ok(());
        };
        let relay = match stopping {
            true => frames.through_frame_end(read),
            false => {
                frames.advance(read);
                n
            }
        };
        to.write_all(buf.get(..relay).unwrap_or_default()).await?;
    }
}

/// Read size of each direction (`copy_bidirectional`'s default buffer).
const RELAY_BUF_BYTES: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// A frame with `len` payload bytes of `fill`, masked or not.
    fn frame(len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let mask_bit = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(mask_bit | len as u8),
            126..=65535 => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(0x7e, len)); // 0x7e looks like a length byte: it must be skipped as payload
        f
    }

    /// Every offset `Boundaries` reports as a boundary, feeding `stream` in
    /// pieces of `step` bytes.
    fn boundaries(stream: &[u8], step: usize) -> Vec<usize> {
        let mut b = Boundaries::default();
        let mut at = Vec::new();
        let mut offset = 0;
        for piece in stream.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let used = b.through_frame_end(rest);
                offset += used;
                rest = &rest[used..];
                if b.at_boundary() {
                    at.push(offset);
                }
            }
        }
        at
    }

    #[test]
    fn frame_ends_are_found_whatever_the_read_sizes() {
        let frames = [frame(0, false), frame(5, true), frame(125, false), frame(300, true), frame(70_000, false)];
        let mut ends = Vec::new();
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend_from_slice(f);
            ends.push(stream.len());
        }
        for step in [1, 2, 3, 7, 14, 1000, stream.len()] {
            assert_eq!(boundaries(&stream, step), ends, "read {step} bytes at a time");
        }
    }

    #[test]
    fn advance_follows_a_whole_buffer_and_stops_mid_frame() {
        let mut b = Boundaries::default();
        let f = frame(200, true);
        b.advance(&f[..3]);
        assert!(!b.at_boundary(), "inside the header");
        b.advance(&f[3..100]);
        assert!(!b.at_boundary(), "inside the payload");
        assert_eq!(b.through_frame_end(&[f[100..].to_vec(), frame(1, false)].concat()), f.len() - 100);
        assert!(b.at_boundary(), "stopped at the end of the frame, not the next one");
    }

    #[test]
    fn close_frames_carry_1008_and_the_client_bound_one_is_unmasked() {
        let to_client = close_to_client();
        assert_eq!(&to_client[..4], &[0x88, 15, 0x03, 0xf0]);
        assert_eq!(&to_client[4..], b"token revoked");

        let mask = [0x11, 0x22, 0x33, 0x44];
        let to_server = close_to_server(mask);
        assert_eq!(&to_server[..2], &[0x88, 0x80 | 15]);
        assert_eq!(&to_server[2..6], &mask);
        let unmasked: Vec<u8> = to_server[6..].iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m).collect();
        assert_eq!(unmasked, &to_client[2..]);
        let mut b = Boundaries::default();
        b.advance(&to_server);
        assert!(b.at_boundary(), "one whole frame");
    }

    #[tokio::test]
    async fn a_stop_lets_the_frame_in_flight_through_then_sends_the_close_and_nothing_else() {
        let (mut sender, from) = duplex(1 << 16);
        let (to, mut receiver) = duplex(1 << 16);
        let (stop, stopped) = watch::channel(false);
        let relayed = tokio::spawn(relay(from, to, stopped, close_to_client()));
        let (first, in_flight, after) = (frame(10, true), frame(300, true), frame(5, true));
        sender.write_all(&first).await.unwrap();
        sender.write_all(&in_flight[..100]).await.unwrap();
        let mut got = vec![0; first.len() + 100];
        receiver.read_exact(&mut got).await.unwrap(); // relayed as it came, mid-frame
        stop.send(true).unwrap();
        sender.write_all(&[&in_flight[100..], after.as_slice()].concat()).await.unwrap();
        drop(sender); // the peer's EOF ends the read of what is left
        let mut rest = Vec::new();
        receiver.read_to_end(&mut rest).await.unwrap();
        relayed.await.unwrap().unwrap();
        got.extend(rest);
        let expected = [first, in_flight, close_to_client()].concat();
        assert_eq!(got, expected, "the frame in flight whole, then the close, then EOF; never the next frame");
    }

    #[tokio::test]
    async fn without_a_stop_every_byte_passes_and_eof_is_passed_on() {
        let (mut sender, from) = duplex(1 << 16);
        let (to, mut receiver) = duplex(1 << 16);
        let (_stop, stopped) = watch::channel(false);
        let relayed = tokio::spawn(relay(from, to, stopped, close_to_client()));
        let stream: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect(); // not even frames
        sender.write_all(&stream).await.unwrap();
        drop(sender);
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).await.unwrap();
        relayed.await.unwrap().unwrap();
        assert!(got == stream, "relayed unchanged");
    }
}
