//! A rule's CORS policy, compiled: the origins, methods and headers it
//! allows, and the header values its answers carry, built once.

use super::compile::methods;
use crate::config::{ConfigError, CorsSpec, Origin, PreflightMode};
use http::{HeaderName, HeaderValue, Method};

#[derive(Debug, Clone)]
pub enum Cors {
    /// jwtgate answers preflights and adds the headers to responses.
    Answer(Box<CorsPolicy>),
    /// Preflights go to the app, unauthenticated; nothing is added.
    Forward,
}

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    /// `None`: any origin (`"*"`).
    origins: Option<Vec<String>>,
    /// `None`: any method (the rule lists none, nor does the policy).
    methods: Option<Vec<Method>>,
    /// Lower case.
    headers: Vec<HeaderName>,
    pub allow_methods: Option<HeaderValue>,
    pub allow_headers: Option<HeaderValue>,
    pub expose_headers: Option<HeaderValue>,
    pub credentials: bool,
    pub max_age: HeaderValue,
}

impl CorsPolicy {
    /// `origin` (as a browser sends it) is allowed.
    pub fn allows_origin(&self, origin: &[u8]) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin)),
        }
    }

    /// Any origin, without credentials: answered with `*`.
    pub fn any_origin(&self) -> bool {
        self.origins.is_none() && !self.credentials
    }

    pub fn allows_method(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| super::method_listed(m, method))
    }

    /// Every name in `Access-Control-Request-Headers` is allowed.
    pub fn allows_headers(&self, requested: &[u8]) -> bool {
        requested
            .split(|b| *b == b',')
            .map(|name| name.trim_ascii())
            .filter(|name| !name.is_empty())
            .all(|name| self.headers.iter().any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name)))
    }
}

/// `routes[i].cors`; `route_methods` are the rule's `match.methods`.
pub fn compile(spec: &CorsSpec, route_methods: &[Method], at: &str, origin: &Origin<'_>) -> Result<Cors, ConfigError> {
    let err = |field: &str, msg: &str| ConfigError::at(origin, format!("{at}.{field}"), msg);
    if spec.preflight == PreflightMode::Forward {
        let set = !spec.allow_origins.is_empty()
            || !spec.allow_methods.is_empty()
            || !spec.allow_headers.is_empty()
            || !spec.expose_headers.is_empty()
            || spec.allow_credentials;
        if set {
            return Err(err(
                "preflight",
                "with preflight: forward the app answers CORS: set no allow_* or expose_headers",
            ));
        }
        return Ok(Cors::Forward);
    }
    let origins = allowed_origins(spec, at, origin)?;
    if origins.is_none() && spec.allow_credentials {
        return Err(err("allow_credentials", "credentials cannot be allowed to any origin (\"*\"): list the origins"));
    }
    let listed = methods(&spec.allow_methods, &format!("{at}.allow_methods"), origin)?;
    let methods = match (listed.is_empty(), route_methods.is_empty()) {
        (false, _) => Some(listed),
        (true, false) => Some(route_methods.to_vec()),
        (true, true) => None,
    };
    let headers = header_names(&spec.allow_headers, &format!("{at}.allow_headers"), origin)?;
    let expose = header_names(&spec.expose_headers, &format!("{at}.expose_headers"), origin)?;
    let join =
        |items: Vec<&str>| (!items.is_empty()).then(|| items.join(", ")).and_then(|v| HeaderValue::from_str(&v).ok());
    Ok(Cors::Answer(Box::new(CorsPolicy {
        allow_methods: methods.as_ref().and_then(|m| join(m.iter().map(Method::as_str).collect())),
        allow_headers: join(headers.iter().map(HeaderName::as_str).collect()),
        expose_headers: join(expose.iter().map(HeaderName::as_str).collect()),
        origins,
        methods,
        headers,
        credentials: spec.allow_credentials,
        max_age: HeaderValue::from(spec.max_age.as_secs()),
    })))
}

