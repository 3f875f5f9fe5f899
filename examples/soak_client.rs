//! Load client for the memory soak (`bench/soak.sh`): sends N distinct,
//! valid HS256 tokens (a fresh `jti` each) through jwtgate over keep-alive
//! HTTP/1.1 connections, revokes one in `--revoke-every` through the logout
//! path, and samples the gate's RSS from `/proc/<pid>/status` every
//! `--sample-every` tokens.
//!
//! ```text
//! cargo run --release --example soak_client -- --url http://127.0.0.1:8080 \
//!     --secret-file /tmp/secret --pid 1234 --tokens 1000000 --conns 32 \
//!     --revoke-every 100 --sample-every 25000 --csv /tmp/rss.csv
//! ```
//!
//! Per token `i` (minted on the fly, right before it is sent):
//!
//! - `GET --path` with the token: must answer 200 (`get`);
//! - when `i % revoke_every == 0`: `POST --logout-path` with it: must answer
//!   200 (`logout`), then `GET --path` again: must answer 401 (`get_revoked`).
//!
//! After the load (`late` checks): the first revoked token (long evicted
//! from the local caches by then, so Redis answers) must still be refused,
//! the first accepted one (evicted from the verified-token cache, so
//! verified again) still accepted, and a fresh token accepted, logged out,
//! then refused.
//!
//! Output: the CSV (`tokens,elapsed_s,rss_kib,rss_anon_kib,hwm_kib,tokens_per_s`,
//! the last column over the interval since the previous row), progress on
//! stderr, and `key=value` summary lines on stdout:
//! `status kind=get code=200 count=N`, `summary tokens=... ok=true|false`.
//! The exit status is 0 only when every response had the expected status and
//! every token was sent.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use tokio::net::TcpStream;

const USAGE: &str = "usage: soak_client --url http://IP:PORT --secret-file FILE --pid PID \
[--tokens N] [--conns C] [--revoke-every K] [--subjects S] [--sample-every T] [--max-secs S] \
[--csv FILE] [--iss ISS] [--aud AUD] [--kid KID] [--ttl-secs N] [--path P] [--logout-path P]";

struct Args {
    addr: SocketAddr,
    host: String,
    secret_file: String,
    pid: u32,
    tokens: u64,
    conns: usize,
    revoke_every: u64,
    subjects: u64,
    sample_every: u64,
    max_secs: u64,
    csv: Option<String>,
    iss: String,
    aud: String,
    kid: String,
    ttl_secs: u64,
    path: String,
    logout_path: String,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut url = None;
    let mut secret_file = None;
    let mut pid = None;
    let mut a = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        host: String::new(),
        secret_file: String::new(),
        pid: 0,
        tokens: 1_000_000,
        conns: 32,
        revoke_every: 100,
        subjects: 0,
        sample_every: 25_000,
        max_secs: 1200,
        csv: None,
        iss: "jwtgate-soak".into(),
        aud: "soak-api".into(),
        kid: "k1".into(),
        ttl_secs: 3600,
        path: "/api/soak".into(),
        logout_path: "/logout".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--url" => url = Some(v),
            "--secret-file" => secret_file = Some(v),
            "--pid" => pid = Some(num(&v)? as u32),
            "--tokens" => a.tokens = num(&v)?,
            "--conns" => a.conns = num(&v)?.max(1) as usize,
            "--revoke-every" => a.revoke_every = num(&v)?,
            "--subjects" => a.subjects = num(&v)?,
            "--sample-every" => a.sample_every = num(&v)?.max(1),
            "--max-secs" => a.max_secs = num(&v)?,
            "--csv" => a.csv = Some(v),
            "--iss" => a.iss = v,
            "--aud" => a.aud = v,
            "--kid" => a.kid = v,
            "--ttl-secs" => a.ttl_secs = num(&v)?,
            "--path" => a.path = v,
            "--logout-path" => a.logout_path = v,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    let hostport = url.strip_prefix("http://").ok_or("--url must be http://IP:PORT")?.trim_end_matches('/');
    a.addr = hostport.parse().map_err(|e| format!("--url {url:?}: {e} (want http://IP:PORT)"))?;
    a.host = hostport.to_string();
    a.secret_file = secret_file.ok_or_else(|| format!("--secret-file is required\n{USAGE}"))?;
    a.pid = pid.ok_or_else(|| format!("--pid is required\n{USAGE}"))?;
    Ok(a)
}

#[derive(Serialize)]
struct SoakClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

struct Minter {
    key: EncodingKey,
    header: Header,
    iss: String,
    aud: String,
    ttl_secs: u64,
    subjects: u64,
    run_id: String,
}

