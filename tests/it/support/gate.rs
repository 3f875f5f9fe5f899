//! The real `jwtgate` binary, started with `run -c <tempfile>` on port 0.
//!
//! The address comes from the one stdout line the binary prints once
//! bound; stderr (logs) is kept and printed if the test fails.

use super::upstream::BoxedBody;
use super::Cfg;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const READY: &str = "jwtgate listening on http://";
/// The ready line of a gate whose config has `tls:`.
const READY_TLS: &str = "jwtgate listening on https://";
/// The last stdout line, printed when the config has an `admin:` section.
const ADMIN_READY: &str = "jwtgate admin listening on http://";
/// Printed between the two when the config has `forward_auth.listen`.
const FORWARD_AUTH_READY: &str = "jwtgate forward-auth listening on http://";
/// Printed after that one when the config has `forward_auth.grpc_listen`.
const FORWARD_AUTH_GRPC_READY: &str = "jwtgate forward-auth grpc listening on http://";

pub struct Gate {
    pub addr: SocketAddr,
    /// The admin listener, when the config enables it.
    pub admin: Option<SocketAddr>,
    /// The forward-auth (HTTP) listener, when the config enables it.
    pub forward_auth: Option<SocketAddr>,
    /// The forward-auth gRPC (`Check`) listener, when the config enables it.
    pub forward_auth_grpc: Option<SocketAddr>,
    /// The admin token `Gate::admin_send` presents (from `Cfg::admin_token`).
    pub admin_token: Option<String>,
    pub pid: u32,
    _child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
    /// The temp file `spawn_yaml` wrote (`None` for `spawn_file`).
    _config: Option<tempfile::NamedTempFile>,
    client: Client<HttpConnector, BoxedBody>,
}

impl Gate {
    pub async fn spawn(cfg: &Cfg) -> Gate {
        let mut gate = Gate::spawn_yaml(&cfg.yaml()).await;
        gate.admin_token.clone_from(&cfg.admin_token);
        gate
    }

    pub async fn spawn_yaml(yaml: &str) -> Gate {
        Gate::spawn_yaml_with(yaml, &[], &[]).await
    }

