//! Cookie parsers of the apps behind jwtgate, each reduced to "what value
//! does the app read for this name": the raw value bytes as that parser
//! cuts and trims them (quote and percent decoding of values left out: the
//! property is about which pair is read, not how its value is decoded).
//! Headers are read as Latin-1, as Node and WSGI hand them to apps.

use super::percent_decode_all;
use regex::bytes::Regex;
use std::sync::LazyLock;

/// One app's reading of a Cookie header for `name`.
pub type Reader = fn(&[u8], &str) -> Option<Vec<u8>>;

/// Every reader, with the parser it models.
pub const READERS: &[(&str, Reader)] = &[
    ("node cookie 0.x (first wins, String.prototype.trim)", node),
    ("django parse_cookie (last wins, str.strip)", django),
    ("php $_COOKIE (first wins, names decoded and mangled)", php),
    ("asp.net core (first wins, any case, `,` separates)", aspnet),
    ("python http.cookies.SimpleCookie (last wins, regex)", simple_cookie),
    ("webob RequestCookies (findall anywhere, last wins)", webob),
];

/// `String.prototype.trim` on a Latin-1 string: TAB, LF, VT, FF, CR, SP
/// and NBSP (U+00A0); not NEL (U+0085, a control character in JS).
fn js_trim(s: &[u8]) -> &[u8] {
    trim_with(s, |b| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0))
}

/// Python's `str.strip()` on a Latin-1 string: ASCII whitespace, the
/// information separators 0x1c–0x1f, NEL and NBSP.
fn py_strip(s: &[u8]) -> &[u8] {
    trim_with(s, |b| matches!(b, b'\t'..=b'\r' | 0x1c..=0x1f | b' ' | 0x85 | 0xa0))
}

fn trim_with(s: &[u8], space: impl Fn(u8) -> bool) -> &[u8] {
    let start = s.iter().position(|b| !space(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !space(*b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// `cookie.parse` 0.4–0.7: pairs split on `;`, the first `=` splits name
/// and value, both trimmed, a value starting with `"` loses its first and
/// last character; the first pair of a name wins.
pub fn node(header: &[u8], name: &str) -> Option<Vec<u8>> {
    header.split(|b| *b == b';').find_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        let key = js_trim(&pair[..eq]);
        let val = js_trim(&pair[eq + 1..]);
        let val = match val.first() {
            Some(b'"') if val.len() >= 2 => &val[1..val.len() - 1],
            Some(b'"') => &[][..],
            _ => val,
        };
        (key == name.as_bytes()).then(|| val.to_vec())
    })
}

/// `django.http.cookie.parse_cookie`: chunks split on `;`, name and value
/// `str.strip()`ped (a chunk without `=` is a value with an empty name);
/// later chunks overwrite earlier ones.
pub fn django(header: &[u8], name: &str) -> Option<Vec<u8>> {
    header.split(|b| *b == b';').rev().find_map(|chunk| {
        let (key, val) = match chunk.iter().position(|b| *b == b'=') {
            Some(eq) => (&chunk[..eq], &chunk[eq + 1..]),
            None => (&[][..], chunk),
        };
        let (key, val) = (py_strip(key), py_strip(val));
        (key == name.as_bytes()).then(|| val.to_vec())
    })
}

/// PHP's `$_COOKIE` (`php_default_treat_data`, `php_register_variable_ex`):
/// pairs split on `;`, leading spaces skipped, the name percent-decoded
/// (PHP before 8.1.11) and read as a C string (cut at NUL), `.` and ` `
/// made `_`, cut at `[` (an array under the base name); a pair without
/// `=` sets an empty value; the first pair of a name wins.
pub fn php(header: &[u8], name: &str) -> Option<Vec<u8>> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = trim_with(pair, |b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'));
        let (raw_name, val) = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        let (base, is_array) = php_name(raw_name);
        if base.is_empty() {
            return None;
        }
        (base == php_name(name.as_bytes()).0).then(|| if is_array { b"[array]".to_vec() } else { val.to_vec() })
    })
}

/// A name as PHP registers it, and whether it is an array element.
pub fn php_name(raw: &[u8]) -> (Vec<u8>, bool) {
    let decoded = percent_decode_all(raw);
    let c_string = decoded.split(|b| *b == 0).next().unwrap_or(&[]);
    let start = c_string.iter().position(|b| *b != b' ').unwrap_or(c_string.len());
    let mut out = Vec::new();
    for b in &c_string[start..] {
        match b {
            b'[' => return (out, true),
            b' ' | b'.' => out.push(b'_'),
            other => out.push(*other),
        }
    }
    (out, false)
}

/// ASP.NET Core's `RequestCookieCollection` (`CookieHeaderParserShared`):
/// pairs split on `;` and `,`, leading whitespace skipped, the name a run
/// of bytes directly followed by `=` (no space before it), names
/// percent-decoded (`Uri.UnescapeDataString`) and compared ignoring case;
/// the first pair of a name wins.
pub fn aspnet(header: &[u8], name: &str) -> Option<Vec<u8>> {
    header.split(|b| matches!(b, b';' | b',')).find_map(|pair| {
        let pair = trim_with(pair, |b| matches!(b, b' ' | b'\t'));
        let eq = pair.iter().position(|b| *b == b'=')?;
        if pair[..eq].last().is_none_or(|b| matches!(b, b' ' | b'\t')) {
            return None;
        }
        let key = percent_decode_all(&pair[..eq]);
        key.eq_ignore_ascii_case(name.as_bytes()).then(|| trim_with(&pair[eq + 1..], |b| b == b' ').to_vec())
    })
}

