//! Cookie headers, read the way the apps behind jwtgate read them, so the
//! credential jwtgate checks is the one the app uses.
//!
//! A Cookie header is read as bytes (a header with bytes outside visible
//! ASCII is parsed like any other, never skipped), split on `;`, each pair's
//! name and value trimmed of the bytes app parsers trim. The credential is
//! the **first** pair whose name is the configured one: browsers send one
//! name twice for two cookie paths, most specific first (RFC 6265 §5.4).
//!
//! Parsers disagree on which of two same-name cookies wins (Node's
//! `cookie` and Werkzeug keep the first, Django the last), and on what a
//! name is (PHP percent-decodes names and reads `.` and ` ` as `_`; ASP.NET
//! ignores case; Python's `SimpleCookie` also splits on spaces, WebOb on
//! commas). So, on every route where jwtgate reads the credential,
//! [`forward`] leaves the app exactly one such cookie, the verified one,
//! written `name=value`, and drops every other pair any of those parsers
//! could read under the credential's name.

use crate::error::Rejection;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// Bytes trimmed around names and values: SP and HTAB (RFC 6265, Go, Node
/// `cookie` 1.x), plus NEL and NBSP, which `String.prototype.trim` (Node
/// `cookie` 0.x) and Python's `str.strip` remove from headers decoded as
/// Latin-1. Other control bytes never get past the HTTP parsers.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x85 | 0xa0)
}

fn trim(bytes: &[u8]) -> &[u8] {
    trim_by(bytes, is_space)
}

/// SP and HTAB only: what is trimmed off a pair written back to the app,
/// whose other bytes stay as sent (NEL and NBSP are also the last byte of
/// UTF-8 letters such as `à`).
fn trim_blanks(bytes: &[u8]) -> &[u8] {
    trim_by(bytes, |b| matches!(b, b' ' | b'\t'))
}

fn trim_by(bytes: &[u8], space: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|b| !space(*b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !space(*b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// One `;`-separated pair: its bytes as sent (less SP/HTAB around them),
/// its name and value as parsers read them (`None` without `=`).
struct Pair<'a> {
    raw: &'a [u8],
    name: &'a [u8],
    value: Option<&'a [u8]>,
}

fn pairs(header: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    header.split(|b| *b == b';').map(trim_blanks).filter(|raw| !raw.is_empty()).map(|raw| {
        match raw.iter().position(|b| *b == b'=') {
            Some(eq) => Pair { raw, name: trim(&raw[..eq]), value: Some(trim(&raw[eq + 1..])) },
            None => Pair { raw, name: trim(raw), value: None },
        }
    })
}

/// The credential cookie's value: the first pair named `name` in header
/// order, over every Cookie header, with one pair of surrounding quotes
/// removed. `Ok(None)` when there is none or it is empty; a value that is
/// not text is a malformed token (a JWT is ASCII).
pub fn credential<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Rejection> {
    let first = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|h| pairs(h.as_bytes()))
        .find(|p| p.value.is_some() && p.name == name.as_bytes());
    let Some(value) = first.and_then(|p| p.value) else { return Ok(None) };
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    match std::str::from_utf8(value) {
        Ok("") => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(Rejection::Malformed),
    }
}

/// What the app may read of the credential cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A route jwtgate does not authenticate: the cookies pass as sent.
    Untouched,
    /// The first credential cookie was the token jwtgate verified: it
    /// stays (as `name=value`), every lookalike goes.
    KeepVerified,
    /// Nothing of that name may reach the app (no cookie token was
    /// verified, or `strip_authorization`).
    Remove,
}

