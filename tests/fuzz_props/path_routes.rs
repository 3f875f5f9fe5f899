//! `path_routes`: a request path → `routes::normalize_path` → the special
//! paths and rules (`proxy::pick`, jwtgate's own paths first), compared with the
//! reference reading of the same bytes ([`reference::path::canonical`]).
//!
//! Input: one flag byte (bits 0–1: GET, POST, PUT, DELETE; bit 2:
//! `case_sensitive_paths`; bit 3: `repeated_slashes: reject`), then the
//! request target (path and query, as `http` parses it).
//!
//! Properties, for every spelling jwtgate does not refuse:
//! - a path the app reads as a special path (logout, logout-all,
//!   back-channel) is that special path to jwtgate, and one the app reads as
//!   no special path is none to jwtgate;
//! - otherwise the rule jwtgate picks is at least as strict as the one the
//!   table gives the app's reading (deny > required > optional > none): a
//!   path the table denies is denied in every spelling;
//! - the path jwtgate forwards is read by the app as the original was and
//!   normalizes to the same decision.

use super::reference;
use http::Method;
use jwtgate::config::AuthMode;
use jwtgate::proxy::admit::Admitted;
use jwtgate::proxy::pick::{pick as pick_route, Action};
use jwtgate::proxy::Live;
use jwtgate::routes::{normalize_path, PathPolicy, RepeatedSlashes};
use jwtgate::runtime::Runtime;
use regex::bytes::Regex;
use std::sync::LazyLock;

