//! Paths as the upstream will read them. A path that could be read two
//! ways is refused (400 `ambiguous_path`), never rewritten: dot segments
//! (`/a/../b`, also `..;x`), encoded dots, slashes and backslashes (`%2e`,
//! `%2f`, `%5c`), raw backslashes and `%00`. Other percent-escapes of
//! unreserved characters are decoded for matching only (`/%61pi` matches
//! `/api`); the upstream still receives the path byte for byte.
//!
//! Rules are then matched the way common upstreams route ([`for_matching`]):
//! `;params` dropped from segments (Tomcat/Spring ignore them), one trailing
//! slash ignored (Express, non-strict routing) and, unless
//! `case_sensitive_paths`, ASCII case folded (Express, IIS). Each reading
//! makes a rule apply to more requests, never fewer.

use std::borrow::Cow;

/// The path to match routes against, or `None` when it is ambiguous.
/// Allocates only when the path holds a percent-escape.
pub fn matchable_path(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    if bytes.contains(&b'\\') {
        return None;
    }
    let path = if bytes.contains(&b'%') { Cow::Owned(decode_unreserved(raw)?) } else { Cow::Borrowed(raw) };
    let dot_segment = path.split('/').any(|seg| {
        let seg = seg.split(';').next().unwrap_or(seg);
        seg == "." || seg == ".."
    });
    (!dot_segment).then_some(path)
}

/// The form rules are compared with: `;params` removed from every segment,
/// one trailing `/` removed (except for `/`), ASCII lower-cased unless
/// `case_sensitive`. Allocates only when one of those applies.
pub fn for_matching(path: &str, case_sensitive: bool) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(path);
    if out.contains(';') {
        let stripped: Vec<&str> = out.split('/').map(|seg| seg.split(';').next().unwrap_or(seg)).collect();
        out = Cow::Owned(stripped.join("/"));
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

/// Decodes `%XX` of unreserved characters; refuses encoded `.`, `/`, `\`,
/// NUL and malformed escapes. Other escapes are kept as written.
fn decode_unreserved(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let ch_len = utf8_len(bytes[i]);
            out.push_str(raw.get(i..i + ch_len)?);
            i += ch_len;
            continue;
        }
        let hex = raw.get(i + 1..i + 3)?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        match byte {
            b'.' | b'/' | b'\\' | 0 => return None,
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~' => out.push(b as char),
            _ => {
                out.push('%');
                out.push_str(hex);
            }
        }
        i += 3;
    }
    Some(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(matchable_path(p), None, "{p}");
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
    fn ordinary_paths_pass_and_unreserved_escapes_decode() {
        assert_eq!(matchable_path("/api/x").as_deref(), Some("/api/x"));
        assert!(matches!(matchable_path("/api/x"), Some(Cow::Borrowed(_))));
        assert_eq!(matchable_path("/%61pi/a%20b").as_deref(), Some("/api/a%20b"));
        assert_eq!(matchable_path("/a..b/.c").as_deref(), Some("/a..b/.c"));
    }
}
