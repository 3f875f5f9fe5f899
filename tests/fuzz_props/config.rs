//! `config`: YAML bytes → `config::parse_str` → `runtime::compile`.
//!
//! Input: the config text (bytes that are not UTF-8 are read lossily; the
//! loader itself refuses them before parsing, with no line to give).
//!
//! Properties: no panic; every error, from parsing or compiling, points at
//! a line of the text (`line_col` is `Some`, the line within the text as
//! YAML counts lines, or the line after it for an error at the end) — the errors `load_file`
//! raises before there is any text (unreadable file, not UTF-8) are the
//! only ones without a line, and this target never reaches them.
//!
//! Sandbox: `compile` reads the files and environment variables a config
//! names. Relative paths resolve against `Origin.dir`, an empty temporary
//! directory; absolute paths and paths with `..` are replaced before
//! compiling (the field, and so the error's line, stays the same), so no
//! input reads a file outside it (`/dev/zero` would never end). Env vars
//! are only read. `jwks_url` sources and Redis URLs are parsed at compile
//! time, never connected to (`JwksSource::new` and `redis::Client::open`
//! do no I/O; fetching starts with `JwksSource::start`, outside compile).

use jwtgate::config::load::Origin;
use jwtgate::config::{parse_str, ConfigError, FileConfig};
use jwtgate::runtime::compile;
use std::path::{Component, Path};
use std::sync::LazyLock;

static SANDBOX: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("a temporary directory"));

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let name = "fuzz.yaml";
    let file = match parse_str(&text, name) {
        Ok(file) => file,
        Err(err) => return has_line(&err, &text, "parse"),
    };
    let mut file = file;
    sandbox(&mut file);
    let origin = Origin { name, dir: SANDBOX.path(), text: Some(&text) };
    match compile(file, &origin) {
        Ok(compiled) => {
            let rt = compiled.runtime;
            let _ = rt.routes.unreachable();
            let _ = jwtgate::proxy::pick::OwnPaths::of(&rt);
        }
        Err(err) => has_line(&err, &text, "compile"),
    }
}

fn has_line(err: &ConfigError, text: &str, stage: &str) {
    // libyaml ends an unterminated last line itself ("force new line" at
    // the stream end), so an error at the end of such a text is one line
    // further down, column 1.
    let unterminated = !text.is_empty() && !text.ends_with(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
    let last = yaml_line_breaks(text) + 1 + usize::from(unterminated);
    match err.line_col {
        Some((line, col)) => {
            assert!(line >= 1 && line <= last && col >= 1, "{stage} error at {line}:{col}, last line {last}: {err}")
        }
        None => panic!("{stage} error without a line: {err:?}"),
    }
}

/// Line breaks as libyaml (behind serde_yaml) counts them: CR LF, CR, LF,
/// and YAML 1.1's NEL, LS and PS.
fn yaml_line_breaks(text: &str) -> usize {
    let text = text.replace("\r\n", "\n");
    text.chars().filter(|c| matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')).count()
}

/// Every file path in the config kept inside the sandbox directory.
fn sandbox(file: &mut FileConfig) {
    let mut paths: Vec<&mut String> = Vec::new();
    if let Some(tls) = file.tls.as_mut() {
        paths.push(&mut tls.cert_file);
        paths.push(&mut tls.key_file);
    }
    paths.extend(file.jwt.jwks.ca_file.as_mut());
    for issuer in &mut file.jwt.issuers {
        for key in &mut issuer.keys {
            paths.extend(key.pem_file.as_mut());
            paths.extend(key.jwks_file.as_mut());
            paths.extend(key.secret_file.as_mut());
        }
    }
    if let Some(redis) = file.revocation.redis.as_mut() {
        paths.extend(redis.tls_ca_file.as_mut());
    }
    if let Some(admin) = file.admin.as_mut() {
        paths.extend(admin.token_file.as_mut());
    }
    for path in paths {
        let p = Path::new(path.as_str());
        if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            *path = "outside-the-sandbox".into();
        }
    }
}
