//! `jwtgate check` / `run` on bad configuration: exit 1 and one line
//! `FILE:LINE:COL: field.path: message` on stderr, never a secret echoed.

use crate::support::gate::{cli, write_config};
use crate::support::token::HS_SECRET;
use crate::support::Cfg;

const CANARY: &str = "s3cr3t-canary-value";

fn valid_yaml() -> String {
    Cfg::to_url("http://127.0.0.1:3000").yaml()
}

/// Replaces `from`, which must occur exactly once.
fn edit(yaml: &str, from: &str, to: &str) -> String {
    assert_eq!(yaml.matches(from).count(), 1, "{from:?} in:\n{yaml}");
    yaml.replacen(from, to, 1)
}

/// 1-based line of the first occurrence of `needle`.
fn line_of(yaml: &str, needle: &str) -> usize {
    let at = yaml.find(needle).unwrap_or_else(|| panic!("{needle:?} not in yaml"));
    yaml[..at].matches('\n').count() + 1
}

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    path: String,
    _file: tempfile::NamedTempFile,
}

async fn check(yaml: &str) -> Checked {
    let file = write_config(yaml);
    let path = file.path().display().to_string();
    let out = cli(&["check", "-c", &path]).await;
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
        _file: file,
    }
}

/// Exit 1 and a stderr line `PATH:LINE:COL: FIELD: MESSAGE` (optionally
/// after a `jwtgate: ` program-name prefix) where FIELD is `field` or below
/// it, MESSAGE contains `words` and does not repeat the field path.
#[track_caller]
fn assert_located(c: &Checked, line: usize, field: &str, words: &[&str]) {
    assert_eq!(c.code, Some(1), "exit code; stderr:\n{}", c.stderr);
    assert!(!c.stderr.contains(HS_SECRET) && !c.stderr.contains(CANARY), "secret echoed");
    let prefix = format!("{}:{line}:", c.path);
    let hit = c.stderr.lines().find_map(|l| {
        let l = l.strip_prefix("jwtgate: ").unwrap_or(l);
        l.strip_prefix(&prefix)
    });
    let rest = hit.unwrap_or_else(|| panic!("no line starting {prefix:?} in stderr:\n{}", c.stderr));
    let (col, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("no column in {rest:?}"));
    assert!(col.parse::<u32>().is_ok_and(|c| c > 0), "column {col:?}");
    let (reported, msg) = rest.split_once(": ").unwrap_or_else(|| panic!("no field in {rest:?}"));
    let below = reported.strip_prefix(field).is_some_and(|r| r.is_empty() || r.starts_with('.'));
    assert!(below, "field path {reported:?}, expected {field:?}");
    let head = msg.split(": ").next().unwrap_or_default();
    assert!(!reported.starts_with(head), "message repeats the field path: {rest:?}");
    for w in words {
        assert!(msg.contains(w), "{w:?} in {msg:?}");
    }
}

#[tokio::test]
async fn check_accepts_a_valid_config_without_printing_secrets() {
    let c = check(&valid_yaml()).await;
    assert_eq!(c.code, Some(0), "stderr:\n{}", c.stderr);
    assert!(!c.stdout.trim().is_empty(), "no summary on stdout");
    assert!(!c.stdout.contains(HS_SECRET) && !c.stderr.contains(HS_SECRET), "secret printed");
}

#[tokio::test]
async fn check_accepts_a_redis_config_with_every_field() {
    let mut cfg = Cfg::to_url("http://127.0.0.1:3000");
    cfg.redis_url = Some("redis://127.0.0.1:1/0".into());
    cfg.cookie = Some("access_token".into());
    let yaml = cfg
        .yaml()
        .replace("  connect_timeout: 2s\n", "  connect_timeout: 2s\n  pool_max_idle: 16\n  pool_idle_timeout: 90s\n");
    let yaml = yaml.replace("  require_exp: true\n", "  require_exp: true\n  verified_cache_entries: 100\n");
    let yaml = yaml.replace("  missing_jti: reject\n", "  missing_jti: reject\n  max_token_lifetime: 24h\n");
    let yaml = edit(&yaml, "    timeout: 50ms\n", "    timeout: 50ms\n    heartbeat: 500ms\n    ping_timeout: 100ms\n");
    let c = check(&yaml).await;
    assert_eq!(c.code, Some(0), "stderr:\n{}", c.stderr);
}

#[tokio::test]
async fn zero_heartbeat_or_ping_timeout_is_located() {
    let redis = "  store: redis\n  redis:\n    url: redis://127.0.0.1:6379/0\n";
    for field in ["heartbeat", "ping_timeout"] {
        let yaml = edit(&valid_yaml(), "  store: memory\n", &format!("{redis}    {field}: 0ms\n"));
        let c = check(&yaml).await;
        let (line, path) = (line_of(&yaml, &format!("{field}: 0ms")), format!("revocation.redis.{field}"));
        assert_located(&c, line, &path, &["more than zero"]);
    }
}

#[tokio::test]
async fn unknown_field_is_located_by_file_line_and_field() {
    let yaml = edit(&valid_yaml(), "  timeout: 10s\n", "  timeout: 10s\n  retries: 3\n");
    let c = check(&yaml).await;
    assert_located(&c, line_of(&yaml, "retries"), "upstream", &["retries"]);
}

#[tokio::test]
async fn unknown_enum_variant_is_located_by_file_line_and_field() {
    let public = "\n  - match: { path_prefix: /public }";
    let yaml = edit(&valid_yaml(), &format!("    auth: none{public}"), &format!("    auth: sometimes{public}"));
    let c = check(&yaml).await;
    assert_located(&c, line_of(&yaml, "sometimes"), "routes[0].auth", &["unknown variant", "sometimes"]);
}

