//! `jwtgate check` tells the truth: `ok` only with exit 0, every JWKS URL
//! fetched and reported (keys or the cause of the failure), unknown HTTP
//! methods refused at their position, and every value spelled as the YAML
//! writes it.

use crate::support::gate::{cli, write_config};
use crate::support::idp::Idp;
use crate::support::redis::free_port;
use crate::support::Cfg;

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn check(args: &[&str]) -> Out {
    let out = cli(args).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Out { code: out.status.code(), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

/// One issuer whose keys come from the given `jwks_url`s.
fn jwks_yaml(urls: &[String]) -> String {
    let keys: String = urls.iter().map(|u| format!("        - {{ jwks_url: \"{u}\" }}\n")).collect();
    format!(
        "listen: 127.0.0.1:0
upstream:
  url: http://127.0.0.1:3000
jwt:
  jwks: {{ fetch_timeout: 2s }}
  issuers:
    - issuer: \"https://idp.test/\"
      audiences: [api]
      algorithms: [RS256, ES256]
      keys:
{keys}routes:
  - match: {{ path_prefix: /api }}
"
    )
}

#[tokio::test]
async fn check_lists_the_keys_of_each_jwks_url_and_fails_on_one_it_cannot_fetch() {
    let idp = Idp::spawn().await;
    let unreachable = format!("http://127.0.0.1:{}/jwks.json", free_port());
    let file = write_config(&jwks_yaml(&[idp.url(), unreachable.clone()]));
    let path = file.path().display().to_string();

    let out = check(&["check", "-c", &path]).await;
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.lines().next(), Some(format!("{path}: 1 problem(s), listed on stderr").as_str()));
    assert!(!out.stdout.lines().any(|l| l.ends_with(": ok")), "`ok` printed with exit 1:\n{}", out.stdout);
    let good = format!("    jwks_url {}: ok, 2 key(s): jwks-rsa (RS256), jwks-ec (ES256)", idp.url());
    assert!(out.stdout.lines().any(|l| l == good), "no `{good}` in:\n{}", out.stdout);
    let bad = out.stdout.lines().find(|l| l.contains(&unreachable)).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(bad.contains(": error: ") && bad.contains("Connection refused"), "the cause: {bad}");
    let problem = out.stderr.lines().find(|l| l.contains(&unreachable)).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(problem.starts_with(&format!("jwtgate: {path}: jwt.issuers[0]: ")), "{problem}");
    assert!(problem.contains("cannot load the JWK Set") && problem.contains("Connection refused"), "{problem}");
    assert!(idp.hits() >= 1, "the IdP was not asked");

    // Positive control: the reachable URL alone passes.
    let file = write_config(&jwks_yaml(&[idp.url()]));
    let path = file.path().display().to_string();
    let out = check(&["check", "-c", &path]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.lines().next(), Some(format!("{path}: ok").as_str()));
}

#[tokio::test]
async fn check_offline_fetches_nothing_and_says_so() {
    let idp = Idp::spawn().await;
    let unreachable = format!("http://127.0.0.1:{}/jwks.json", free_port());
    let file = write_config(&jwks_yaml(&[idp.url(), unreachable.clone()]));
    let path = file.path().display().to_string();
    let out = check(&["check", "--offline", "-c", &path]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.lines().next(), Some(format!("{path}: ok").as_str()));
    let line = format!("    jwks_url {unreachable}: not fetched (--offline)");
    assert!(out.stdout.lines().any(|l| l == line), "{}", out.stdout);
    assert_eq!(idp.hits(), 0, "--offline fetched");
    let help = check(&["check", "--help"]).await;
    assert!(help.stdout.contains("--offline") && help.stdout.contains("Do not fetch"), "{}", help.stdout);
}

#[tokio::test]
async fn check_never_prints_ok_beside_a_problem() {
    let routes = "\n  - match: { path_prefix: / }\n  - match: { path_prefix: /internal }\n    auth: deny\n";
    let file = write_config(&Cfg::to_url("http://127.0.0.1:3000").routes(routes).yaml());
    let path = file.path().display().to_string();
    let out = check(&["check", "-c", &path]).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.stdout.lines().next(), Some(format!("{path}: 1 problem(s), listed on stderr").as_str()));
    let problems: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with(&format!("jwtgate: {path}: "))).collect();
    assert_eq!(problems.len(), 1, "{}", out.stderr);
    assert!(problems[0].contains("routes[1] can never match"), "{problems:?}");
}