/// Prepares the Cookie header for the upstream: several Cookie fields
/// (HTTP/2 sends one per cookie) joined with `; ` into one (RFC 9113
/// §8.2.3), and, unless `Untouched`, the credential cookie handled as
/// `credential` says. Leaves the headers alone when nothing changes.
pub fn forward(headers: &mut HeaderMap, name: Option<&str>, credential: Credential) {
    let name = name.filter(|_| credential != Credential::Untouched);
    let fields = headers.get_all(COOKIE).iter().count();
    if fields == 0 || (fields == 1 && name.is_none()) {
        return;
    }
    let loose_wanted = name.map(loose);
    let mut out: Vec<u8> = Vec::new();
    let mut kept = false;
    for pair in headers.get_all(COOKIE).iter().flat_map(|h| pairs(h.as_bytes())) {
        let keep = match name {
            None => true,
            Some(name) if pair.value.is_some() && pair.name == name.as_bytes() && !kept => {
                // The first credential pair: the one `credential()` read.
                kept = true;
                if credential == Credential::KeepVerified {
                    push(&mut out, &[name.as_bytes(), b"=", pair.value.unwrap_or_default()].concat());
                    continue;
                }
                false
            }
            Some(_) => !could_be_read_as(pair.raw, loose_wanted.as_deref().unwrap_or_default()),
        };
        if keep {
            push(&mut out, pair.raw);
        }
    }
    // Compared with the bytes sent, not pair by pair: bytes trimmed around a
    // pair (`at=tok\x85`, NEL, which Node keeps) must not reach the app.
    if fields == 1 && headers.get(COOKIE).is_some_and(|sent| sent.as_bytes() == out) {
        return;
    }
    headers.remove(COOKIE);
    if !out.is_empty() {
        // From bytes of valid header values joined by `; `: always valid.
        if let Ok(value) = HeaderValue::from_bytes(&out) {
            headers.insert(COOKIE, value);
        }
    }
}

