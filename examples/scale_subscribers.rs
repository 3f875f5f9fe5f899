//! The extra subscribers of `bench/scale.py`: thousands of Redis
//! connections in one process on one thread, each subscribed (or tracking
//! keys) and reading and discarding what it gets. Far cheaper per message
//! than the script's own asyncio holder, so the core it shares with the
//! jwtgate replicas stays theirs.
//!
//! Protocol on stdin/stdout (the script drives it): opens half the
//! connections, prints `half`, waits for a line, opens the rest, prints
//! `ready`; then at each line read prints
//! `{"messages":N,"ago":S}`: messages since the last report, and how many
//! seconds ago the last byte arrived.
//!
//! ```text
//! scale_subscribers COUNT pubsub|bcast|sharded|cluster|replica|track|read HOST:PORT[,HOST:PORT...] CHANNEL PREFIX
//! ```
//!
//! `track` and `read` model RESP3 key-based client-side caching instead of
//! a subscription: each connection reads `KEYS_PER_CLIENT` of the preloaded
//! keys (`PREFIX<8-digit index>`), with `CLIENT TRACKING ON` (`track`) or
//! without (`read`, the baseline), so the script can weigh what tracking
//! costs Redis per read and in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Preloaded keys each `track`/`read` connection reads (the script loads
/// them as `PREFIX00000000`, `PREFIX00000001`, …).
const KEYS_PER_CLIENT: usize = 10;
const PRELOADED: usize = 1_000_000;

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Counts frames by their marker (a frame split across reads is missed
/// now and then: the count is for sanity, the time is what matters).
fn frames(data: &[u8]) -> u64 {
    let count = |marker: &[u8]| data.windows(marker.len()).filter(|w| *w == marker).count() as u64;
    count(b"message\r\n") + count(b"invalidate\r\n")
}

struct Seen {
    start: Instant,
    messages: AtomicU64,
    /// Nanoseconds after `start` of the last arrival.
    last_ns: AtomicU64,
}

/// Connects and subscribes; returns once Redis has answered, so the
/// connections are subscribed in the order they were opened.
async fn subscribed(addr: &str, hello: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(hello).await?;
    let mut first = [0u8; 1];
    stream.peek(&mut first).await?;
    Ok(stream)
}

/// Like [`subscribed`], but reads every reply up to the `MGET`'s (an array
/// of `KEYS_PER_CLIENT` bulk strings, the last thing asked), so the reads
/// are done, and tracked, when it returns.
async fn have_read(addr: &str, hello: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(hello).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let done = format!("*{KEYS_PER_CLIENT}\r\n").into_bytes();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        // The MGET's array header, then its values (`$1\r\n1\r\n` each).
        if let Some(at) = got.windows(done.len()).position(|w| w == done.as_slice()) {
            if got[at..].windows(2).filter(|w| *w == b"\r\n").count() > 2 * KEYS_PER_CLIENT {
                return Ok(stream);
            }
        }
    }
}

async fn reader(mut stream: TcpStream, seen: Arc<Seen>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        seen.messages.fetch_add(frames(&buf[..n]), Ordering::Relaxed);
        seen.last_ns.store(seen.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, count, mode, targets, channel, prefix] = args.as_slice() else {
        return Err("usage: scale_subscribers COUNT MODE HOST:PORT[,..] CHANNEL PREFIX".into());
    };
    let count: usize = count.parse()?;
    let hello = |i: usize| -> Vec<u8> {
        let reads = || {
            let keys: Vec<String> =
                (0..KEYS_PER_CLIENT).map(|k| format!("{prefix}{:08}", (i * KEYS_PER_CLIENT + k) % PRELOADED)).collect();
            let mut args = vec!["MGET"];
            args.extend(keys.iter().map(String::as_str));
            resp(&args)
        };
        match mode.as_str() {
            "bcast" => [resp(&["HELLO", "3"]), resp(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix])].concat(),
            "sharded" => resp(&["SSUBSCRIBE", channel]),
            "track" => [resp(&["HELLO", "3"]), resp(&["CLIENT", "TRACKING", "ON"]), reads()].concat(),
            "read" => [resp(&["HELLO", "3"]), reads()].concat(),
            _ => resp(&["SUBSCRIBE", channel]),
        }
    };
    let targets: Vec<String> = targets.split(',').map(String::from).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let seen = Arc::new(Seen { start: Instant::now(), messages: AtomicU64::new(0), last_ns: AtomicU64::new(0) });
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        let half = count / 2;
        for (lo, hi) in [(0, half), (half, count)] {
            for i in lo..hi {
                let addr = &targets[i % targets.len()];
                let stream = match mode.as_str() {
                    "track" | "read" => have_read(addr, &hello(i)).await?,
                    _ => subscribed(addr, &hello(i)).await?,
                };
                tokio::spawn(reader(stream, seen.clone()));
            }
            if lo == 0 {
                println!("half");
                stdin.next_line().await?;
            }
        }
        println!("ready");
        while stdin.next_line().await?.is_some() {
            let messages = seen.messages.swap(0, Ordering::Relaxed);
            let last = seen.last_ns.load(Ordering::Relaxed);
            let ago = seen.start.elapsed().as_nanos() as u64 - last.min(seen.start.elapsed().as_nanos() as u64);
            println!("{{\"messages\":{messages},\"ago\":{}}}", ago as f64 / 1e9);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
