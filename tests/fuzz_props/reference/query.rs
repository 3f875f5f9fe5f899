//! Query-string parsers of the apps behind jwtgate, reduced to "does the
//! app read a parameter under this name" (RFC 6750 §2.3 `access_token`).

use super::percent_decode_all;

/// One app's reading: whether `query` carries a parameter named `name`.
pub type Reader = fn(&[u8], &str) -> bool;

pub const READERS: &[(&str, Reader)] = &[
    ("application/x-www-form-urlencoded (WHATWG URLSearchParams, Go, Express `qs`)", whatwg),
    ("Rack 2 / Python < 3.9.2 parse_qs (`&` and `;` separate)", rack2),
    ("PHP $_GET (names decoded and mangled, `[` arrays)", php),
];

/// `+` is a space, then every escape decoded (WHATWG URL §5.1).
fn form_decode(raw: &[u8]) -> Vec<u8> {
    let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode_all(&plus)
}

fn name_of(pair: &[u8]) -> &[u8] {
    pair.split(|b| *b == b'=').next().unwrap_or(pair)
}

pub fn whatwg(query: &[u8], name: &str) -> bool {
    query.split(|b| *b == b'&').any(|pair| !pair.is_empty() && form_decode(name_of(pair)) == name.as_bytes())
}

/// `Rack::Utils.parse_nested_query` (separators `/[&;] */`): `name[]` and
/// `name[key]` are values under `name`.
pub fn rack2(query: &[u8], name: &str) -> bool {
    query.split(|b| matches!(b, b'&' | b';')).any(|pair| {
        let start = pair.iter().position(|b| *b != b' ').unwrap_or(pair.len());
        let decoded = form_decode(name_of(&pair[start..]));
        let base = decoded.split(|b| *b == b'[').next().unwrap_or(&[]);
        !pair.is_empty() && base == name.as_bytes()
    })
}

/// `php_default_treat_data` for GET: names decoded, then registered as
/// cookie names are (see [`super::cookie::php_name`]).
pub fn php(query: &[u8], name: &str) -> bool {
    query.split(|b| *b == b'&').any(|pair| {
        let plus: Vec<u8> = name_of(pair).iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        let (base, _) = super::cookie::php_name(&plus);
        !base.is_empty() && base == super::cookie::php_name(name.as_bytes()).0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_finds_its_own_spellings() {
        assert!(whatwg(b"a=1&access%5Ftoken=x", "access_token"));
        assert!(!whatwg(b"a=1;access_token=x", "access_token"));
        assert!(rack2(b"a=1;access_token=x", "access_token"));
        assert!(rack2(b"access_token[]=x", "access_token"));
        assert!(php(b"access.token=x", "access_token"));
        assert!(php(b"access+token=x", "access_token"));
        assert!(!php(b"my_access_token=x", "access_token"));
    }
}
