//! Finding the token: `Authorization: Bearer` (RFC 6750 §2.1, scheme
//! case-insensitive) or a configured cookie (the first of that name, read
//! as apps read it: see [`super::cookie`]). Ambiguity is refused: two
//! Authorization headers, two tokens, or header and cookie disagreeing.

use crate::error::Rejection;
use http::header::AUTHORIZATION;
use http::HeaderMap;

/// The raw token text, borrowed from the request headers.
pub fn extract<'a>(headers: &'a HeaderMap, cookie: Option<&str>) -> Result<&'a str, Rejection> {
    let from_header = bearer(headers)?;
    let from_cookie = match cookie {
        Some(name) => super::cookie::credential(headers, name)?,
        None => None,
    };
    match (from_header, from_cookie) {
        (Some(h), Some(c)) if h != c => Err(Rejection::InvalidRequest("token in both Authorization header and cookie")),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Rejection::NoToken),
    }
}

/// RFC 6750 §2.3 lets a client send the token as `?access_token=`, and
/// some app middlewares read it there (passport-http-bearer, Doorkeeper).
/// jwtgate never does, so on a route it authenticates such a parameter
/// would be a credential the app reads and jwtgate never checked: refused.
/// Names are read as loosely as the apps read them: pairs split on `&` and
/// `;` (Rack 2, Python before 3.9.2), `+` as a space, then as cookie names
/// are (percent-decoded, cut at NUL, `.` and ` ` as `_`, `[..]` dropped,
/// any ASCII case: see [`super::cookie`]), so `access.token=` (PHP),
/// `access_token[]=` (Rack) and `a=1;access_token=` are refused too.
pub fn refuse_query_token(query: Option<&str>) -> Result<(), Rejection> {
    let Some(query) = query else { return Ok(()) };
    // Only a query that could spell the name is parsed: an escape, or `access` in any case.
    if !query.contains('%') && !query.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"access")) {
        return Ok(());
    }
    let spelled = query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or(pair).replace('+', " ");
        super::cookie::reads_as(name.as_bytes(), b"access_token")
    });
    match spelled {
        true => {
            Err(Rejection::InvalidRequest("access_token in the query is not accepted; send an Authorization header"))
        }
        false => Ok(()),
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest("more than one Authorization header"));
    }
    let text = value.to_str().map_err(|_| Rejection::InvalidRequest("Authorization header is not ASCII"))?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, `Bearer<TAB>…`) on a route jwtgate
        // authenticates: the app might read a token from it that jwtgate
        // never checked, so it is refused rather than passed through.
        return Err(Rejection::InvalidRequest("authorization scheme is not Bearer"));
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(Rejection::InvalidRequest("empty bearer token"));
    }
    // memchr's SIMD scan: a byte loop over a long token showed in profiles.
    if memchr::memchr3(b' ', b',', b'\t', token.as_bytes()).is_some() {
        return Err(Rejection::InvalidRequest("more than one bearer token"));
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(extract(&headers(&[("authorization", "bEaReR abc")]), None), Ok("abc"));
    }

    #[test]
    fn ambiguity_is_refused() {
        let two = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(matches!(extract(&two, None), Err(Rejection::InvalidRequest(_))));
        let two_tokens = headers(&[("authorization", "Bearer a b")]);
        assert!(matches!(extract(&two_tokens, None), Err(Rejection::InvalidRequest(_))));
        let disagree = headers(&[("authorization", "Bearer a"), ("cookie", "at=b")]);
        assert!(matches!(extract(&disagree, Some("at")), Err(Rejection::InvalidRequest(_))));
    }

    #[test]
    fn a_query_token_is_refused_in_any_spelling() {
        for q in ["access_token=x", "a=1&access_token=", "access%5Ftoken=x", "%61ccess_token=x&b=2"] {
            assert!(matches!(refuse_query_token(Some(q)), Err(Rejection::InvalidRequest(_))), "{q}");
        }
        for q in [None, Some("a=1"), Some("my_access_token=x"), Some("q=%20"), Some("access=1&token=2")] {
            assert_eq!(refuse_query_token(q), Ok(()), "{q:?}");
        }
    }

    #[test]
    fn a_query_token_is_refused_as_loosely_as_apps_read_names() {
        // Found by the token fuzz target: each of these is `access_token`
        // to Rack 2 or PHP, and was forwarded.
        for q in ["a=1;access_token=x", "access_token[]=x", "access.token=x", "access+token=x", "ACCESS_TOKEN=x"] {
            assert!(matches!(refuse_query_token(Some(q)), Err(Rejection::InvalidRequest(_))), "{q}");
        }
    }

    #[test]
    fn cookie_is_used_when_configured_only() {
        let h = headers(&[("cookie", "x=1; at=tok; y=2")]);
        assert_eq!(extract(&h, Some("at")), Ok("tok"));
        let spaced = headers(&[("authorization", "Bearer tok"), ("cookie", "at =forged; at=tok")]);
        assert!(matches!(extract(&spaced, Some("at")), Err(Rejection::InvalidRequest(_))), "the first cookie counts");
        let repeated = headers(&[("cookie", "at=tok; at=older")]);
        assert_eq!(extract(&repeated, Some("at")), Ok("tok"), "two paths' cookies: the first, most specific");
        assert_eq!(extract(&h, None), Err(Rejection::NoToken));
        let basic = headers(&[("authorization", "Basic dTpw")]);
        assert!(matches!(extract(&basic, None), Err(Rejection::InvalidRequest(_))));
    }
}