impl Minter {
    /// Token number `i`: its own jti; its own subject, or one of `subjects`.
    fn mint(&self, i: u64, tag: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = unix_now();
        let sub = if self.subjects == 0 { i } else { i % self.subjects };
        let claims = SoakClaims {
            iss: &self.iss,
            aud: &self.aud,
            sub: format!("soak-user-{sub}"),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: format!("{}-{tag}{i}", self.run_id),
        };
        encode(&self.header, &claims, &self.key)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// One keep-alive connection, reopened after an error.
struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Conn {
    async fn send(&mut self, method: Method, path: &str, token: &str) -> Result<StatusCode, String> {
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let result = self.try_send(method, path, token).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(&mut self, method: Method, path: &str, token: &str) -> Result<StatusCode, String> {
        let sender = self.sender.as_mut().ok_or("no connection")?;
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if method == Method::POST {
            req = req.header(header::CONTENT_LENGTH, "0");
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?;
        Ok(status)
    }
}

type Counts = BTreeMap<(&'static str, u16), u64>;

struct Shared {
    args: Args,
    minter: Minter,
    next: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
    counts: Mutex<Counts>,
    /// A few error messages, for the report.
    errors: Mutex<Vec<String>>,
    first_revoked: Mutex<Option<String>>,
    first_accepted: Mutex<Option<String>>,
}

/// Counts a response (or an error, as code 0) and says whether it was expected.
fn record(
    counts: &mut Counts,
    shared: &Shared,
    kind: &'static str,
    result: Result<StatusCode, String>,
    want: u16,
) -> bool {
    match result {
        Ok(status) => {
            *counts.entry((kind, status.as_u16())).or_default() += 1;
            status.as_u16() == want
        }
        Err(e) => {
            *counts.entry((kind, 0)).or_default() += 1;
            if let Ok(mut errors) = shared.errors.lock() {
                if errors.len() < 10 {
                    errors.push(format!("{kind}: {e}"));
                }
            }
            false
        }
    }
}

async fn worker(shared: Arc<Shared>) -> Counts {
    let mut counts = Counts::new();
    let a = &shared.args;
    let mut conn = Conn { addr: a.addr, host: a.host.clone(), sender: None };
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= a.tokens {
            break;
        }
        let token = match shared.minter.mint(i, "") {
            Ok(t) => t,
            Err(e) => {
                record(&mut counts, &shared, "mint", Err(e.to_string()), 0);
                shared.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let revoke = a.revoke_every > 0 && i.is_multiple_of(a.revoke_every);
        let accepted = record(&mut counts, &shared, "get", conn.send(Method::GET, &a.path, &token).await, 200);
        if revoke {
            let out =
                record(&mut counts, &shared, "logout", conn.send(Method::POST, &a.logout_path, &token).await, 200);
            let refused =
                record(&mut counts, &shared, "get_revoked", conn.send(Method::GET, &a.path, &token).await, 401);
            if out && refused {
                set_once(&shared.first_revoked, &token);
            }
        } else if accepted {
            set_once(&shared.first_accepted, &token);
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    counts
}

fn set_once(slot: &Mutex<Option<String>>, token: &str) {
    if let Ok(mut slot) = slot.lock() {
        if slot.is_none() {
            *slot = Some(token.to_string());
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    anon_kib: u64,
    hwm_kib: u64,
}

fn read_mem(pid: u32) -> Result<Mem, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let mut mem = Mem::default();
    for line in status.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else { continue };
        let value: u64 = value.parse().unwrap_or(0);
        match name {
            "VmRSS:" => mem.rss_kib = value,
            "RssAnon:" => mem.anon_kib = value,
            "VmHWM:" => mem.hwm_kib = value,
            _ => {}
        }
    }
    Ok(mem)
}

struct Sampler {
    pid: u32,
    started: Instant,
    rows: Vec<(u64, f64, Mem, f64)>,
    last: (u64, f64),
}

impl Sampler {
    fn sample(&mut self, tokens: u64) -> Result<(), String> {
        let mem = read_mem(self.pid)?;
        let elapsed = self.started.elapsed().as_secs_f64();
        let dt = elapsed - self.last.1;
        let rate = if dt > 0.0 { (tokens - self.last.0) as f64 / dt } else { 0.0 };
        self.last = (tokens, elapsed);
        eprintln!(
            "[soak] {tokens:>9} tokens  {elapsed:>7.1} s  {rate:>7.0} tok/s  RSS {:>7.1} MiB (anon {:.1})",
            mem.rss_kib as f64 / 1024.0,
            mem.anon_kib as f64 / 1024.0
        );
        self.rows.push((tokens, elapsed, mem, rate));
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match rt.block_on(run()) {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak_client: {e}");
            std::process::exit(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn Error>> {
    let args = parse_args()?;
    let mut secret = std::fs::read(&args.secret_file).map_err(|e| format!("{}: {e}", args.secret_file))?;
    if secret.last() == Some(&b'\n') {
        secret.pop();
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(args.kid.clone());
    let started_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let minter = Minter {
        key: EncodingKey::from_secret(&secret),
        header,
        iss: args.iss.clone(),
        aud: args.aud.clone(),
        ttl_secs: args.ttl_secs,
        subjects: args.subjects,
        run_id: format!("{started_ns:x}{:08x}", rand::random::<u32>()),
    };
    let (pid, tokens, sample_every, max_secs, conns) =
        (args.pid, args.tokens, args.sample_every, args.max_secs, args.conns);
    let shared = Arc::new(Shared {
        args,
        minter,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        counts: Mutex::new(Counts::new()),
        errors: Mutex::new(Vec::new()),
        first_revoked: Mutex::new(None),
        first_accepted: Mutex::new(None),
    });

    let started = Instant::now();
    let mut sampler = Sampler { pid, started, rows: Vec::new(), last: (0, 0.0) };
    sampler.sample(0)?;

    let workers: Vec<_> = (0..conns).map(|_| tokio::spawn(worker(shared.clone()))).collect();

    // Sample at every multiple of sample_every (the row carries the exact
    // count reached); stop handing out tokens past max_secs.
    let mut next_sample = sample_every;
    let mut timed_out = false;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let done = shared.done.load(Ordering::Relaxed);
        if done >= next_sample || done >= tokens {
            sampler.sample(done)?;
            while next_sample <= done {
                next_sample += sample_every;
            }
        }
        if done >= tokens || workers.iter().all(|w| w.is_finished()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(max_secs) && !timed_out {
            eprintln!("[soak] --max-secs {max_secs} reached: stopping after the tokens in flight");
            shared.stop.store(true, Ordering::Relaxed);
            timed_out = true;
        }
    }
    for w in workers {
        let counts = w.await?;
        if let Ok(mut all) = shared.counts.lock() {
            for (k, v) in counts {
                *all.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = shared.done.load(Ordering::Relaxed);
    if sampler.rows.last().map(|r| r.0) != Some(done) {
        sampler.sample(done)?;
    }

    // Late checks, after the whole run has churned the caches.
    let mut counts = Counts::new();
    let a = &shared.args;
    let mut conn = Conn { addr: a.addr, host: a.host.clone(), sender: None };
    let first_revoked = shared.first_revoked.lock().ok().and_then(|t| t.clone());
    let first_accepted = shared.first_accepted.lock().ok().and_then(|t| t.clone());
    if let Some(t) = &first_revoked {
        record(&mut counts, &shared, "late_first_revoked", conn.send(Method::GET, &a.path, t).await, 401);
    } else if a.revoke_every > 0 {
        *counts.entry(("late_first_revoked_missing", 0)).or_default() += 1;
    }
    if let Some(t) = &first_accepted {
        record(&mut counts, &shared, "late_first_accepted", conn.send(Method::GET, &a.path, t).await, 200);
    } else {
        *counts.entry(("late_first_accepted_missing", 0)).or_default() += 1;
    }
    let fresh = shared.minter.mint(0, "late-")?;
    record(&mut counts, &shared, "late_fresh", conn.send(Method::GET, &a.path, &fresh).await, 200);
    record(&mut counts, &shared, "late_fresh_logout", conn.send(Method::POST, &a.logout_path, &fresh).await, 200);
    record(&mut counts, &shared, "late_fresh_revoked", conn.send(Method::GET, &a.path, &fresh).await, 401);
    if let Ok(mut all) = shared.counts.lock() {
        for (k, v) in counts {
            *all.entry(k).or_default() += v;
        }
    }

    // Report.
    if let Some(path) = &shared.args.csv {
        let mut out = String::from("tokens,elapsed_s,rss_kib,rss_anon_kib,hwm_kib,tokens_per_s\n");
        for (t, e, m, r) in &sampler.rows {
            out.push_str(&format!("{t},{e:.2},{},{},{},{r:.0}\n", m.rss_kib, m.anon_kib, m.hwm_kib));
        }
        std::fs::write(path, out).map_err(|e| format!("{path}: {e}"))?;
    }
    let all = shared.counts.lock().map(|c| c.clone()).unwrap_or_default();
    let expected = |kind: &str| -> u16 {
        match kind {
            "get" | "logout" | "late_first_accepted" | "late_fresh" | "late_fresh_logout" => 200,
            "get_revoked" | "late_first_revoked" | "late_fresh_revoked" => 401,
            _ => u16::MAX,
        }
    };
    let mut ok = done == tokens;
    let mut requests = 0;
    let mut server_errors = 0;
    for ((kind, code), n) in &all {
        println!("status kind={kind} code={code} count={n}");
        requests += n;
        if (500..600).contains(code) {
            server_errors += n;
        }
        if *code != expected(kind) {
            ok = false;
        }
    }
    if let Ok(errors) = shared.errors.lock() {
        for e in errors.iter() {
            println!("error {e}");
        }
    }
    let revoked = all.get(&("logout", 200)).copied().unwrap_or(0);
    println!(
        "summary tokens={done} wanted={tokens} revoked={revoked} requests={requests} 5xx={server_errors} \
         elapsed_s={elapsed:.1} tokens_per_s={:.0} requests_per_s={:.0} conns={conns} timed_out={timed_out} ok={ok}",
        done as f64 / elapsed,
        requests as f64 / elapsed
    );
    Ok(ok)
}