    /// Like [`Gate::spawn_yaml`], with more arguments after `run -c FILE`
    /// (`--log-format json`, `--listen ...`) and environment variables.
    pub async fn spawn_yaml_with(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Gate {
        let config = write_config(yaml);
        let path = config.path().to_owned();
        Gate::start(&path, yaml, Some(config), args, env).await
    }

    /// Runs on a config file the test owns (and may rewrite, swap or
    /// symlink for reload tests); `path` must hold `yaml`.
    pub async fn spawn_file(path: &std::path::Path) -> Gate {
        let yaml = std::fs::read_to_string(path).expect("read config file");
        Gate::start(path, &yaml, None, &[], &[]).await
    }

    async fn start(
        path: &std::path::Path,
        yaml: &str,
        config: Option<tempfile::NamedTempFile>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gate {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtgate"))
            .arg("run")
            .arg("-c")
            .arg(path)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start jwtgate");
        let pid = child.id().expect("jwtgate pid");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        let drain_err = tokio::spawn(async move {
            let mut lines = BufReader::new(err_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().expect("stderr lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout pipe")).lines();
        let wants_admin = yaml.lines().any(|l| l.starts_with("admin:"));
        let (wants_forward_auth, wants_forward_auth_grpc) = forward_auth_listeners(yaml);
        let (mut forward_auth, mut forward_auth_grpc) = (None, None);
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            let mut public = None;
            while let Ok(Some(line)) = out.next_line().await {
                if let Some(rest) = line.strip_prefix(READY).or_else(|| line.strip_prefix(READY_TLS)) {
                    public = Some(rest.trim().to_owned());
                } else if let Some(rest) = line.strip_prefix(FORWARD_AUTH_READY) {
                    forward_auth = Some(rest.trim().parse().expect("address in forward-auth ready line"));
                } else if let Some(rest) = line.strip_prefix(FORWARD_AUTH_GRPC_READY) {
                    forward_auth_grpc = Some(rest.trim().parse().expect("address in forward-auth grpc ready line"));
                } else if let Some(rest) = line.strip_prefix(ADMIN_READY) {
                    return Some((public?, Some(rest.trim().to_owned())));
                }
                // The admin line comes last; without one, the others suffice.
                let waiting = (wants_forward_auth && forward_auth.is_none())
                    || (wants_forward_auth_grpc && forward_auth_grpc.is_none());
                if public.is_some() && !wants_admin && !waiting {
                    return Some((public?, None));
                }
            }
            None
        })
        .await;
        let (addr, admin) = match ready {
            Ok(Some((addr, admin))) => (
                addr.parse().expect("address in ready line"),
                admin.map(|a| a.parse().expect("address in admin ready line")),
            ),
            other => {
                let _ = tokio::time::timeout(Duration::from_secs(2), drain_err).await;
                let logs = stderr.lock().expect("stderr lock").clone();
                panic!("jwtgate never printed `{READY}…` ({other:?}); config:\n{yaml}\nstderr:\n{logs}");
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        Gate {
            addr,
            admin,
            forward_auth,
            forward_auth_grpc,
            admin_token: None,
            pid,
            _child: child,
            stderr,
            _config: config,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The forward-auth gRPC listener's `host:port` (what a gRPC client dials).
    pub fn grpc_target(&self) -> String {
        self.forward_auth_grpc.expect("the config has forward_auth.grpc_listen").to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request builder aimed at this gate.
    pub fn req(&self, method: &str, path: &str) -> hyper::http::request::Builder {
        Request::builder().method(method).uri(self.url(path))
    }

    pub async fn get(&self, path: &str, token: &str) -> Rsp {
        let req = self.req("GET", path).header("authorization", format!("Bearer {token}"));
        self.send(req.body(empty()).expect("request")).await
    }

    pub async fn get_anon(&self, path: &str) -> Rsp {
        self.send(self.req("GET", path).body(empty()).expect("request")).await
    }

    pub async fn logout(&self, token: &str) -> Rsp {
        let req = self.req("POST", "/logout").header("authorization", format!("Bearer {token}"));
        self.send(req.body(empty()).expect("request")).await
    }

    /// Sends and collects the whole response (bounded to 10 s).
    pub async fn send(&self, req: Request<BoxedBody>) -> Rsp {
        let rsp = self.stream(req).await;
        let (parts, body) = rsp.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("response body within 10 s")
            .expect("response body")
            .to_bytes();
        Rsp { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    /// Like [`Gate::send`], but a connection error or a reset is returned,
    /// not a panic (for clients that count failures under load).
    pub async fn try_send(&self, req: Request<BoxedBody>) -> Result<Rsp, String> {
        let exchange = async {
            let rsp = self.client.request(req).await.map_err(|e| format!("request: {e:?}"))?;
            let (parts, body) = rsp.into_parts();
            let body = body.collect().await.map_err(|e| format!("body: {e:?}"))?.to_bytes();
            Ok(Rsp { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| "no response within 10 s".to_owned())?
    }

    /// Sends and returns the response with its body still streaming.
    pub async fn stream(&self, req: Request<BoxedBody>) -> Response<hyper::body::Incoming> {
        self.stream_within(req, Duration::from_secs(10)).await
    }

    pub async fn stream_within(&self, req: Request<BoxedBody>, limit: Duration) -> Response<hyper::body::Incoming> {
        tokio::time::timeout(limit, self.client.request(req))
            .await
            .unwrap_or_else(|_| panic!("no response head within {limit:?}"))
            .expect("request to jwtgate")
    }

    /// Writes `request` verbatim on a new TCP connection and parses the reply.
    pub async fn raw(&self, request: &[u8]) -> Rsp {
        let stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect to jwtgate");
        tokio::time::timeout(Duration::from_secs(10), raw_exchange(stream, request))
            .await
            .expect("raw response within 10 s")
    }

    /// Like [`Gate::raw`], from a connection whose local address is `local`
    /// (another loopback address: a client jwtgate sees as a different peer).
    pub async fn raw_from(&self, local: std::net::IpAddr, request: &[u8]) -> Rsp {
        let socket = tokio::net::TcpSocket::new_v4().expect("client socket");
        socket.bind(SocketAddr::new(local, 0)).expect("bind the client address");
        let stream = socket.connect(self.addr).await.expect("connect to jwtgate");
        tokio::time::timeout(Duration::from_secs(10), raw_exchange(stream, request))
            .await
            .expect("raw response within 10 s")
    }

    /// A forward-auth check on the HTTP authorizer listener: `method` and
    /// `path` of the check request itself, with `headers`.
    pub async fn check(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Rsp {
        let addr = self.forward_auth.expect("the config has forward_auth.listen");
        let mut req = Request::builder().method(method).uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(empty()).expect("check request")).await
    }

    /// Like [`Gate::raw_from`], on the forward-auth listener.
    pub async fn check_raw_from(&self, local: std::net::IpAddr, request: &[u8]) -> Rsp {
        let socket = tokio::net::TcpSocket::new_v4().expect("client socket");
        socket.bind(SocketAddr::new(local, 0)).expect("bind the client address");
        let addr = self.forward_auth.expect("the config has forward_auth.listen");
        let stream = socket.connect(addr).await.expect("connect to the forward-auth listener");
        tokio::time::timeout(Duration::from_secs(10), raw_exchange(stream, request))
            .await
            .expect("raw response within 10 s")
    }

    /// Resident set size of the jwtgate process, in KiB.
    pub fn vm_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Peak resident set size of the jwtgate process so far, in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// `POST /logout/all` with `token`.
    pub async fn logout_all(&self, token: &str) -> Rsp {
        let req = self.req("POST", "/logout/all").header("authorization", format!("Bearer {token}"));
        self.send(req.body(empty()).expect("request")).await
    }

    /// A request builder aimed at the admin listener (no credentials).
    pub fn admin_req(&self, method: &str, path_and_query: &str) -> hyper::http::request::Builder {
        let admin = self.admin.expect("admin listener configured (Cfg::admin)");
        Request::builder().method(method).uri(format!("http://{admin}{path_and_query}"))
    }

    /// An admin request carrying the configured admin token; `body` is JSON when given.
    pub async fn admin_send(&self, method: &str, path_and_query: &str, body: Option<serde_json::Value>) -> Rsp {
        let token = self.admin_token.as_deref().expect("admin token configured (Cfg::admin)");
        let req = self.admin_req(method, path_and_query).header("authorization", format!("Bearer {token}"));
        let req = match body {
            Some(json) => req.header("content-type", "application/json").body(full(json.to_string())),
            None => req.body(empty()),
        };
        self.send(req.expect("admin request")).await
    }

    /// An admin request carrying the configured admin token and `body` verbatim.
    pub async fn admin_send_raw(&self, method: &str, path_and_query: &str, body: &str) -> Rsp {
        let token = self.admin_token.as_deref().expect("admin token configured (Cfg::admin)");
        let req = self
            .admin_req(method, path_and_query)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        self.send(req.body(full(body.to_owned())).expect("admin request")).await
    }

    /// The Prometheus text of `GET /metrics` on the admin listener.
    pub async fn metrics(&self) -> String {
        let rsp = self.admin_send("GET", "/metrics", None).await;
        assert_eq!(rsp.status, 200, "admin /metrics: {}", rsp.text());
        rsp.text()
    }

    /// True while the process is running (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    }

    /// Sends SIGHUP (reload) to the process.
    pub fn sighup(&self) {
        let status =
            std::process::Command::new("kill").args(["-HUP", &self.pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -HUP {} failed", self.pid);
    }

    /// Sends SIGTERM (graceful shutdown) to the process.
    pub fn sigterm(&self) {
        let status =
            std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- jwtgate stderr ---\n{}", self.logs());
        }
    }
}

pub fn write_config(yaml: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().expect("temp config");
    f.write_all(yaml.as_bytes()).expect("write config");
    f.flush().expect("flush config");
    f
}

pub fn empty() -> BoxedBody {
    Empty::new().boxed()
}

pub fn full(body: impl Into<Bytes>) -> BoxedBody {
    Full::new(body.into()).boxed()
}

/// A response as received by the test client.
#[derive(Debug)]
pub struct Rsp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Rsp {
    pub fn header(&self, name: &str) -> Option<String> {
        let v = self.headers.get(name)?;
        Some(String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

async fn raw_exchange(mut s: tokio::net::TcpStream, request: &[u8]) -> Rsp {
    s.write_all(request).await.expect("write raw request");
    let rsp = read_response(&mut s).await;
    rsp.unwrap_or_else(|partial| panic!("connection closed before a response head: {partial:?}"))
}

/// Reads one HTTP/1.1 response from `s` (a raw connection the test wrote a
/// request on, perhaps in parts); `Err` with what arrived when the
/// connection ended (or was reset) before a whole response head.
pub async fn read_response(s: &mut tokio::net::TcpStream) -> Result<Rsp, String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match s.read_buf(&mut buf).await {
            Ok(0) => return Err(String::from_utf8_lossy(&buf).into_owned()),
            Ok(_) => {}
            Err(err) => return Err(format!("{err}; after {:?}", String::from_utf8_lossy(&buf))),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').expect("header line");
        let name = hyper::header::HeaderName::from_bytes(k.trim().as_bytes()).expect("header name");
        headers.append(name, v.trim().parse().expect("header value"));
    }
    let mut body = buf.split_off(head_end);
    let len = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if let Some(len) = len {
        while body.len() < len {
            if s.read_buf(&mut body).await.expect("read body") == 0 {
                break;
            }
        }
        body.truncate(len);
    } else if chunked {
        while !body.ends_with(b"0\r\n\r\n") {
            if s.read_buf(&mut body).await.expect("read body") == 0 {
                break;
            }
        }
        body = dechunk(&body);
    } else if status >= 200 && status != 204 && status != 304 {
        s.read_to_end(&mut body).await.expect("read body to EOF");
    }
    Ok(Rsp { status, headers, body: Bytes::from(body) })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(data, b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..i]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("0").trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[i + 2..i + 2 + size]);
        data = &data[i + 2 + size + 2..];
    }
    out
}

/// Runs the binary with `args` (CLI tests), bounded to 10 s.
pub async fn cli(args: &[&str]) -> std::process::Output {
    cli_env(args, &[]).await
}

/// Like [`cli`], with extra environment variables.
pub async fn cli_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap_or_else(|_| panic!("`jwtgate {}` did not exit within 10 s", args.join(" ")))
        .expect("run jwtgate")
}

/// Which forward-auth listeners `yaml` configures (HTTP `listen`, gRPC
/// `grpc_listen`): the ready lines to wait for. A file that does not parse
/// waits for neither (jwtgate refuses it and prints no line at all).
fn forward_auth_listeners(yaml: &str) -> (bool, bool) {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap_or_default();
    let section = &doc["forward_auth"];
    (!section["listen"].is_null(), !section["grpc_listen"].is_null())
}
