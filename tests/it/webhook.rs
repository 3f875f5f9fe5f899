//! `jwtgate webhook`: the real binary on a free loopback port with the
//! test CA's `localhost` certificate (`tests/keys/redis-tls/`), spoken to
//! over real TLS. A returned patch applied to the request object must give
//! exactly what `jwtgate inject` gives for the same Pod.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use jwtgate::k8s::inject::{self, Options};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const READY: &str = "jwtgate webhook listening on https://";

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/redis-tls")
}

struct Webhook {
    addr: String,
    _child: Child,
}

impl Webhook {
    async fn spawn() -> Webhook {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtgate"))
            .args(["--log", "warn", "webhook", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(keys().join("server.pem"))
            .arg("--tls-key")
            .arg(keys().join("server.key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start jwtgate webhook");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix(READY) {
                    return addr.trim().to_owned();
                }
            }
            panic!("jwtgate webhook exited before printing `{READY}…`");
        })
        .await
        .expect("webhook ready line in time");
        Webhook { addr, _child: child }
    }

    /// One request over a fresh TLS connection that trusts only the test CA.
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Bytes) {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(keys().join("ca.pem")).expect("ca.pem") {
            roots.add(cert.expect("CA certificate")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http1");
        tokio::spawn(conn);
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request");
        let rsp = sender.send_request(req).await.expect("response");
        let status = rsp.status().as_u16();
        (status, rsp.into_body().collect().await.expect("body").to_bytes())
    }

    /// POSTs an AdmissionReview for `object` and returns its `response`.
    async fn review(&self, uid: &str, object: &Value) -> Value {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "resource": { "group": "", "version": "v1", "resource": "pods" },
                "namespace": "shop",
                "operation": "CREATE",
                "object": object,
            }
        });
        let (status, body) = self.send("POST", "/mutate", Some(&review)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).expect("JSON answer");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], uid, "uid echoed");
        answer["response"].clone()
    }
}

/// A Pod as a ReplicaSet creates it: generateName, no namespace in the object.
const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  generateName: orders-7d4b9c-
  labels: { app: orders, jwtgate.io/inject: "true" }
spec:
  containers:
    - name: app
      image: example/orders:1
      ports: [{ name: http, containerPort: 3000 }]
"#;

fn pod(yaml: &str) -> Value {
    serde_yaml::from_str(yaml).expect("pod YAML")
}

/// What `jwtgate inject` makes of the same Pod, as JSON.
fn injected_by_cli(yaml: &str) -> Value {
    let out = inject::inject(yaml, &Options::default()).expect("inject");
    serde_yaml::from_str(&out).expect("injected YAML")
}

#[tokio::test]
async fn an_opted_in_pod_gets_a_patch_that_produces_the_inject_output() {
    let hook = Webhook::spawn().await;
    let original = pod(POD);
    let rsp = hook.review("3f1c-uid-1", &original).await;
    assert_eq!(rsp["allowed"], true);
    assert_eq!(rsp["patchType"], "JSONPatch");
    let raw = base64::engine::general_purpose::STANDARD.decode(rsp["patch"].as_str().expect("patch")).expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("RFC 6902 patch");
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).expect("patch applies to the request object");
    assert_ne!(patched, original, "control: the patch changes something");
    assert_eq!(patched, injected_by_cli(POD));
}

#[tokio::test]
async fn a_pod_that_did_not_opt_in_is_allowed_unchanged() {
    let hook = Webhook::spawn().await;
    let plain = POD.replace(r#"jwtgate.io/inject: "true""#, "tier: api");
    let rsp = hook.review("uid-2", &pod(&plain)).await;
    assert_eq!(rsp["allowed"], true);
    assert!(rsp.get("patch").is_none() && rsp.get("patchType").is_none(), "{rsp}");
}

#[tokio::test]
async fn an_already_injected_pod_gets_no_patch() {
    let hook = Webhook::spawn().await;
    let rsp = hook.review("uid-3", &injected_by_cli(POD)).await;
    assert_eq!(rsp["allowed"], true);
    assert!(rsp.get("patch").is_none(), "{rsp}");
}

#[tokio::test]
async fn a_pod_that_cannot_be_injected_is_denied_naming_it_and_its_namespace() {
    let hook = Webhook::spawn().await;
    let ambiguous = POD.replace(
        "ports: [{ name: http, containerPort: 3000 }]",
        "ports: [{ containerPort: 3000 }, { containerPort: 4000 }]",
    );
    let rsp = hook.review("uid-4", &pod(&ambiguous)).await;
    assert_eq!(rsp["allowed"], false);
    assert!(rsp.get("patch").is_none(), "{rsp}");
    let msg = rsp["status"]["message"].as_str().expect("status message");
    assert!(msg.contains("Pod shop/orders-7d4b9c-*") && msg.contains("jwtgate.io/upstream-port"), "{msg}");
}

#[tokio::test]
async fn healthz_answers_200_and_garbage_reviews_400() {
    let hook = Webhook::spawn().await;
    assert_eq!(hook.send("GET", "/healthz", None).await.0, 200);
    assert_eq!(hook.send("POST", "/mutate", Some(&json!({ "request": {} }))).await.0, 400, "no uid");
    assert_eq!(hook.send("GET", "/nope", None).await.0, 404);
}