/// How a reference rule matches the app's reading of the path.
#[derive(Clone, Copy)]
pub enum Match {
    Exact(&'static str),
    Prefix(&'static str),
    Regex(&'static str),
    Glob(&'static str),
}

/// The fixed table: (match, methods, auth), first match wins, no match
/// means `required`. The YAML jwtgate compiles is written from it.
pub const TABLE: &[(Match, &[&str], AuthMode)] = &[
    (Match::Exact("/healthz"), &[], AuthMode::None),
    (Match::Prefix("/public"), &[], AuthMode::None),
    (Match::Glob("/static/**"), &["GET"], AuthMode::None),
    (Match::Regex("/docs/[a-z]+"), &[], AuthMode::None),
    (Match::Exact("/secret"), &[], AuthMode::Deny),
    (Match::Prefix("/internal"), &[], AuthMode::Deny),
    (Match::Regex("/reports/[0-9]+/raw"), &[], AuthMode::Deny),
    (Match::Glob("/files/*/private/**"), &[], AuthMode::Deny),
    (Match::Prefix("/api"), &["GET", "POST"], AuthMode::Required),
    (Match::Exact("/"), &["GET"], AuthMode::Optional),
];

/// The special paths: (path, methods, what jwtgate calls it); checked in
/// this order, as jwtgate checks them.
pub const SPECIAL: &[(&str, &[&str], Action)] = &[
    ("/logout", &["POST"], Action::Logout),
    ("/logout/all", &["POST"], Action::LogoutAll),
    ("/bcl", &[], Action::ReceiveBackchannel),
];

pub fn yaml(case_sensitive: bool) -> String {
    let mut routes = String::new();
    for (m, methods, auth) in TABLE {
        let matcher = match m {
            Match::Exact(p) => format!("path: \"{p}\""),
            Match::Prefix(p) => format!("path_prefix: \"{p}\""),
            Match::Regex(p) => format!("path_regex: \"{p}\""),
            Match::Glob(p) => format!("path_glob: \"{p}\""),
        };
        let auth = format!("{auth:?}").to_lowercase();
        routes.push_str(&format!("  - match: {{ {matcher}, methods: {methods:?} }}\n    auth: {auth}\n"));
    }
    format!(
        "listen: 127.0.0.1:0
upstream: {{ url: \"http://127.0.0.1:9\" }}
case_sensitive_paths: {case_sensitive}
jwt:
  issuers:
    - issuer: fuzz
      algorithms: [HS256]
      keys: [{{ insecure_secret: fuzz-secret-0123456789abcdef }}]
logout: {{ path: /logout, methods: [POST] }}
logout_all: {{ path: /logout/all, methods: [POST] }}
backchannel_logout: {{ path: /bcl, issuer: fuzz }}
routes:
{routes}"
    )
}

fn compile(case_sensitive: bool) -> Runtime {
    let text = yaml(case_sensitive);
    let file = jwtgate::config::parse_str(&text, "path_routes.yaml").expect("the table parses");
    let origin =
        jwtgate::config::load::Origin { name: "path_routes.yaml", dir: std::path::Path::new("."), text: Some(&text) };
    jwtgate::runtime::compile(file, &origin).expect("the table compiles").runtime
}

/// The compiled table (and jwtgate's own paths), without and with `case_sensitive_paths`.
static LIVES: LazyLock<[Live; 2]> = LazyLock::new(|| [Live::new(compile(false)), Live::new(compile(true))]);

/// The reference rules' regexes, anchored, bytes and ASCII only.
static REGEXES: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|(m, _, _)| match m {
            Match::Regex(src) => Some(Regex::new(&format!("(?-u)^(?:{src})$")).expect("reference regex")),
            _ => None,
        })
        .collect()
});

pub fn check(data: &[u8]) {
    let Some((&flags, target)) = data.split_first() else { return };
    let method = [Method::GET, Method::POST, Method::PUT, Method::DELETE][usize::from(flags & 3)].clone();
    let case_sensitive = flags & 4 != 0;
    let repeated_slashes = if flags & 8 != 0 { RepeatedSlashes::Reject } else { RepeatedSlashes::Merge };
    let Ok(target) = http::uri::PathAndQuery::try_from(target) else { return };
    let raw = target.path();
    let policy = PathPolicy { case_sensitive, repeated_slashes };
    let live = &LIVES[usize::from(case_sensitive)];
    let app = reference::path::canonical(raw.as_bytes(), !case_sensitive);
    let Ok(path) = normalize_path(raw, policy) else { return };

    let (head, ()) = http::Request::builder().method(method.clone()).uri(raw).body(()).expect("a request").into_parts();
    let admitted = Admitted { path, host: None };
    let picked = pick_route(&live.rt, &live.own_paths, &head, &admitted).expect("no method override");
    let path = admitted.path;
    let want = special(&method, &app);
    assert_eq!(
        picked.action,
        want,
        "{method} {raw:?}: the app reads {:?}, jwtgate decides on {:?}",
        lossy(&app),
        path.decide
    );
    if picked.action == Action::Forward {
        let picked = picked.route.auth;
        let table = pick(&method, &app);
        assert!(
            strictness(picked) >= strictness(table),
            "{method} {raw:?}: the app reads {:?} ({table:?} in the table), jwtgate decides on {:?} ({picked:?})",
            lossy(&app),
            path.decide
        );
    }

    let forwarded = path.rewritten.as_deref().unwrap_or(raw);
    assert!(http::uri::PathAndQuery::try_from(forwarded).is_ok(), "forwarded path {forwarded:?} is not a path");
    let again = normalize_path(forwarded, policy).expect("the forwarded path is accepted");
    assert_eq!(again.decide, path.decide, "the forwarded path {forwarded:?} decides differently");
    assert_eq!(again.rewritten, None, "the forwarded path {forwarded:?} would be rewritten again");
    let app_forwarded = reference::path::canonical(forwarded.as_bytes(), !case_sensitive);
    assert_eq!(lossy(&app_forwarded), lossy(&app), "the app reads the forwarded {forwarded:?} differently");
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn allows(methods: &[&str], method: &Method) -> bool {
    methods.is_empty() || methods.contains(&method.as_str())
}

fn special(method: &Method, app: &[u8]) -> Action {
    SPECIAL
        .iter()
        .find(|(path, methods, _)| app == path.as_bytes() && allows(methods, method))
        .map_or(Action::Forward, |(_, _, s)| *s)
}

/// The table's rule for the app's reading.
pub fn pick(method: &Method, app: &[u8]) -> AuthMode {
    let matched = TABLE.iter().zip(REGEXES.iter()).find(|((m, methods, _), re)| {
        allows(methods, method)
            && match m {
                Match::Exact(p) => app == p.as_bytes(),
                Match::Prefix(p) => app == p.as_bytes() || app.starts_with(format!("{p}/").as_bytes()),
                Match::Regex(_) => re.as_ref().is_some_and(|re| re.is_match(app)),
                Match::Glob(p) => glob(p.as_bytes(), app),
            }
    });
    matched.map_or(AuthMode::Required, |((_, _, auth), _)| *auth)
}

/// README: `*` any run within one segment, `**` any number of segments
/// (`/x/**` matches `/x` itself too).
fn glob(pattern: &[u8], path: &[u8]) -> bool {
    if let Some(rest) = pattern.strip_prefix(b"/**") {
        return glob(rest, path) || (path.first() == Some(&b'/') && (1..=path.len()).any(|i| glob(rest, &path[i..])));
    }
    if let Some(rest) = pattern.strip_prefix(b"**") {
        return (0..=path.len()).any(|i| glob(rest, &path[i..]));
    }
    if let Some(rest) = pattern.strip_prefix(b"*") {
        let segment = path.iter().position(|b| *b == b'/').unwrap_or(path.len());
        return (0..=segment).any(|i| glob(rest, &path[i..]));
    }
    match (pattern.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((p, prest)), Some((c, crest))) => p == c && glob(prest, crest),
        _ => false,
    }
}

fn strictness(auth: AuthMode) -> u8 {
    match auth {
        AuthMode::None => 0,
        AuthMode::Optional => 1,
        AuthMode::Required => 2,
        AuthMode::Deny => 3,
    }
}

/// The rule jwtgate picks for a plain path (positive controls).
pub fn jwtgate_pick(method: &Method, path: &str) -> AuthMode {
    let headers = http::HeaderMap::new();
    let rt = &LIVES[0].rt;
    let decide = normalize_path(path, PathPolicy::default()).expect("a plain path").decide;
    let request = jwtgate::routes::RequestHead { method, host: None, path: &decide, headers: &headers };
    rt.routes.pick(&request).auth
}
