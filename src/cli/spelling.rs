//! Compiled settings spelled as the YAML writes them, for `check` and
//! `explain`: `auth: none`, `on_store_error: fail_closed`, `30s`, `GET,
//! POST`. A reader can paste what they see back into the file; no Rust
//! `Debug` text (`Some(..)`, `FailClosed`) reaches them.

use crate::config::{AuthMode, MissingJti, OnStoreError};
use crate::routes::{HostMatch, PathMatch};
use std::time::Duration;

/// `auth:` values.
pub fn auth(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::Required => "required",
        AuthMode::Optional => "optional",
        AuthMode::None => "none",
        AuthMode::Deny => "deny",
    }
}

/// `revocation.on_store_error:` values.
pub fn on_store_error(value: OnStoreError) -> &'static str {
    match value {
        OnStoreError::FailClosed => "fail_closed",
        OnStoreError::FailOpen => "fail_open",
    }
}

/// `forward_auth.proxy:` values.
pub fn front_proxy(value: crate::config::FrontProxy) -> &'static str {
    match value {
        crate::config::FrontProxy::Nginx => "nginx",
        crate::config::FrontProxy::Traefik => "traefik",
        crate::config::FrontProxy::Envoy => "envoy",
    }
}

/// `revocation.missing_jti:` values.
pub fn missing_jti(value: MissingJti) -> &'static str {
    match value {
        MissingJti::Reject => "reject",
        MissingJti::Hash => "hash",
    }
}

/// A duration in the largest unit that states it exactly (`90s`, `5m`,
/// `250ms`), which the config's duration parser reads back as the same.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 {
        return match secs {
            0 => "0s".into(),
            s if s % 86_400 == 0 => format!("{}d", s / 86_400),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
    }
    match d.as_nanos() {
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n if n % 1000 == 0 => format!("{}us", n / 1000),
        n => format!("{n}ns"),
    }
}

/// `match.host:` as written (`*.example.com` for a suffix).
pub fn host(host: &HostMatch) -> String {
    match host {
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Suffix(suffix) => format!("*{suffix}"),
    }
}

/// The path form of a rule as its `match:` key says it.
pub fn path(path: &PathMatch) -> String {
    match path {
        PathMatch::Exact(p) => format!("path: {p}"),
        PathMatch::Prefix(p) => format!("path_prefix: {p}"),
        PathMatch::Regex(_, label) => match label.split_once(':') {
            Some(("glob", glob)) => format!("path_glob: {glob}"),
            Some(("regex", regex)) => format!("path_regex: {regex}"),
            _ => label.clone(),
        },
    }
}

/// A list as a YAML flow sequence's items (`GET, POST`); `empty` when
/// there are none.
pub fn list<T: std::fmt::Display>(items: &[T], empty: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Signature algorithms as the JOSE names (`RS256`, `EdDSA`, RFC 7518
/// §3.1), which are also the variant names `jsonwebtoken` gives them.
pub fn algorithms(algs: &[jsonwebtoken::Algorithm]) -> String {
    let names: Vec<String> = algs.iter().map(|a| format!("{a:?}")).collect();
    list(&names, "none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back_as_the_same_value() {
        let cases = [(30, "30s"), (90, "90s"), (300, "5m"), (3600, "1h"), (172_800, "2d"), (0, "0s")];
        for (secs, text) in cases {
            assert_eq!(duration(Duration::from_secs(secs)), text);
            assert_eq!(crate::config::parse_duration(text), Ok(Duration::from_secs(secs)));
        }
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(crate::config::parse_duration(&duration(Duration::from_micros(7))), Ok(Duration::from_micros(7)));
    }

    #[test]
    fn rules_are_spelled_as_their_match_keys() {
        assert_eq!(path(&PathMatch::Exact("/a".into())), "path: /a");
        assert_eq!(path(&PathMatch::prefix("/api")), "path_prefix: /api");
        assert_eq!(path(&PathMatch::glob("/s/**").unwrap()), "path_glob: /s/**");
        assert_eq!(path(&PathMatch::regex("/o/[0-9]+").unwrap()), "path_regex: /o/[0-9]+");
        assert_eq!(host(&HostMatch::parse("*.example.com").unwrap()), "*.example.com");
        assert_eq!(host(&HostMatch::parse("Api.Example.com").unwrap()), "api.example.com");
        assert_eq!(list::<String>(&[], "any"), "any");
    }
}
