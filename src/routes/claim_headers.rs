//! Claims forwarded as request headers (`forward_claims`), for apps that
//! cannot read a JWT. Strings as is, numbers and booleans as text, arrays
//! joined with `,`, objects as compact JSON. A value holding a control
//! character (CR, LF, NUL, …), or an array element holding a comma, is
//! refused (401 `invalid_claims`), never forwarded or silently altered:
//! header injection and value smuggling must be impossible.

use crate::error::Rejection;
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// A claim name or dotted path (`realm_access.roles`). A top-level claim
/// whose name itself contains dots (URL-style names) is found first.
/// A claim name that is empty or has an empty segment (`a..b`, `.a`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a claim name or dotted path")]
pub struct ClaimPathError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    pub source: String,
    segments: Vec<String>,
}

impl ClaimPath {
    pub fn parse(source: &str) -> Result<Self, ClaimPathError> {
        let segments: Vec<String> = source.split('.').map(String::from).collect();
        if source.is_empty() || segments.iter().any(String::is_empty) {
            return Err(ClaimPathError(source.to_string()));
        }
        Ok(Self { source: source.to_string(), segments })
    }

    pub fn find<'a>(&self, payload: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = payload.get(&self.source) {
            return Some(v);
        }
        let (first, rest) = self.segments.split_first()?;
        rest.iter().try_fold(payload.get(first)?, |v, seg| v.as_object()?.get(seg))
    }
}

#[derive(Debug, Clone)]
pub struct ClaimHeader {
    pub claim: ClaimPath,
    pub header: HeaderName,
}

impl ClaimHeader {
    /// The header value for this claim, `None` when the claim is absent or null.
    pub fn value(&self, payload: &Map<String, Value>) -> Result<Option<HeaderValue>, Rejection> {
        let text = match self.claim.find(payload) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items.iter().map(render).collect();
                // `["a,admin"]` must not read as two values.
                if parts.iter().any(|p| p.contains(',')) {
                    return Err(Rejection::InvalidClaims("a forwarded array claim holds a comma"));
                }
                parts.join(",")
            }
            Some(v) => render(v),
        };
        if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(Rejection::InvalidClaims("a forwarded claim holds a control character"));
        }
        HeaderValue::from_bytes(text.as_bytes())
            .map(Some)
            .map_err(|_| Rejection::InvalidClaims("a forwarded claim cannot be a header value"))
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(claim: &str) -> ClaimHeader {
        ClaimHeader { claim: ClaimPath::parse(claim).unwrap(), header: HeaderName::from_static("x-c") }
    }

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_render_by_type() {
        let p = payload(
            json!({"sub": "u1", "n": 42, "b": true, "roles": ["a", "b"], "realm_access": {"roles": ["x"]}, "o": {"k": 1}, "z": null}),
        );
        assert_eq!(header("sub").value(&p).unwrap().unwrap(), "u1");
        assert_eq!(header("n").value(&p).unwrap().unwrap(), "42");
        assert_eq!(header("b").value(&p).unwrap().unwrap(), "true");
        assert_eq!(header("roles").value(&p).unwrap().unwrap(), "a,b");
        assert_eq!(header("realm_access.roles").value(&p).unwrap().unwrap(), "x");
        assert_eq!(header("o").value(&p).unwrap().unwrap(), r#"{"k":1}"#);
        assert_eq!(header("z").value(&p).unwrap(), None);
        assert_eq!(header("missing.path").value(&p).unwrap(), None);
    }

    #[test]
    fn control_characters_are_refused() {
        let p = payload(json!({"sub": "u1\r\nX-Admin: yes"}));
        assert!(matches!(header("sub").value(&p), Err(Rejection::InvalidClaims(_))));
    }

    #[test]
    fn an_empty_segment_is_refused_by_name() {
        for bad in ["", "a..b", ".a", "a."] {
            assert_eq!(ClaimPath::parse(bad), Err(ClaimPathError(bad.to_string())));
        }
        assert_eq!(ClaimPathError("a..b".into()).to_string(), "`a..b` is not a claim name or dotted path");
    }

    #[test]
    fn dotted_top_level_names_win() {
        let p = payload(json!({"https://example.com/roles": "r"}));
        assert_eq!(header("https://example.com/roles").value(&p).unwrap().unwrap(), "r");
    }
}
