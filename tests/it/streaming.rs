//! Large bodies stream through jwtgate in both directions without being
//! buffered: the process's memory must not grow with the body size.

use crate::support::gate::full;
use crate::support::token;
use crate::support::upstream::{count_body, Chunks};
use crate::support::{Behaviour, Cfg, Gate, Upstream};
use http_body_util::BodyExt;
use std::time::Duration;

const BODY: u64 = 50 * 1024 * 1024;
const MAX_GROWTH_KIB: u64 = 8 * 1024;

async fn fixture() -> (Upstream, Gate, String) {
    let app = Upstream::spawn().await;
    app.on("/api/upload", Behaviour::Consume);
    app.on("/api/download", Behaviour::Stream(BODY));
    app.on("/api/warm-down", Behaviour::Stream(1024 * 1024));
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let tok = token::mint();
    // Warm-up: connection pools and buffers exist before the baseline.
    let up = gate
        .req("POST", "/api/warm-up")
        .header("authorization", format!("Bearer {tok}"))
        .body(full(vec![b'w'; 1024 * 1024]))
        .unwrap();
    assert_eq!(gate.send(up).await.status, 200);
    assert_eq!(gate.get("/api/warm-down", &tok).await.body.len(), 1024 * 1024);
    (app, gate, tok)
}

#[track_caller]
fn assert_memory_flat(gate: &Gate, rss_before: u64, what: &str) {
    let (rss, peak) = (gate.vm_rss_kib(), gate.vm_hwm_kib());
    assert!(rss.saturating_sub(rss_before) < MAX_GROWTH_KIB, "{what}: VmRSS grew from {rss_before} KiB to {rss} KiB");
    assert!(
        peak.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "{what}: VmHWM reached {peak} KiB from a {rss_before} KiB baseline"
    );
}

#[tokio::test]
async fn fifty_megabyte_upload_streams_through_in_flat_memory() {
    let (app, gate, tok) = fixture().await;
    let before = gate.vm_rss_kib();
    let req = gate
        .req("POST", "/api/upload")
        .header("authorization", format!("Bearer {tok}"))
        .body(Chunks::new(BODY).boxed())
        .unwrap();
    let rsp = gate.stream_within(req, Duration::from_secs(120)).await;
    assert_eq!(rsp.status(), 200);
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["received"], BODY);
    assert_eq!(app.one("/api/upload").body_len, BODY);
    assert_memory_flat(&gate, before, "upload");
}

#[tokio::test]
async fn fifty_megabyte_download_streams_through_in_flat_memory() {
    let (app, gate, tok) = fixture().await;
    let before = gate.vm_rss_kib();
    let req = gate
        .req("GET", "/api/download")
        .header("authorization", format!("Bearer {tok}"))
        .body(crate::support::gate::empty())
        .unwrap();
    let rsp = gate.stream(req).await;
    assert_eq!(rsp.status(), 200);
    let received = tokio::time::timeout(Duration::from_secs(120), count_body(rsp.into_body()))
        .await
        .expect("download finished within 120 s");
    assert_eq!(received, BODY);
    assert_eq!(app.seen("/api/download"), 1);
    assert_memory_flat(&gate, before, "download");
}
