//! The match kinds of a rule: host, path, header. Each is compiled once
//! (lower-cased host, anchored regex) and matched without allocating.

use http::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `api.example.com` (stored lower-case).
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself (stored as
    /// `.example.com`).
    Suffix(String),
}

impl HostMatch {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let lower = spec.trim().to_ascii_lowercase();
        let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        match lower.strip_prefix("*.") {
            Some(rest) if valid(rest) => Ok(HostMatch::Suffix(format!(".{rest}"))),
            None if valid(&lower) => Ok(HostMatch::Exact(lower)),
            _ => Err(format!("`{spec}` is not a host name or `*.domain` pattern")),
        }
    }

    /// `host` is the request's host without port, any case.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => host.eq_ignore_ascii_case(h),
            HostMatch::Suffix(suffix) => {
                host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Exact(String),
    /// Segment-aware prefix: `/api` matches `/api` and `/api/x`, not `/apix`.
    Prefix(String),
    /// Anchored (`^…$`) regex; globs compile to one too. The source is kept
    /// for labels and messages.
    Regex(regex::Regex, String),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) if p == "/" => true,
            PathMatch::Prefix(p) => {
                path.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Regex(re, _) => re.is_match(path),
        }
    }

    /// A prefix is stored without its trailing slash (`/api/` ≡ `/api`).
    pub fn prefix(p: &str) -> Self {
        let trimmed = p.trim_end_matches('/');
        PathMatch::Prefix(if trimmed.is_empty() { "/".into() } else { trimmed.into() })
    }

    /// `path_regex`, anchored at both ends.
    pub fn regex(source: &str) -> Result<Self, String> {
        let anchored = format!("^(?:{})$", source.trim_start_matches('^').trim_end_matches('$'));
        regex::Regex::new(&anchored)
            .map(|re| PathMatch::Regex(re, format!("regex:{source}")))
            .map_err(|e| e.to_string())
    }

    /// `path_glob`: `**` any number of segments, `*` any run of characters
    /// within one segment, everything else literal.
    pub fn glob(source: &str) -> Result<Self, String> {
        let mut pattern = String::from("^");
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("/**") {
                pattern.push_str("(?:/.*)?");
                rest = after;
            } else if let Some(after) = rest.strip_prefix("**") {
                pattern.push_str(".*");
                rest = after;
            } else if let Some(after) = rest.strip_prefix('*') {
                pattern.push_str("[^/]*");
                rest = after;
            } else {
                let ch = rest.chars().next().unwrap_or('/');
                pattern.push_str(&regex::escape(&ch.to_string()));
                rest = &rest[ch.len_utf8()..];
            }
        }
        pattern.push('$');
        regex::Regex::new(&pattern).map(|re| PathMatch::Regex(re, format!("glob:{source}"))).map_err(|e| e.to_string())
    }

    /// The same rule, case-insensitive (regexes get `(?i)`; exact and prefix
    /// patterns are already folded by the config compiler).
    pub fn case_insensitive(self) -> Result<Self, String> {
        match self {
            PathMatch::Regex(re, source) => regex::Regex::new(&format!("(?i){}", re.as_str()))
                .map(|re| PathMatch::Regex(re, source))
                .map_err(|e| e.to_string()),
            other => Ok(other),
        }
    }

    pub fn label(&self) -> String {
        match self {
            PathMatch::Exact(p) => format!("path:{p}"),
            PathMatch::Prefix(p) => format!("prefix:{p}"),
            PathMatch::Regex(_, source) => source.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    pub name: HeaderName,
    /// `None`: present with any value.
    pub value: Option<HeaderValue>,
}

impl HeaderMatch {
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        match &self.value {
            None => headers.contains_key(&self.name),
            Some(v) => headers.get_all(&self.name).iter().any(|h| h == v),
        }
    }
}
