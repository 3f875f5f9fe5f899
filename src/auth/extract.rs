//! Finding the token: `Authorization: Bearer` (RFC 6750 §2.1, scheme
//! case-insensitive) or a configured cookie. Ambiguity is refused: two
//! Authorization headers, two tokens, or header and cookie disagreeing.

use crate::error::Rejection;
use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

/// The raw token text, borrowed from the request headers.
pub fn extract<'a>(headers: &'a HeaderMap, cookie: Option<&str>) -> Result<&'a str, Rejection> {
    let from_header = bearer(headers)?;
    let from_cookie = match cookie {
        Some(name) => cookie_value(headers, name)?,
        None => None,
    };
    match (from_header, from_cookie) {
        (Some(h), Some(c)) if h != c => Err(Rejection::InvalidRequest("token in both Authorization header and cookie")),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Rejection::NoToken),
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
    if token.contains([' ', ',', '\t']) {
        return Err(Rejection::InvalidRequest("more than one bearer token"));
    }
    Ok(Some(token))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Rejection> {
    let mut found: Option<&str> = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            if k != name {
                continue;
            }
            let v = v.trim_matches('"');
            match found {
                Some(prev) if prev != v => return Err(Rejection::InvalidRequest("more than one token cookie")),
                _ => found = Some(v),
            }
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
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
    fn cookie_is_used_when_configured_only() {
        let h = headers(&[("cookie", "x=1; at=tok; y=2")]);
        assert_eq!(extract(&h, Some("at")), Ok("tok"));
        assert_eq!(extract(&h, None), Err(Rejection::NoToken));
        let basic = headers(&[("authorization", "Basic dTpw")]);
        assert!(matches!(extract(&basic, None), Err(Rejection::InvalidRequest(_))));
    }
}
