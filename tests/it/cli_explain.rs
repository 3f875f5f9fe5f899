//! `jwtgate explain`'s exit code is its verdict (0 forwarded or answered,
//! 1 refused, 2 unusable config or request), and its output says whether
//! the Authorization header reaches the upstream.

use crate::support::gate::{cli, write_config};
use crate::support::token::claims;
use crate::support::Cfg;

const ROUTES: &str = "
  - match: { path_prefix: /stripped }
    strip_authorization: true
  - match: { path_prefix: /api }
  - match: { path: /healthz }
    auth: none
";

struct Out {
    code: Option<i32>,
    stdout: String,
}

async fn explain(args: &[&str]) -> Out {
    let out = cli(args).await;
    Out { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned() }
}

fn config() -> tempfile::NamedTempFile {
    write_config(&Cfg::to_url("http://127.0.0.1:3999").routes(ROUTES).yaml())
}

#[tokio::test]
async fn explain_exits_0_when_forwarded_1_when_refused_and_2_when_the_request_is_unusable() {
    let file = config();
    let path = file.path().display().to_string();
    let token = claims().sign();

    let forwarded = explain(&["explain", "-c", &path, "GET", "/api/x", "--token", &token]).await;
    assert!(forwarded.stdout.ends_with("=> forwarded to http://127.0.0.1:3999\n"), "{}", forwarded.stdout);
    assert_eq!(forwarded.code, Some(0), "{}", forwarded.stdout);

    let refused = explain(&["explain", "-c", &path, "GET", "/api/x"]).await;
    assert!(refused.stdout.contains("=> 401 missing_token"), "{}", refused.stdout);
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);

    let logout = explain(&["explain", "-c", &path, "POST", "/logout", "--token", &token]).await;
    assert!(logout.stdout.contains("=> 200 "), "jwtgate answers a logout itself: {}", logout.stdout);
    assert_eq!(logout.code, Some(0), "{}", logout.stdout);

    let bad_url = explain(&["explain", "-c", &path, "GET", "http://[::1"]).await;
    assert!(bad_url.stdout.contains("is not a URL or path"), "{}", bad_url.stdout);
    assert_eq!(bad_url.code, Some(2), "{}", bad_url.stdout);

    let missing = explain(&["explain", "-c", "/no/such/jwtgate.yaml", "GET", "/api/x"]).await;
    assert_eq!(missing.code, Some(2), "a config that does not load");

    let help = explain(&["explain", "--help"]).await;
    assert!(help.stdout.contains("Exit code: 0 forwarded"), "exit codes in --help:\n{}", help.stdout);
}

#[tokio::test]
async fn explain_says_whether_the_authorization_header_is_stripped_before_forwarding() {
    let file = config();
    let path = file.path().display().to_string();
    let token = claims().sign();
    let line = |out: &Out| {
        let found = out.stdout.lines().find(|l| l.starts_with("header     authorization: "));
        found.unwrap_or_else(|| panic!("no authorization line:\n{}", out.stdout)).to_owned()
    };

    let stripped = explain(&["explain", "-c", &path, "GET", "/stripped/x", "--token", &token]).await;
    assert_eq!(stripped.code, Some(0), "{}", stripped.stdout);
    assert_eq!(line(&stripped), "header     authorization: removed before forwarding (strip_authorization: true)");

    let kept = explain(&["explain", "-c", &path, "GET", "/api/x", "--token", &token]).await;
    assert_eq!(line(&kept), "header     authorization: forwarded as sent (strip_authorization: false)");

    let anonymous = explain(&["explain", "-c", &path, "GET", "/healthz"]).await;
    assert_eq!(line(&anonymous), "header     authorization: none sent (strip_authorization: false)");
    for out in [&stripped, &kept] {
        assert!(!out.stdout.contains(&token), "token printed:\n{}", out.stdout);
        assert!(!out.stdout.contains("Some(") && !out.stdout.contains("None"), "Debug text:\n{}", out.stdout);
    }
}