#[tokio::test]
async fn bad_duration_is_located_by_file_line_and_field() {
    let yaml = edit(&valid_yaml(), "  timeout: 10s\n", "  timeout: 5 parsecs\n");
    let c = check(&yaml).await;
    assert_located(&c, line_of(&yaml, "parsecs"), "upstream.timeout", &[]);
}

#[tokio::test]
async fn errors_never_echo_inline_secrets() {
    let yaml = valid_yaml().replace(HS_SECRET, CANARY);
    let yaml = edit(&yaml, "  on_store_error: fail_closed\n", "  on_store_error: maybe\n");
    let c = check(&yaml).await;
    assert_located(&c, line_of(&yaml, "maybe"), "revocation.on_store_error", &[]);
}

#[tokio::test]
async fn missing_secret_env_var_names_file_field_and_variable() {
    let var = "JWTGATE_TEST_SURELY_UNSET_7F3A";
    assert!(std::env::var_os(var).is_none());
    let secret = format!("{{ kid: hs-1, insecure_secret: \"{HS_SECRET}\" }}");
    let yaml = valid_yaml().replace(&secret, &format!("{{ kid: hs-1, secret_env: {var} }}"));
    let c = check(&yaml).await;
    assert_eq!(c.code, Some(1), "stderr:\n{}", c.stderr);
    assert!(c.stderr.contains(&c.path), "file not named:\n{}", c.stderr);
    assert!(c.stderr.contains("jwt.issuers[1].keys[0]"), "field not named:\n{}", c.stderr);
    assert!(c.stderr.contains(var), "variable not named:\n{}", c.stderr);
}

#[tokio::test]
async fn missing_key_file_names_file_field_and_missing_path() {
    let pem = crate::support::key_path("rsa.pub.pem");
    let yaml = valid_yaml().replace(&pem, "/nonexistent/jwtgate-test.pem");
    let c = check(&yaml).await;
    assert_eq!(c.code, Some(1), "stderr:\n{}", c.stderr);
    assert!(c.stderr.contains(&c.path), "config file not named:\n{}", c.stderr);
    assert!(c.stderr.contains("jwt.issuers[0].keys[0]"), "field not named:\n{}", c.stderr);
    assert!(c.stderr.contains("/nonexistent/jwtgate-test.pem"), "key path not named:\n{}", c.stderr);
}

#[tokio::test]
async fn missing_config_file_is_reported() {
    let out = cli(&["check", "-c", "/nonexistent/jwtgate.yaml"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/jwtgate.yaml"));
}

#[tokio::test]
async fn run_refuses_to_start_with_an_invalid_config() {
    let yaml = edit(&valid_yaml(), "  timeout: 10s\n", "  timeout: 5 parsecs\n");
    let file = write_config(&yaml);
    let out = cli(&["run", "-c", &file.path().display().to_string()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstream.timeout"));
}

#[tokio::test]
async fn version_flag_prints_the_crate_version() {
    let out = cli(&["--version"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn sentinel_store_errors_name_their_field_and_a_good_one_passes() {
    let sentinel = "  store: redis\n  redis:\n    sentinel:\n      master_name: mymaster\n      nodes: [\"redis://127.0.0.1:26379\"]\n";
    let with = |extra: &str| edit(&valid_yaml(), "  store: memory\n", &format!("{sentinel}{extra}"));

    let unset = with("      password_env: JWTGATE_TEST_UNSET_REDIS_PASSWORD\n");
    let c = check(&unset).await;
    assert_located(&c, line_of(&unset, "password_env"), "revocation.redis.sentinel.password_env", &["not set"]);

    let both = with("    url: redis://127.0.0.1:6379/0\n");
    let c = check(&both).await;
    assert_located(&c, line_of(&both, "  redis:\n"), "revocation.redis", &["exactly one of", "sentinel"]);

    let good = check(&with("")).await;
    assert_eq!(good.code, Some(0), "stderr:\n{}", good.stderr);
    assert!(good.stdout.contains("redis sentinel master `mymaster` via redis://127.0.0.1:26379"), "{}", good.stdout);
}

#[tokio::test]
async fn jwks_ca_file_that_holds_no_certificate_is_located() {
    let missing = edit(&valid_yaml(), "  realm: jwtgate\n", "  realm: jwtgate\n  jwks:\n    ca_file: no-such-ca.pem\n");
    let c = check(&missing).await;
    assert_located(&c, line_of(&missing, "ca_file"), "jwt.jwks.ca_file", &["no-such-ca.pem"]);

    let key = crate::support::key_path("rsa.pub.pem");
    let not_a_cert =
        edit(&valid_yaml(), "  realm: jwtgate\n", &format!("  realm: jwtgate\n  jwks:\n    ca_file: \"{key}\"\n"));
    let c = check(&not_a_cert).await;
    assert_located(&c, line_of(&not_a_cert, "ca_file"), "jwt.jwks.ca_file", &["no PEM certificate"]);
}

#[tokio::test]
async fn a_bad_value_inside_a_flow_mapping_is_located_at_its_key() {
    let yaml = valid_yaml();
    let block = yaml.lines().skip_while(|l| *l != "upstream:").take(4).collect::<Vec<_>>().join("\n") + "\n";
    assert!(block.starts_with("upstream:\n  url: "), "{block}");
    let flow = edit(&yaml, &block, "upstream: { timeout: 30s, url: ftp://127.0.0.1:3000 }\n");
    let c = check(&flow).await;
    let line = line_of(&flow, "upstream: {");
    assert_located(&c, line, "upstream.url", &["only http://host:port"]);
    let column = "upstream: { timeout: 30s, ".len() + 1;
    assert!(c.stderr.contains(&format!(":{line}:{column}: upstream.url")), "column of `url:`: {}", c.stderr);
}