fn push(out: &mut Vec<u8>, pair: &[u8]) {
    if !out.is_empty() {
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(pair);
}

/// True when some app could read a cookie named `wanted` (in its
/// [`loose`] form) out of this `;`-pair: the pair's own name, or a name
/// ending just before any later `=` (spaces before that `=` allowed) that
/// starts after a byte that is not a letter or digit: `SimpleCookie` ends
/// a pair at a space, WebOb finds `key = value` anywhere (after a comma, a
/// quote, a `[`), so `x=1,at =forged` and `x="q"at=forged` carry an `at`.
/// Only suffixes a few times `wanted`'s length are tried (an escape spells
/// one byte in three), and [`reads_as`] stops at the first byte that
/// differs, so the check stays linear in the pair.
fn could_be_read_as(pair: &[u8], wanted: &[u8]) -> bool {
    let own = pair.split(|b| *b == b'=').next().unwrap_or(pair);
    if reads_as(own, wanted) {
        return true;
    }
    let longest = 3 * wanted.len() + 2;
    pair.iter().enumerate().filter(|(_, b)| **b == b'=').any(|(eq, _)| {
        let head = &pair[..eq];
        let head = &head[..head.iter().rposition(|b| !is_space(*b)).map_or(0, |i| i + 1)];
        (1..=head.len().min(longest)).any(|len| {
            let start = head.len() - len;
            // After a non-alphanumeric byte, or right after the `GMT` of an
            // expires-shaped value, which WebOb ends its value at (found by
            // the cookie fuzz target: `x=Mon, 01-Jan-2030 00:00:00 GMTat=f`).
            let boundary = start == 0 || !head[start - 1].is_ascii_alphanumeric() || head[..start].ends_with(b"GMT");
            boundary && reads_as(&head[start..], wanted)
        })
    })
}

/// A configured name in the form [`reads_as`] compares with: ASCII
/// lower case, ` ` and `.` as `_`.
pub(crate) fn loose(name: &str) -> Vec<u8> {
    name.bytes().map(fold).collect()
}

fn fold(b: u8) -> u8 {
    match b {
        b' ' | b'.' => b'_',
        other => other.to_ascii_lowercase(),
    }
}

/// True when the loosest parser reads `candidate` (a cookie or query
/// parameter name as sent) as `wanted` (from [`loose`]): percent-decoded
/// and cut at the first NUL (PHP registers the decoded name as a C
/// string), trimmed, with ` ` and `.` as `_` (PHP), ASCII case ignored
/// (ASP.NET); a `[` either starts an array index (`at[x]`, read as `at`)
/// or, with no `]` after it, is one more `_` (PHP reads `access[token` as
/// `access_token`). Allocates nothing.
pub(crate) fn reads_as(candidate: &[u8], wanted: &[u8]) -> bool {
    let bracketed = candidate.contains(&b'[') || candidate.contains(&b'%');
    reads_as_with(candidate, wanted, Bracket::Index)
        || (bracketed && reads_as_with(candidate, wanted, Bracket::Underscore))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bracket {
    /// `at[x]`: the name ends at `[`.
    Index,
    /// `access[token`: `[` reads as `_`.
    Underscore,
}

fn reads_as_with(candidate: &[u8], wanted: &[u8], bracket: Bracket) -> bool {
    let mut bytes = percent_encoding::percent_decode(candidate).take_while(|b| *b != 0).skip_while(|b| is_space(*b));
    let mut want = wanted.iter();
    while let Some(b) = bytes.next() {
        if b == b'[' && bracket == Bracket::Index {
            return want.next().is_none();
        }
        let folded = if b == b'[' { b'_' } else { fold(b) };
        match want.next() {
            Some(&w) if w == folded => {}
            Some(_) => return false,
            // Past the name: only trailing spaces, then an index, may follow.
            None => {
                for rest in std::iter::once(b).chain(bytes) {
                    match rest {
                        b'[' if bracket == Bracket::Index => return true,
                        s if is_space(s) => {}
                        _ => return false,
                    }
                }
                return true;
            }
        }
    }
    want.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn forwarded(values: &[&[u8]], credential: Credential) -> Vec<Vec<u8>> {
        forwarded_as("at", values, credential)
    }

    fn forwarded_as(name: &str, values: &[&[u8]], credential: Credential) -> Vec<Vec<u8>> {
        let mut h = headers(values);
        forward(&mut h, Some(name), credential);
        h.get_all(COOKIE).iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_first_credential_pair_is_read_with_names_and_values_trimmed() {
        let h = headers(&[b"x=1; at =forged; at=valid"]);
        assert_eq!(credential(&h, "at"), Ok(Some("forged")), "the first pair, as Node's cookie reads it");
        let h = headers(&[b"x=1;\tat\t=\"tok\" ", b"at=later"]);
        assert_eq!(credential(&h, "at"), Ok(Some("tok")));
        let h = headers(&[b"\xa0at=nbsp; at=plain"]);
        assert_eq!(credential(&h, "at"), Ok(Some("nbsp")), "NBSP is trimmed as Node 0.x and Python do");
        let h = headers(&[b"caf\xc3\xa9=1; at=tok"]);
        assert_eq!(credential(&h, "at"), Ok(Some("tok")), "a header with non-ASCII bytes is read, not skipped");
        assert_eq!(credential(&headers(&[b"at=\xff"]), "at"), Err(Rejection::Malformed));
        assert_eq!(credential(&headers(&[b"at=; at=tok"]), "at"), Ok(None), "an empty first pair is no token");
        assert_eq!(credential(&headers(&[b"att=1; xat=2"]), "at"), Ok(None));
    }

    #[test]
    fn only_the_verified_cookie_reaches_the_app_in_one_header() {
        let got =
            forwarded(&[b"theme=dark; at =tok", b"AT=forged; at=second; at[0]=y; a%74=z"], Credential::KeepVerified);
        assert_eq!(got, [b"theme=dark; at=tok".to_vec()]);
        let php = [b"access.token=f1; access token=f2; access_token=tok; access_tokens=kept".as_slice()];
        let got = forwarded_as("access_token", &php, Credential::KeepVerified);
        assert_eq!(got, [b"access_token=tok; access_tokens=kept".to_vec()], "names PHP reads as access_token");
        let got = forwarded(&[b"x=1 at=forged, at=forged2; at=tok"], Credential::KeepVerified);
        assert_eq!(got, [b"at=tok".to_vec()], "names SimpleCookie or WebOb would split out");
        let got = forwarded(&[b"at=tok; caf\xc3\xa9=1"], Credential::Remove);
        assert_eq!(got, [b"caf\xc3\xa9=1".to_vec()], "non-ASCII bytes are kept as they were");
        assert_eq!(forwarded(&[b"at=tok"], Credential::Remove), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn a_name_cut_short_by_an_encoded_nul_is_a_lookalike() {
        // Found by the cookie fuzz target: PHP decodes `at%00x` to a C
        // string and registers it as `at`.
        assert_eq!(forwarded(&[b"at=tok; at%00x=forged"], Credential::KeepVerified), [b"at=tok".to_vec()]);
        assert_eq!(forwarded(&[b"at%00=forged; x=1"], Credential::Remove), [b"x=1".to_vec()]);
    }

    #[test]
    fn the_verified_pair_is_forwarded_without_the_bytes_trimmed_around_it() {
        // Found by the cookie fuzz target: `at=tok\x85` was left as sent,
        // so Node's `cookie` (whose trim keeps NEL) read `tok\x85`.
        assert_eq!(forwarded(&[b"at=tok\x85; x=1"], Credential::KeepVerified), [b"at=tok; x=1".to_vec()]);
        assert_eq!(forwarded(&[b"\xa0at=tok"], Credential::KeepVerified), [b"at=tok".to_vec()]);
    }

    #[test]
    fn a_name_anywhere_before_an_equals_sign_is_found_as_webob_finds_it() {
        // Found by the cookie fuzz target: WebOb reads `at` from each.
        assert_eq!(forwarded(&[b"x=1,at\t=forged; y=2"], Credential::Remove), [b"y=2".to_vec()]);
        assert_eq!(forwarded(&[b"at=tok; x=1 at = forged"], Credential::KeepVerified), [b"at=tok".to_vec()]);
        assert_eq!(forwarded(&[b"x=\"q\"at=f; y=[at=f; z=1"], Credential::Remove), [b"z=1".to_vec()]);
        assert_eq!(forwarded(&[b"xat=1; y=a%74=2"], Credential::Remove), [b"xat=1".to_vec()]);
        let expires = b"$Ve=Mon, 01-Jan-2030 00:00:00 GMTat=tok; z=1";
        assert_eq!(forwarded(&[expires], Credential::Remove), [b"z=1".to_vec()], "a name right after WebOb's date");
    }

    #[test]
    fn names_read_as_the_loosest_parser_reads_them() {
        let at = loose("access_token");
        for yes in [
            "access_token",
            " ACCESS_TOKEN ",
            "access.token",
            "access token",
            "access%5Ftoken",
            "access_token[x]",
            "access_token [0]",
            "access[token",
            "access%5btoken",
            "access_token%00x",
            "%20access_token",
        ] {
            assert!(reads_as(yes.as_bytes(), &at), "{yes}");
        }
        for no in ["access_tokens", "xaccess_token", "access_toke", "access_token x", "access[token]", "a"] {
            assert!(!reads_as(no.as_bytes(), &at), "{no}");
        }
    }

    #[test]
    fn utf8_bytes_at_a_pair_edge_are_written_back_as_sent() {
        // `à` is C3 A0 and `х` D1 85: their last bytes are NBSP and NEL in Latin-1.
        let cookies: [&[u8]; 2] = ["lang=à".as_bytes(), "name=х".as_bytes()];
        assert_eq!(forwarded(&cookies, Credential::Untouched), ["lang=à; name=х".as_bytes().to_vec()]);
        let with_token: [&[u8]; 2] = ["at=tok; lang=à".as_bytes(), "at=x".as_bytes()];
        assert_eq!(forwarded(&with_token, Credential::KeepVerified), ["at=tok; lang=à".as_bytes().to_vec()]);
    }

    #[test]
    fn untouched_routes_only_join_fields() {
        assert_eq!(forwarded(&[b"a=1", b"at =x"], Credential::Untouched), [b"a=1; at =x".to_vec()]);
        assert_eq!(forwarded(&[b"a=1;  at =x"], Credential::Untouched), [b"a=1;  at =x".to_vec()]);
        assert_eq!(forwarded(&[b"theme=dark; at=tok"], Credential::KeepVerified), [b"theme=dark; at=tok".to_vec()]);
    }
}
