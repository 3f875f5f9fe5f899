//! Mint one JWT for the load benchmark (`bench/run.sh`) and print it to stdout.
//!
//! ```text
//! cargo run --example bench_token -- --alg HS256 --secret-file /tmp/secret \
//!     --iss jwtgate-bench --aud bench-api --kid k1 --ttl-secs 3600
//! cargo run --example bench_token -- --alg ES256 --key bench/keys/ec-p256.pem \
//!     --iss jwtgate-bench --aud bench-api --kid k1 --ttl-secs 3600
//! ```
//!
//! The secret file is read as raw bytes with one trailing newline removed,
//! the same rule jwtgate applies to `secret_file`. The token carries `iss`,
//! `aud`, `sub`, `iat`, `nbf`, `exp` and a random `jti`.

use std::error::Error;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

const USAGE: &str = "usage: bench_token --alg HS256|ES256 \
(--secret-file FILE | --key EC_PKCS8_PEM) [--iss ISS] [--aud AUD] [--kid KID] [--ttl-secs N] [--count N]";

struct Args {
    alg: Algorithm,
    secret_file: Option<String>,
    key: Option<String>,
    iss: String,
    aud: String,
    kid: Option<String>,
    ttl_secs: u64,
    /// Tokens to print, one per line, each with its own `jti` and `sub`.
    count: u64,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut alg = None;
    let mut secret_file = None;
    let mut key = None;
    let mut iss = String::from("jwtgate-bench");
    let mut aud = String::from("bench-api");
    let mut kid = None;
    let mut ttl_secs: u64 = 3600;
    let mut count: u64 = 1;

    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--alg" => {
                alg = Some(match value.as_str() {
                    "HS256" => Algorithm::HS256,
                    "ES256" => Algorithm::ES256,
                    other => return Err(format!("unsupported --alg {other:?} (HS256 or ES256)").into()),
                })
            }
            "--secret-file" => secret_file = Some(value),
            "--key" => key = Some(value),
            "--iss" => iss = value,
            "--aud" => aud = value,
            "--kid" => kid = Some(value),
            "--ttl-secs" => ttl_secs = value.parse().map_err(|e| format!("--ttl-secs {value:?}: {e}"))?,
            "--count" => count = value.parse().map_err(|e| format!("--count {value:?}: {e}"))?,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }

    let alg = alg.ok_or_else(|| format!("--alg is required\n{USAGE}"))?;
    Ok(Args { alg, secret_file, key, iss, aud, kid, ttl_secs, count })
}

fn encoding_key(args: &Args) -> Result<EncodingKey, Box<dyn Error>> {
    match args.alg {
        Algorithm::HS256 => {
            let path = args.secret_file.as_deref().ok_or("HS256 needs --secret-file")?;
            let mut secret = std::fs::read(path).map_err(|e| format!("reading secret file {path}: {e}"))?;
            if secret.last() == Some(&b'\n') {
                secret.pop();
            }
            if secret.is_empty() {
                return Err(format!("secret file {path} is empty").into());
            }
            Ok(EncodingKey::from_secret(&secret))
        }
        Algorithm::ES256 => {
            let path = args.key.as_deref().ok_or("ES256 needs --key")?;
            let pem = std::fs::read(path).map_err(|e| format!("reading key {path}: {e}"))?;
            EncodingKey::from_ec_pem(&pem).map_err(|e| format!("{path}: not an EC PKCS#8 private key PEM: {e}").into())
        }
        other => Err(format!("unsupported algorithm {other:?}").into()),
    }
}

/// An error whose `Debug` is its message, so `main` returning it prints
/// `Error: <message>` rather than an escaped string.
struct Fail(String);

impl std::fmt::Debug for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Fail {}

fn main() -> Result<(), Box<dyn Error>> {
    run().map_err(|e| Box::new(Fail(e.to_string())) as Box<dyn Error>)
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let key = encoding_key(&args)?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let iat = now.as_secs();
    let exp = iat.checked_add(args.ttl_secs).ok_or("--ttl-secs is too large")?;
    let mut header = Header::new(args.alg);
    header.kid = args.kid.clone();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..args.count {
        // Unique per token: wall-clock nanoseconds plus 64 random bits.
        let jti = format!("{:x}-{:016x}", now.as_nanos(), rand::random::<u64>());
        let sub = if args.count == 1 { "bench-user".to_owned() } else { format!("bench-user-{i}") };
        let claims = serde_json::json!({
            "iss": args.iss,
            "aud": args.aud,
            "sub": sub,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": jti,
        });
        writeln!(out, "{}", encode(&header, &claims, &key)?)?;
    }
    out.flush()?;
    Ok(())
}