/// `None` for `"*"`; each entry `scheme://host[:port]`, as a browser sends
/// `Origin` (no path, no trailing slash).
fn allowed_origins(spec: &CorsSpec, at: &str, origin: &Origin<'_>) -> Result<Option<Vec<String>>, ConfigError> {
    let field = format!("{at}.allow_origins");
    if spec.allow_origins.is_empty() {
        return Err(ConfigError::at(origin, field, "list the origins allowed (or \"*\")"));
    }
    if spec.allow_origins.iter().any(|o| o == "*") {
        if spec.allow_origins.len() > 1 {
            return Err(ConfigError::at(origin, field, "\"*\" already allows every origin: list it alone"));
        }
        return Ok(None);
    }
    let mut list = Vec::new();
    for (i, o) in spec.allow_origins.iter().enumerate() {
        let uri: Option<http::Uri> = o.parse().ok();
        let well_formed = uri.as_ref().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.authority().is_some()
                && u.path_and_query().is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
        }) && !o.ends_with('/');
        if !well_formed {
            let message =
                format!("`{o}` is not an origin: scheme://host[:port], no path (e.g. https://app.example.com)");
            return Err(ConfigError::at(origin, format!("{field}[{i}]"), message));
        }
        list.push(o.to_ascii_lowercase());
    }
    Ok(Some(list))
}

fn header_names(names: &[String], field: &str, origin: &Origin<'_>) -> Result<Vec<HeaderName>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            HeaderName::from_bytes(n.trim().as_bytes())
                .map_err(|_| ConfigError::at(origin, format!("{field}[{i}]"), format!("`{n}` is not a header name")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};

    fn policy(yaml: &str) -> Result<Cors, ConfigError> {
        let text = format!("cors:\n{yaml}");
        let spec: CorsSpec = section(&text, "cors");
        compile(&spec, &[Method::GET, Method::POST], "routes[0].cors", &origin(&text))
    }

    #[test]
    fn an_answer_policy_lists_what_it_allows() {
        let yaml = "  allow_origins: [https://App.example.com]\n  allow_headers: [Authorization, content-type]\n  max_age: 1h\n";
        let Ok(Cors::Answer(p)) = policy(yaml) else { panic!("an answer policy") };
        assert!(!p.any_origin());
        assert!(p.allows_origin(b"https://app.example.com"));
        assert!(!p.allows_origin(b"https://app.example.com.evil.test"));
        assert!(!p.allows_origin(b"http://app.example.com"));
        assert!(p.allows_method(&Method::POST) && p.allows_method(&Method::HEAD));
        assert!(!p.allows_method(&Method::DELETE), "the rule's methods by default");
        assert!(p.allows_headers(b"authorization, Content-Type"));
        assert!(p.allows_headers(b""));
        assert!(!p.allows_headers(b"authorization, x-admin"));
        assert_eq!(p.allow_methods.unwrap(), "GET, POST");
        assert_eq!(p.allow_headers.unwrap(), "authorization, content-type");
        assert_eq!(p.max_age, "3600");
    }

    #[test]
    fn bad_policies_name_their_field() {
        for (yaml, field) in [
            ("  allow_headers: [x]\n", "routes[0].cors.allow_origins"),
            ("  allow_origins: [\"*\"]\n  allow_credentials: true\n", "routes[0].cors.allow_credentials"),
            ("  allow_origins: [https://a.test/]\n", "routes[0].cors.allow_origins[0]"),
            ("  allow_origins: [a.test]\n", "routes[0].cors.allow_origins[0]"),
            ("  allow_origins: [\"https://a.test/x\"]\n", "routes[0].cors.allow_origins[0]"),
            ("  allow_origins: [\"*\", https://a.test]\n", "routes[0].cors.allow_origins"),
            ("  allow_origins: [https://a.test]\n  allow_headers: [\"bad name\"]\n", "routes[0].cors.allow_headers[0]"),
            ("  preflight: forward\n  allow_origins: [https://a.test]\n", "routes[0].cors.preflight"),
        ] {
            let err = policy(yaml).err().unwrap_or_else(|| panic!("{yaml} should be refused"));
            assert!(err.to_string().contains(field), "{yaml}: {err}");
        }
        assert!(matches!(policy("  preflight: forward\n"), Ok(Cors::Forward)));
    }
}
