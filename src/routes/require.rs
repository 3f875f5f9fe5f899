//! Route requirements on verified claims: issuers, audiences, scopes and
//! claim conditions. Unmet → 403 `insufficient_scope` (RFC 6750 §3.1).

use super::claim_headers::ClaimPath;
use crate::auth::Claims;
use crate::error::ProxyError;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum ClaimCondition {
    Equals(ClaimPath, Value),
    OneOf(ClaimPath, Vec<Value>),
    /// The claim is an array holding the value (or a string equal to it).
    Contains(ClaimPath, Value),
}

#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    pub claims: Vec<ClaimCondition>,
    /// `scopes` joined by spaces, for the challenge's `scope` attribute.
    pub scope_attr: Arc<str>,
}

impl Requirements {
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty() && self.audiences.is_empty() && self.scopes.is_empty() && self.claims.is_empty()
    }

    pub fn check(&self, claims: &Claims) -> Result<(), ProxyError> {
        let refuse = |why: &'static str| ProxyError::InsufficientScope { why, scope: self.scope_attr.clone() };
        if !self.issuers.is_empty() && !self.issuers.contains(&claims.iss) {
            return Err(refuse("token issuer not allowed on this route"));
        }
        if !self.audiences.is_empty() && !audiences(&claims.payload).any(|a| self.audiences.iter().any(|x| x == a)) {
            return Err(refuse("token audience not allowed on this route"));
        }
        if !self.scopes.is_empty() {
            let granted: Vec<&str> = scopes(&claims.payload).collect();
            if !self.scopes.iter().all(|s| granted.contains(&s.as_str())) {
                return Err(refuse("token lacks a required scope"));
            }
        }
        if !self.claims.iter().all(|c| c.holds(&claims.payload)) {
            return Err(refuse("token lacks a required claim"));
        }
        Ok(())
    }
}

impl ClaimCondition {
    fn holds(&self, payload: &serde_json::Map<String, Value>) -> bool {
        match self {
            ClaimCondition::Equals(path, want) => path.find(payload) == Some(want),
            ClaimCondition::OneOf(path, set) => path.find(payload).is_some_and(|v| set.contains(v)),
            ClaimCondition::Contains(path, want) => match path.find(payload) {
                Some(Value::Array(items)) => items.contains(want),
                Some(other) => other == want,
                None => false,
            },
        }
    }
}

fn audiences(payload: &serde_json::Map<String, Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match payload.get("aud") {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// Granted scopes: `scope` (space-separated string, RFC 8693 §4.2) and `scp`
/// (array or string, as Azure AD and Okta send it).
fn scopes(payload: &serde_json::Map<String, Value>) -> impl Iterator<Item = &str> {
    let from_scope = payload.get("scope").and_then(Value::as_str).into_iter().flat_map(str::split_whitespace);
    let from_scp = payload.get("scp").into_iter().flat_map(|v| match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
        Value::String(s) => s.split_whitespace().collect(),
        _ => Vec::new(),
    });
    from_scope.chain(from_scp)
}