/// WebOb's `_rx_cookie` (`webob/cookies.py`), used with `findall`: a
/// `key = value` anywhere in the header, whatever comes before it (a
/// space, a comma, another pair's value); a later key overwrites.
/// Python's `\w` is Unicode: Latin-1's superscripts and fractions are
/// word characters to Python (`str.isalnum`), not to Rust's `\w`.
static WEBOB: LazyLock<regex::Regex> = LazyLock::new(|| {
    let legal = r"[\w\d²³¹¼½¾~!@#$%^&*()_+=\-`.?|:/(){}<>']";
    let expires = r"\w{3},\s[\w\d-]{9,11}\s[\d:]{8}\sGMT";
    let pattern = format!(
        r#"(?s)(?P<key>{legal}+?)\s*=\s*(?P<val>"(?:\\"|.)*?"|{expires}|(?:{legal}|\\(?:[0-3][0-7][0-7]|.))*)"#
    );
    regex::Regex::new(&pattern).expect("the WebOb pattern compiles")
});

pub fn webob(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let text: String = header.iter().map(|b| char::from(*b)).collect();
    let latin1 = |s: &str| s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>();
    WEBOB
        .captures_iter(&text)
        .filter(|m| m.name("key").is_some_and(|k| k.as_str() == name))
        .last()
        .and_then(|m| m.name("val").map(|v| latin1(v.as_str())))
}

/// `http.cookies._CookiePattern` with `re.ASCII`, as CPython writes it.
static SIMPLE_COOKIE: LazyLock<Regex> = LazyLock::new(|| {
    let key = r"\w!#%&'~_`><@,:/$*+\-.^|)(?}{=";
    let pattern = format!(
        r#"(?-u)^\s*(?P<key>[{key}]+?)(?:\s*=\s*(?P<val>"(?:[^\\"]|\\.)*"|\w{{3}},\s[\w\d\s-]{{9,11}}\s[\d:]{{8}}\sGMT|[{key}\[\]]*))?\s*(?:\s+|;|$)"#
    );
    Regex::new(&pattern).expect("the SimpleCookie pattern compiles")
});

const RESERVED: &[&str] =
    &["expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version", "samesite", "partitioned"];
const FLAGS: &[&str] = &["secure", "httponly", "partitioned"];

/// `SimpleCookie.load` (`BaseCookie.__parse_string`): the pattern matched
/// again and again from where the last match ended (spaces end a pair as
/// `;` does); `$attr` and reserved attributes belong to the cookie before
/// them; an attribute before any cookie, or a key without a value, makes
/// the whole header invalid and nothing is set; later cookies overwrite.
pub fn simple_cookie(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut i = 0;
    let mut seen_cookie = false;
    let mut read: Option<Vec<u8>> = None;
    while i < header.len() {
        let Some(m) = SIMPLE_COOKIE.captures(&header[i..]) else { break };
        let end = m.get(0).map_or(0, |g| g.end());
        let key = m.name("key").map_or(&[][..], |g| g.as_bytes());
        let val = m.name("val").map(|g| g.as_bytes());
        i += end.max(1);
        let lower = String::from_utf8_lossy(key).to_ascii_lowercase();
        if key.first() == Some(&b'$') {
            continue;
        } else if RESERVED.contains(&lower.as_str()) {
            if !seen_cookie || (val.is_none() && !FLAGS.contains(&lower.as_str())) {
                return None;
            }
        } else if let Some(val) = val {
            seen_cookie = true;
            if key == name.as_bytes() {
                read = Some(val.to_vec());
            }
        } else {
            return None;
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_disagree_as_their_parsers_do() {
        let h = b"at =first; x=1 at=spaced; AT=upper; a%74=enc; at=last";
        assert_eq!(node(h, "at").as_deref(), Some(&b"first"[..]));
        assert_eq!(django(h, "at").as_deref(), Some(&b"last"[..]));
        assert_eq!(aspnet(h, "at").as_deref(), Some(&b"upper"[..]), "any case; no space before `=`");
        assert_eq!(simple_cookie(b"x=1 at=spaced; y=2", "at").as_deref(), Some(&b"spaced"[..]));
        assert_eq!(simple_cookie(b"at=1; path=/; at=2", "at").as_deref(), Some(&b"2"[..]));
        assert_eq!(simple_cookie(b"path=/; at=2", "at"), None, "an attribute first: invalid, nothing set");
        assert_eq!(php(b"access.token=a; access_token=b", "access_token").as_deref(), Some(&b"a"[..]));
        assert_eq!(php(b"at%00x=a", "at").as_deref(), Some(&b"a"[..]), "a C string ends at NUL");
        assert_eq!(php(b"at[0]=a", "at").as_deref(), Some(&b"[array]"[..]));
        assert_eq!(aspnet(b"x=1,At=a", "at").as_deref(), Some(&b"a"[..]));
        assert_eq!(aspnet(b"x=1,at =a", "at"), None, "no space before `=`");
        assert_eq!(webob(b"x=1,at\t=a", "at").as_deref(), Some(&b"a"[..]));
        assert_eq!(webob(b"x=\"a b\" at=c; at=d", "at").as_deref(), Some(&b"d"[..]));
        assert_eq!(node(b"at=\"q\"", "at").as_deref(), Some(&b"q"[..]));
    }
}
