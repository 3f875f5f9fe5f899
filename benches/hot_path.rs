//! Micro-benchmarks of the per-request work: token verification (first
//! sight and cached), route picking with path checks, the revocation
//! cache, and the forwarding headers. Whole-proxy numbers come from `bench/run.sh`.

// Benchmark setup panics on bad fixtures; nothing here is a request path.
#![allow(clippy::unwrap_used)]
use criterion::{criterion_group, criterion_main, Criterion};
use http::Method;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use jwtgate::auth::keys::{self, KeySet};
use jwtgate::auth::{now_unix, IssuerRule, Verifier};
use jwtgate::config::AuthMode;
use jwtgate::revocation::{LocalCache, Slot};
use jwtgate::routes::{normalize_path, PathMatch, PathPolicy, RequestHead, Route, RouteTable};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const EC_PRIVATE: &[u8] = include_bytes!("../bench/keys/ec-p256.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../bench/keys/ec-p256.pub.pem");

fn verifier(alg: Algorithm, key: keys::Key, cache_entries: usize) -> Verifier {
    let mut set = KeySet::default();
    set.add(key).unwrap();
    let rule = IssuerRule {
        issuer: "bench".into(),
        issuer_tag: Arc::from("0123456789abcdef"),
        audiences: vec!["api".into()],
        algorithms: vec![alg],
        keys: set,
        jwks: Vec::new(),
    };
    Verifier::new(vec![rule], 30, 8192, true, cache_entries)
}

fn token(alg: Algorithm, key: &EncodingKey) -> String {
    let now = now_unix();
    let claims =
        serde_json::json!({"iss": "bench", "aud": "api", "sub": "u1", "jti": "j1", "iat": now, "exp": now + 3600});
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn verification(c: &mut Criterion) {
    let secret = b"0123456789abcdef0123456789abcdef";
    let hs = token(Algorithm::HS256, &EncodingKey::from_secret(secret));
    let es = token(Algorithm::ES256, &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap());
    let now = now_unix();
    for (name, alg, tok, make_key) in [
        ("hs256", Algorithm::HS256, &hs, Box::new(|| keys::from_secret(None, secret)) as Box<dyn Fn() -> keys::Key>),
        ("es256", Algorithm::ES256, &es, Box::new(|| keys::from_pem(None, EC_PUBLIC).unwrap())),
    ] {
        let cold = verifier(alg, make_key(), 1);
        c.bench_function(&format!("verify_{name}_uncached"), |b| {
            b.iter(|| black_box(cold.verify_uncached(black_box(tok)).is_ok()))
        });
        let warm = verifier(alg, make_key(), 1024);
        c.bench_function(&format!("verify_{name}_cached"), |b| {
            b.iter(|| black_box(warm.verify(black_box(tok), now).is_ok()))
        });
    }
}

fn routing(c: &mut Criterion) {
    let headers = http::HeaderMap::new();
    let table = RouteTable::new(vec![
        Route::simple(PathMatch::Exact("/healthz".into()), vec![], AuthMode::None),
        Route::simple(PathMatch::prefix("/internal"), vec![], AuthMode::Deny),
        Route::simple(PathMatch::prefix("/api"), vec![Method::GET, Method::POST], AuthMode::Required),
    ]);
    c.bench_function("route_pick_plain_path", |b| {
        b.iter(|| {
            let p = normalize_path(black_box("/api/orders/42"), PathPolicy::default()).unwrap().decide;
            let head = RequestHead { method: &Method::GET, host: Some("api.example.com"), path: &p, headers: &headers };
            black_box(table.pick(&head).auth)
        })
    });
    c.bench_function("route_pick_escaped_path", |b| {
        b.iter(|| {
            let p = normalize_path(black_box("/api/orders/a%20b"), PathPolicy::default()).unwrap().decide;
            let head = RequestHead { method: &Method::GET, host: Some("api.example.com"), path: &p, headers: &headers };
            black_box(table.pick(&head).auth)
        })
    });
}

fn revocation_cache(c: &mut Criterion) {
    let cache = LocalCache::new(100_000, Duration::from_secs(60), true);
    cache.remember_fetched("jwtgate:jti:0123456789abcdef:j1".into(), Slot::Absent, cache.epoch(), None);
    c.bench_function("revocation_cache_hit", |b| {
        b.iter(|| black_box(cache.lookup(black_box("jwtgate:jti:0123456789abcdef:j1"))))
    });
}

/// The forwarding headers of a request from an untrusted peer, on the
/// head wrk sends (Host, Authorization) plus a browser-like few.
fn forwarding_headers(c: &mut Criterion) {
    let head = header_map(&[
        ("host", "127.0.0.1:8080"),
        ("authorization", "Bearer x.y.z"),
        ("accept", "*/*"),
        ("user-agent", "bench"),
        ("accept-encoding", "gzip"),
    ]);
    let trusted = jwtgate::trust::TrustedProxies::new(Vec::new());
    // One connection's peer, as the server makes it once per connection.
    let peer = jwtgate::proxy::forwarding::Peer::new([127, 0, 0, 1].into());
    c.bench_function("forwarding_headers_untrusted_peer", |b| {
        b.iter_batched(
            || head.clone(),
            |mut h| black_box(jwtgate::proxy::forwarding::set(&mut h, &peer, None, &trusted, "http")),
            criterion::BatchSize::SmallInput,
        )
    });
}

/// Phase 3's first step on the request head wrk sends: the bearer token
/// (a real one's length) out of the Authorization header.
fn token_extraction(c: &mut Criterion) {
    let token = format!("{}.{}.{}", "e".repeat(36), "p".repeat(180), "s".repeat(43));
    let mut head = http::HeaderMap::new();
    head.insert("host", http::HeaderValue::from_static("127.0.0.1:8080"));
    head.insert("authorization", http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    c.bench_function("extract_bearer", |b| b.iter(|| black_box(jwtgate::auth::extract(black_box(&head), None))));
}

/// Header preparation of a response: nginx's answer carries
/// `Connection: keep-alive`, which sends it down the stripping path.
fn hop_by_hop(c: &mut Criterion) {
    let head = header_map(&[
        ("server", "nginx"),
        ("date", "Wed, 02 Dec 2026 05:00:00 GMT"),
        ("content-type", "text/plain"),
        ("content-length", "3"),
        ("connection", "keep-alive"),
    ]);
    c.bench_function("strip_hop_by_hop_keep_alive_response", |b| {
        b.iter_batched(
            || head.clone(),
            |mut h| {
                jwtgate::proxy::headers::strip_hop_by_hop(&mut h);
                black_box(h)
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn header_map(fields: &[(&'static str, &'static str)]) -> http::HeaderMap {
    let mut head = http::HeaderMap::new();
    for (name, value) in fields {
        head.insert(*name, http::HeaderValue::from_static(value));
    }
    head
}

criterion_group!(benches, verification, routing, revocation_cache, forwarding_headers, token_extraction, hop_by_hop);
criterion_main!(benches);
