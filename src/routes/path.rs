//! One reading of a request's path, made once and used for every decision
//! (route rules of every kind, the logout, logout-all and back-channel
//! paths, `explain`) and for what the upstream receives, so no rule can be
//! decided on one reading while the app acts on another.
//!
//! [`normalize`] refuses a path that could be read two ways (400
//! `ambiguous_path`): dot segments (`/a/../b`, also `..;x`), encoded dots,
//! slashes, backslashes and semicolons (`%2e`, `%2f`, `%5c`, `%3b`), raw
//! backslashes and `%00`. An app that decodes before cutting `;params`
//! reads `/public/..%3bx/internal` as `/public/../internal`, so an encoded
//! `;` is as much a separator as an encoded `/` (Spring Security's
//! `StrictHttpFirewall` refuses it for that reason). Repeated slashes
//! (`//internal/x`, `/logout//`) are merged, as nginx (`merge_slashes`),
//! Express, Spring and Tomcat read them, both for the decision and in the
//! path sent upstream, so the app can neither read a different path nor a
//! protocol-relative URL (`//evil.example/x`); `repeated_slashes: reject`
//! answers 400 instead. Other escapes are decoded for matching only
//! (`/%61pi` matches `/api`; see [`decode_escapes`]).
//!
//! Rules are then matched the way common upstreams route: `;params`
//! dropped from segments (Tomcat/Spring ignore them; the empty segment one
//! leaves, `/;x/internal`, merges like any other), one trailing slash
//! ignored (Express, non-strict routing) and, unless `case_sensitive_paths`,
//! ASCII case folded (Express, IIS). Each reading makes a rule apply to
//! more requests, never fewer.

use crate::error::ProxyError;
use std::borrow::Cow;

pub use crate::config::RepeatedSlashes;

/// How paths are read; one per config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathPolicy {
    pub case_sensitive: bool,
    pub repeated_slashes: RepeatedSlashes,
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    /// Dot segments, encoded separators (`/`, `\`, `;`), encoded dots,
    /// backslashes, NUL, bad escapes.
    Ambiguous,
    /// Repeated slashes under `repeated_slashes: reject`.
    RepeatedSlashes,
}

/// A request path as jwtgate decides on it and forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    /// The form every rule and special path is compared with.
    pub decide: Cow<'a, str>,
    /// The path the upstream gets instead of the received one (repeated
    /// slashes merged); `None`: the received bytes, unchanged.
    pub rewritten: Option<String>,
}

impl From<PathRefusal> for ProxyError {
    fn from(refusal: PathRefusal) -> Self {
        match refusal {
            PathRefusal::Ambiguous => ProxyError::AmbiguousPath,
            PathRefusal::RepeatedSlashes => ProxyError::RepeatedSlashes,
        }
    }
}

/// Reads `raw` (the request's path, without query) once for every
/// decision. Allocates only when the path needs rewriting, holds a
/// percent-escape, a `;param`, a trailing slash or (folded) upper case.
pub fn normalize(raw: &str, policy: PathPolicy) -> Result<RequestPath<'_>, PathRefusal> {
    // Origin-form, or the asterisk-form of `OPTIONS *`. An authority-form
    // target on another method (`GET host:443`) has no path to decide on,
    // yet would be forwarded as `/`.
    if !raw.starts_with('/') && raw != "*" {
        return Err(PathRefusal::Ambiguous);
    }
    if read_as_sent(raw.as_bytes(), policy.case_sensitive) {
        return Ok(RequestPath { decide: Cow::Borrowed(raw), rewritten: None });
    }
    read_each_way(raw, policy)
}

