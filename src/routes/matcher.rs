//! The match kinds of a rule: host, path, header. Each is compiled once
//! (lower-cased host, anchored regex) and matched without allocating.

use http::{HeaderMap, HeaderName, HeaderValue};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Literal, Repetition,
};

/// Why a rule's host or path pattern was refused; the regex crate's error,
/// which points into the pattern, is the source.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("`{0}` is not a host name or `*.domain` pattern")]
    Host(String),
    #[error("invalid regex")]
    Regex(#[source] regex::Error),
    #[error("invalid glob")]
    Glob(#[source] regex::Error),
    /// Re-reading a compiled rule to fold its case failed. Boxed: the
    /// parser's error (pattern and spans) is over 128 bytes, the rest small.
    #[error("no ASCII case-insensitive form of the pattern")]
    CaseParse(#[source] Box<regex_syntax::Error>),
    /// The folded pattern (every letter a class) is over the size limit.
    #[error("no ASCII case-insensitive form of the pattern")]
    CaseCompile(#[source] regex::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `api.example.com` (stored lower-case).
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself (stored as
    /// `.example.com`).
    Suffix(String),
}

impl HostMatch {
    pub fn parse(spec: &str) -> Result<Self, MatchError> {
        let lower = spec.trim().to_ascii_lowercase();
        let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        match lower.strip_prefix("*.") {
            Some(rest) if valid(rest) => Ok(HostMatch::Suffix(format!(".{rest}"))),
            None if valid(&lower) => Ok(HostMatch::Exact(lower)),
            _ => Err(MatchError::Host(spec.to_string())),
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
    /// `.` matches any character, newline too: a decoded `%0A` is part of
    /// the path an app routes on (found by the path_routes fuzz target: a
    /// deny glob missed `/files/x/private/a%0Ab`).
    pub fn regex(source: &str) -> Result<Self, MatchError> {
        let anchored = format!("(?s)^(?:{})$", source.trim_start_matches('^').trim_end_matches('$'));
        regex::Regex::new(&anchored)
            .map(|re| PathMatch::Regex(re, format!("regex:{source}")))
            .map_err(MatchError::Regex)
    }

    /// `path_glob`: `**` any number of segments, `*` any run of characters
    /// within one segment, everything else literal.
    ///
    /// Not `globset`: it reads `?`, `[..]` and `{a,b}` as syntax where these
    /// globs take them literally (a rule for `/docs/{id}` would change
    /// meaning), and its `case_insensitive` folds Unicode, which the fuzz
    /// target showed lets `/ſtatic/x` through a public `/static/**` rule.
    /// The glob compiles to the same anchored regex the `path_regex` rules
    /// use, with ASCII-only case folding.
    pub fn glob(source: &str) -> Result<Self, MatchError> {
        let mut pattern = String::from("(?s)^");
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
        regex::Regex::new(&pattern).map(|re| PathMatch::Regex(re, format!("glob:{source}"))).map_err(MatchError::Glob)
    }

    /// The same rule, ASCII case-insensitive (exact and prefix patterns are
    /// already folded by the config compiler). Not `(?i)`: that folds
    /// Unicode too (`ſ` matches `s`, the Kelvin sign `k`), so a public
    /// `/static/**` rule would cover `/ſtatic/x`, another path to an app
    /// that folds ASCII case only. Instead each ASCII letter of the pattern
    /// matches both its cases.
    pub fn case_insensitive(self) -> Result<Self, MatchError> {
        match self {
            PathMatch::Regex(re, source) => {
                let hir =
                    regex_syntax::Parser::new().parse(re.as_str()).map_err(|e| MatchError::CaseParse(Box::new(e)))?;
                regex::Regex::new(&ascii_case_insensitive(hir).to_string())
                    .map(|re| PathMatch::Regex(re, source))
                    .map_err(MatchError::CaseCompile)
            }
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

/// `hir` with every ASCII letter (in literals and classes) matching both
/// cases, and nothing else changed.
fn ascii_case_insensitive(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Literal(Literal(bytes)) => {
            let mut pieces = Vec::new();
            let mut run = Vec::new();
            for b in bytes.iter() {
                if b.is_ascii_alphabetic() {
                    pieces.push(Hir::literal(std::mem::take(&mut run)));
                    let (lower, upper) = (b.to_ascii_lowercase() as char, b.to_ascii_uppercase() as char);
                    let ranges = [ClassUnicodeRange::new(lower, lower), ClassUnicodeRange::new(upper, upper)];
                    pieces.push(Hir::class(Class::Unicode(ClassUnicode::new(ranges))));
                } else {
                    run.push(*b);
                }
            }
            pieces.push(Hir::literal(run));
            Hir::concat(pieces)
        }
        HirKind::Class(Class::Unicode(class)) => {
            let other_case = |r: &ClassUnicodeRange| {
                let shifted = |from: char, to: char, delta: i32| {
                    let (start, end) = (r.start().max(from), r.end().min(to));
                    let shift = |c: char| char::from_u32((c as i32 + delta) as u32).unwrap_or(c);
                    (start <= end).then(|| ClassUnicodeRange::new(shift(start), shift(end)))
                };
                [shifted('a', 'z', -32), shifted('A', 'Z', 32)]
            };
            let extra: Vec<ClassUnicodeRange> = class.iter().flat_map(other_case).flatten().collect();
            Hir::class(Class::Unicode(ClassUnicode::new(class.iter().copied().chain(extra))))
        }
        HirKind::Class(Class::Bytes(class)) => {
            let other_case = |r: &ClassBytesRange| {
                let shifted = |from: u8, to: u8, upper: bool| {
                    let (start, end) = (r.start().max(from), r.end().min(to));
                    let shift = |b: u8| if upper { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() };
                    (start <= end).then(|| ClassBytesRange::new(shift(start), shift(end)))
                };
                [shifted(b'a', b'z', true), shifted(b'A', b'Z', false)]
            };
            let extra: Vec<ClassBytesRange> = class.iter().flat_map(other_case).flatten().collect();
            Hir::class(Class::Bytes(ClassBytes::new(class.iter().copied().chain(extra))))
        }
        HirKind::Repetition(rep) => {
            Hir::repetition(Repetition { sub: Box::new(ascii_case_insensitive(*rep.sub)), ..rep })
        }
        HirKind::Capture(cap) => Hir::capture(Capture { sub: Box::new(ascii_case_insensitive(*cap.sub)), ..cap }),
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(ascii_case_insensitive).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.into_iter().map(ascii_case_insensitive).collect()),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Empty => Hir::empty(),
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

#[cfg(test)]
mod tests {
    use super::{HostMatch, MatchError, PathMatch};

    #[test]
    fn pattern_errors_keep_the_regex_error_as_source() {
        let err = PathMatch::regex("/orders/[0-9").unwrap_err();
        assert!(matches!(err, MatchError::Regex(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid regex");
        let why = std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default();
        assert!(why.contains("unclosed character class"), "{why}");
        let err = HostMatch::parse("a b").unwrap_err();
        assert_eq!(err.to_string(), "`a b` is not a host name or `*.domain` pattern");
    }

    #[test]
    fn case_insensitive_rules_fold_ascii_only() {
        // Found by the path_routes fuzz target: under `(?i)`, `/ſtatic/x`
        // and `/docs/K` (Kelvin sign) matched public rules.
        let glob = PathMatch::glob("/Static/**").unwrap().case_insensitive().unwrap();
        let regex = PathMatch::regex("/docs/[a-z]+|/Orders/[A-F0-9]+").unwrap().case_insensitive().unwrap();
        for (rule, path) in [(&glob, "/static/x"), (&glob, "/STATIC"), (&regex, "/DOCS/ab"), (&regex, "/orders/fa")] {
            assert!(rule.matches(path), "{} should match {path}", rule.label());
        }
        for (rule, path) in [(&glob, "/\u{17f}tatic/x"), (&regex, "/docs/\u{212a}"), (&regex, "/docs/\u{17f}")] {
            assert!(!rule.matches(path), "{} should not match {path}", rule.label());
        }
    }

    #[test]
    fn wildcards_match_a_decoded_newline() {
        // Found by the path_routes fuzz target: `.` skipped `\n`, so a deny
        // glob missed a path with a decoded `%0A` in it.
        let glob = PathMatch::glob("/files/*/private/**").unwrap().case_insensitive().unwrap();
        let regex = PathMatch::regex("/admin/.*").unwrap();
        assert!(glob.matches("/files/w/private/a\nb"));
        assert!(regex.matches("/admin/x\ny"));
    }
}
