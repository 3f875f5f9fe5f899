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
//! scale_subscribers COUNT pubsub|bcast|sharded|cluster|replica HOST:PORT[,HOST:PORT...] CHANNEL PREFIX
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
    let hello = match mode.as_str() {
        "bcast" => [resp(&["HELLO", "3"]), resp(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix])].concat(),
        "sharded" => resp(&["SSUBSCRIBE", channel]),
        _ => resp(&["SUBSCRIBE", channel]),
    };
    let targets: Vec<String> = targets.split(',').map(String::from).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let seen = Arc::new(Seen { start: Instant::now(), messages: AtomicU64::new(0), last_ns: AtomicU64::new(0) });
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        let half = count / 2;
        for (lo, hi) in [(0, half), (half, count)] {
            for i in lo..hi {
                let stream = subscribed(&targets[i % targets.len()], &hello).await?;
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