/// The readings one by one: merged slashes, escapes decoded, dot segments
/// refused, then the form rules are compared in.
fn read_each_way(raw: &str, policy: PathPolicy) -> Result<RequestPath<'_>, PathRefusal> {
    let rewritten = match (raw.contains("//"), policy.repeated_slashes) {
        (false, _) => None,
        (true, RepeatedSlashes::Reject) => return Err(PathRefusal::RepeatedSlashes),
        (true, RepeatedSlashes::Merge) => Some(merge_slashes(raw)),
    };
    let decide = match &rewritten {
        Some(path) => Cow::Owned(decision_form(path, policy.case_sensitive)?.into_owned()),
        None => decision_form(raw, policy.case_sensitive)?,
    };
    Ok(RequestPath { decide, rewritten })
}

/// True when every reading below leaves `path` as it is and none refuses
/// it: no escape, backslash, `;param`, repeated or trailing slash, dot
/// segment, nor (folded) upper case. One pass over the bytes for the
/// common request, where the readings one by one would each scan it.
fn read_as_sent(path: &[u8], case_sensitive: bool) -> bool {
    let mut previous = b'/';
    let mut segment_start = 0;
    for (i, &b) in path.iter().enumerate() {
        match b {
            b'%' | b'\\' | b';' => return false,
            b'/' if i > 0 => {
                if previous == b'/' || is_dot_segment(&path[segment_start..i]) {
                    return false;
                }
                segment_start = i + 1;
            }
            b'/' => segment_start = 1,
            b'A'..=b'Z' if !case_sensitive => return false,
            _ => {}
        }
        previous = b;
    }
    let trailing_slash = path.len() > 1 && previous == b'/';
    !trailing_slash && !is_dot_segment(&path[segment_start.min(path.len())..])
}

fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// A configured path (a rule's `path`/`path_prefix`, the logout paths) in
/// the form requests are compared in; `None` unless it is an absolute path
/// without dot segments or encoded separators.
pub fn configured(path: &str, case_sensitive: bool) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let policy = PathPolicy { case_sensitive, repeated_slashes: RepeatedSlashes::Merge };
    normalize(path, policy).ok().map(|p| p.decide.into_owned())
}

fn decision_form(path: &str, case_sensitive: bool) -> Result<Cow<'_, str>, PathRefusal> {
    match matchable_path(path).ok_or(PathRefusal::Ambiguous)? {
        Cow::Borrowed(decoded) => Ok(for_matching(decoded, case_sensitive)),
        Cow::Owned(decoded) => Ok(Cow::Owned(for_matching(&decoded, case_sensitive).into_owned())),
    }
}

/// Every run of `/` collapsed into one.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for ch in path.chars() {
        if !(ch == '/' && out.ends_with('/')) {
            out.push(ch);
        }
    }
    out
}

/// The decoded path, or `None` when it is ambiguous.
fn matchable_path(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    if bytes.contains(&b'\\') {
        return None;
    }
    let path = if bytes.contains(&b'%') { Cow::Owned(decode_escapes(raw)?) } else { Cow::Borrowed(raw) };
    let dot_segment = path.split('/').any(|seg| {
        let seg = seg.split(';').next().unwrap_or(seg);
        seg == "." || seg == ".."
    });
    (!dot_segment).then_some(path)
}

/// The form rules are compared with: `;params` removed from every segment,
/// the empty segments that leaves merged, one trailing `/` removed (except
/// for `/`), ASCII lower-cased unless `case_sensitive`.
fn for_matching(path: &str, case_sensitive: bool) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(path);
    if out.contains(';') {
        let stripped: Vec<&str> = out.split('/').map(|seg| seg.split(';').next().unwrap_or(seg)).collect();
        out = Cow::Owned(merge_slashes(&stripped.join("/")));
    }
    if out.len() > 1 && out.ends_with('/') {
        out = match out {
            Cow::Borrowed(p) => Cow::Borrowed(&p[..p.len() - 1]),
            Cow::Owned(mut p) => {
                p.pop();
                Cow::Owned(p)
            }
        };
    }
    if !case_sensitive && out.bytes().any(|b| b.is_ascii_uppercase()) {
        out = Cow::Owned(out.to_ascii_lowercase());
    }
    out
}