#[tokio::test]
async fn check_prints_values_as_the_yaml_spells_them() {
    let routes = "
  - match: { host: api.example.com, path_prefix: /api, methods: [GET, POST] }
    auth: none
  - match: { host: \"*.example.com\", path_glob: \"/files/**\" }
    auth: deny
";
    let mut cfg = Cfg::to_url("http://127.0.0.1:3000").routes(routes);
    cfg.upstream_timeout = "5s".into();
    let file = write_config(&cfg.yaml());
    let out = check(&["check", "-c", &file.path().display().to_string()]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for spelled in [
        "[0] host: api.example.com, path_prefix: /api, methods: GET, POST -> auth: none",
        "[1] host: *.example.com, path_glob: /files/**, methods: any -> auth: deny",
        "(timeout: 5s, connect_timeout: 2s)",
        "on_store_error: fail_closed, missing_jti: reject",
        "logout     path: /logout, methods: POST, forward: false",
        "no match: auth: required",
        "algorithms: RS256, ES256, EdDSA; audiences: ",
    ] {
        assert!(out.stdout.contains(spelled), "no `{spelled}` in:\n{}", out.stdout);
    }
    for debug in ["Some(", "None", "Exact(", "Suffix(", "FailClosed", "Required", "Reject", "[\"", "Duration"] {
        assert!(!out.stdout.contains(debug), "Rust Debug text `{debug}` in:\n{}", out.stdout);
    }
}

/// 1-based (line, column) of the first `needle` in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the yaml"));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (text[..at].matches('\n').count() + 1, at - line_start + 1)
}

#[tokio::test]
async fn an_unknown_method_is_refused_at_its_entry_with_the_method_it_was_meant_to_be() {
    let flow =
        "\n  - match: { path: /healthz }\n    auth: none\n  - match: { path_prefix: /api, methods: [GET, GTE] }\n";
    let block = "\n  - match:\n      path_prefix: /api\n      methods:\n        - POST\n        - PROPFND\n";
    for (routes, entry, field, meant) in [
        (flow, "GTE", "routes[1].match.methods[1]", "GET"),
        (block, "PROPFND", "routes[0].match.methods[1]", "PROPFIND"),
    ] {
        let yaml = Cfg::to_url("http://127.0.0.1:3000").routes(routes).yaml();
        let file = write_config(&yaml);
        let path = file.path().display().to_string();
        let out = check(&["check", "-c", &path]).await;
        assert_eq!(out.code, Some(1), "{entry}: {}", out.stderr);
        let (line, col) = position_of(&yaml, entry);
        let expected = format!(
            "jwtgate: {path}:{line}:{col}: {field}: `{entry}` is not a registered HTTP method; did you mean `{meant}`?"
        );
        assert!(out.stderr.lines().any(|l| l == expected), "no `{expected}` in:\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "a summary for a refused config:\n{}", out.stdout);
    }
    // Positive control: registered methods pass in any case, WebDAV's too.
    let good = flow.replace("[GET, GTE]", "[get, PROPFIND, MKCOL]");
    let file = write_config(&Cfg::to_url("http://127.0.0.1:3000").routes(&good).yaml());
    let out = check(&["check", "-c", &file.path().display().to_string()]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("methods: GET, PROPFIND, MKCOL"), "{}", out.stdout);
}