/// Decodes `%XX` escapes for matching, as Go, Spring, ASP.NET, Django
/// and nginx decode before they route (`/v1/items%3Apurge` is
/// `/v1/items:purge`). Refuses encoded `.`, `/`, `\`, `;`, NUL and escapes
/// that are not `%` and two hex digits. Keeps `%25`, `%3F` and `%23` as
/// written (decoded, they would read as an escape, a query or a fragment),
/// and every escape of a non-ASCII byte when the decoded path would not be
/// UTF-8 (`/caf%E9`: a Latin-1 spelling no rule can be written in).
fn decode_escapes(raw: &str) -> Option<String> {
    match decode(raw, true)? {
        Ok(decoded) => Some(decoded),
        Err(_) => decode(raw, false)?.ok(),
    }
}

/// One decoding pass; `non_ascii`: decode escapes of bytes >= 0x80 too.
fn decode(raw: &str, non_ascii: bool) -> Option<Result<String, std::string::FromUtf8Error>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (hi, lo) = (*bytes.get(i + 1)?, *bytes.get(i + 2)?);
        let byte = (hex_value(hi)? << 4) | hex_value(lo)?;
        match byte {
            b'.' | b'/' | b'\\' | b';' | 0 => return None,
            b'%' | b'?' | b'#' => out.extend_from_slice(&bytes[i..i + 3]),
            b if b >= 0x80 && !non_ascii => out.extend_from_slice(&bytes[i..i + 3]),
            b => out.push(b),
        }
        i += 3;
    }
    Some(String::from_utf8(out))
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGE: PathPolicy = PathPolicy { case_sensitive: false, repeated_slashes: RepeatedSlashes::Merge };

    fn decided(raw: &str) -> Option<String> {
        normalize(raw, MERGE).ok().map(|p| p.decide.into_owned())
    }

    #[test]
    fn traversal_and_encoded_separators_are_ambiguous() {
        for p in [
            "/healthz/../api",
            "/healthz/%2e%2e/api",
            "/healthz%2f..%2fapi",
            "/healthz;x/../api",
            "/a/./b",
            "/a/..;x/b",
            "/a\\b",
            "/a%5cb",
            "/a%2Fb",
            "/a%00",
            "/a%zz",
            "/a%2",
            "//a/../b",
            "/a//..//b",
        ] {
            assert_eq!(normalize(p, MERGE), Err(PathRefusal::Ambiguous), "{p}");
        }
    }

    #[test]
    fn an_encoded_semicolon_is_ambiguous() {
        // Found by the path_routes fuzz target: an app that decodes before
        // cutting `;params` reads these as `/internal` (a deny rule) while
        // jwtgate read `/public/..%3bx/internal` (a public rule).
        for p in ["/public/..%3Bx/internal", "/internal%3bx", "/logout%3B"] {
            assert_eq!(normalize(p, MERGE), Err(PathRefusal::Ambiguous), "{p}");
        }
    }

    #[test]
    fn matching_form_ignores_params_trailing_slash_and_case() {
        assert_eq!(for_matching("/Admin;jsessionid=1/x/", false), "/admin/x");
        assert_eq!(for_matching("/Admin/x", true), "/Admin/x");
        assert_eq!(for_matching("/", false), "/");
        assert!(matches!(for_matching("/api/x", false), Cow::Borrowed(_)));
    }

    #[test]
    fn repeated_slashes_are_merged_for_the_decision_and_the_upstream() {
        for (raw, decide, forward) in [
            ("//internal/x", "/internal/x", "/internal/x"),
            ("///internal/x", "/internal/x", "/internal/x"),
            ("/internal//x", "/internal/x", "/internal/x"),
            ("/logout//", "/logout", "/logout/"),
            ("//logout", "/logout", "/logout"),
            ("//Evil.example/x", "/evil.example/x", "/Evil.example/x"),
            ("//%61pi;x//y", "/api/y", "/%61pi;x/y"),
        ] {
            let path = normalize(raw, MERGE).unwrap();
            assert_eq!(path.decide, decide, "{raw}");
            assert_eq!(path.rewritten.as_deref(), Some(forward), "{raw}");
        }
        let reject = PathPolicy { repeated_slashes: RepeatedSlashes::Reject, ..MERGE };
        assert_eq!(normalize("//internal/x", reject), Err(PathRefusal::RepeatedSlashes));
        assert_eq!(normalize("/internal/x", reject).unwrap().decide, "/internal/x");
    }

    #[test]
    fn empty_segments_left_by_params_merge_too() {
        assert_eq!(decided("/;x/internal").as_deref(), Some("/internal"));
        assert_eq!(decided("/internal/;x/y").as_deref(), Some("/internal/y"));
        assert_eq!(decided("/;x").as_deref(), Some("/"));
        let reject = PathPolicy { repeated_slashes: RepeatedSlashes::Reject, ..MERGE };
        assert_eq!(normalize("/;x/internal", reject).unwrap().rewritten, None, "the received bytes are forwarded");
    }

    #[test]
    fn ordinary_paths_pass_borrowed_and_escapes_decode() {
        let plain = normalize("/api/x", MERGE).unwrap();
        assert!(matches!(plain.decide, Cow::Borrowed("/api/x")));
        assert_eq!(plain.rewritten, None);
        assert_eq!(decided("/%61pi/a%20b").as_deref(), Some("/api/a b"));
        assert_eq!(decided("/v1/items%3Apurge").as_deref(), Some("/v1/items:purge"));
        assert_eq!(decided("/caf%C3%A9").as_deref(), Some("/café"));
        assert_eq!(decided("/caf%E9").as_deref(), Some("/caf%e9"), "not UTF-8: kept encoded (and case-folded)");
        assert_eq!(decided("/a%25b%3Fc%23d").as_deref(), Some("/a%25b%3fc%23d"), "%, ? and # stay escaped");
        assert_eq!(normalize("/a%+5", MERGE), Err(PathRefusal::Ambiguous), "two hex digits or nothing");
        assert_eq!(decided("/a..b/.c").as_deref(), Some("/a..b/.c"));
    }

    #[test]
    fn only_origin_form_and_the_asterisk_have_a_path() {
        assert_eq!(normalize("", MERGE), Err(PathRefusal::Ambiguous));
        assert_eq!(normalize("g:443", MERGE), Err(PathRefusal::Ambiguous));
        assert_eq!(decided("*").as_deref(), Some("*"));
    }

    #[test]
    fn configured_paths_read_like_requests() {
        assert_eq!(configured("/Logout//", false).as_deref(), Some("/logout"));
        assert_eq!(configured("//internal", true).as_deref(), Some("/internal"));
        assert_eq!(configured("internal", false), None);
        assert_eq!(configured("/a/../b", false), None);
    }

    /// The one-pass check may only say "as sent" where the readings one by
    /// one agree: every path of up to six bytes over the characters they
    /// care about, both case policies.
    #[test]
    fn the_one_pass_check_agrees_with_the_readings() {
        const ALPHABET: &[u8] = b"/a.B;%2e\\";
        let mut taken = 0;
        for len in 1..=6u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                let mut path = String::from("/");
                for _ in 1..len {
                    path.push(char::from(ALPHABET[n % ALPHABET.len()]));
                    n /= ALPHABET.len();
                }
                for case_sensitive in [false, true] {
                    if !read_as_sent(path.as_bytes(), case_sensitive) {
                        continue;
                    }
                    taken += 1;
                    let policy = PathPolicy { case_sensitive, repeated_slashes: RepeatedSlashes::Reject };
                    let slow = read_each_way(&path, policy);
                    assert_eq!(
                        slow,
                        Ok(RequestPath { decide: Cow::Borrowed(path.as_str()), rewritten: None }),
                        "{path}"
                    );
                }
            }
        }
        assert!(taken > 1000, "the fast path was taken for only {taken} paths");
    }
}
