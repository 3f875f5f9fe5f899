//! A route's metric handles, registered when its config snapshot goes
//! live: every known series exists at 0 from then on (dashboards and
//! alerts see them before the first request), and a request bumps handles
//! it already holds instead of building and looking up a key.

use metrics::{Counter, Histogram};
use std::sync::Arc;
use std::time::Duration;

/// How a request ended: the `outcome` label and the access log's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent to the upstream, whatever it answered.
    Forwarded,
    /// Allowed by a forward-auth check (the asking proxy forwards it).
    Allowed,
    /// Refused by jwtgate (the reason is a separate label).
    Refused,
    /// The logout path revoked the token.
    LoggedOut,
    /// The logout-all path revoked every token of the subject.
    LoggedOutEverywhere,
    /// The OpenID Connect back-channel receiver revoked a session or subject.
    BackchannelLogout,
    /// A CORS preflight answered by the route's policy.
    Preflight,
    /// The revocation store failed and the policy refused (503).
    StoreUnavailable,
    /// The upstream could not be reached or its answer relayed (502).
    UpstreamError,
    /// The upstream sent no response head in time (504).
    UpstreamTimeout,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Forwarded,
        Outcome::Allowed,
        Outcome::Refused,
        Outcome::LoggedOut,
        Outcome::LoggedOutEverywhere,
        Outcome::BackchannelLogout,
        Outcome::Preflight,
        Outcome::StoreUnavailable,
        Outcome::UpstreamError,
        Outcome::UpstreamTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
            Outcome::LoggedOut => "logged_out",
            Outcome::LoggedOutEverywhere => "logged_out_everywhere",
            Outcome::BackchannelLogout => "backchannel_logout",
            Outcome::Preflight => "preflight",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The status classes this outcome answers with, pre-registered for
    /// the duration histogram (others are registered when first seen).
    fn status_classes(self) -> &'static [&'static str] {
        match self {
            Outcome::Forwarded => &["1xx", "2xx", "3xx", "4xx", "5xx"],
            Outcome::Refused => &["4xx", "5xx"],
            Outcome::Allowed
            | Outcome::LoggedOut
            | Outcome::LoggedOutEverywhere
            | Outcome::BackchannelLogout
            | Outcome::Preflight => &["2xx"],
            Outcome::StoreUnavailable | Outcome::UpstreamError | Outcome::UpstreamTimeout => &["5xx"],
        }
    }
}

/// `2xx` for 204: the `status_class` label.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The handles of one route label.
#[derive(Clone)]
pub struct RouteMetrics {
    route: Arc<str>,
    /// Indexed by the outcome's position in [`Outcome::ALL`].
    requests: Vec<Counter>,
    refusals: Vec<(&'static str, Counter)>,
    durations: Vec<(Outcome, &'static str, Histogram)>,
    upstream: Histogram,
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics").field("route", &self.route).finish_non_exhaustive()
    }
}

/// One finished request, as metrics count it.
pub struct Ended {
    pub outcome: Outcome,
    /// The refusal code, for [`Outcome::Refused`].
    pub reason: Option<&'static str>,
    pub status: u16,
    /// Until the response head was ready.
    pub duration: Duration,
    /// The upstream's part of it, when the request was sent.
    pub upstream: Option<Duration>,
}

impl RouteMetrics {
    /// Registers every series of `route` at 0; `reasons` are the refusal
    /// codes a request can be refused with.
    pub fn register(route: Arc<str>, reasons: &[&'static str]) -> Self {
        let requests = Outcome::ALL.iter().map(|o| requests(&route, *o)).inspect(|c| c.increment(0)).collect();
        let refusals = reasons.iter().map(|r| (*r, refusals(&route, r))).inspect(|(_, c)| c.increment(0)).collect();
        let durations = Outcome::ALL
            .iter()
            .flat_map(|o| o.status_classes().iter().map(move |class| (*o, *class)))
            .map(|(o, class)| (o, class, duration(&route, o, class)))
            .collect();
        let upstream = metrics::histogram!("jwtgate_upstream_duration_seconds", "route" => route.clone());
        Self { route, requests, refusals, durations, upstream }
    }

    pub fn record(&self, ended: &Ended) {
        // ALL lists the outcomes in declaration order (a test checks it).
        if let Some(counter) = self.requests.get(ended.outcome as usize) {
            counter.increment(1);
        }
        if let Some(reason) = ended.reason {
            match self.refusals.iter().find(|(r, _)| *r == reason) {
                Some((_, counter)) => counter.increment(1),
                None => refusals(&self.route, reason).increment(1),
            }
        }
        let class = status_class(ended.status);
        let seconds = ended.duration.as_secs_f64();
        match self.durations.iter().find(|(o, c, _)| *o == ended.outcome && *c == class) {
            Some((_, _, histogram)) => histogram.record(seconds),
            None => duration(&self.route, ended.outcome, class).record(seconds),
        }
        if let Some(upstream) = ended.upstream {
            self.upstream.record(upstream.as_secs_f64());
        }
    }
}

fn requests(route: &Arc<str>, outcome: Outcome) -> Counter {
    metrics::counter!("jwtgate_requests_total", "route" => route.clone(), "outcome" => outcome.as_str())
}

fn refusals(route: &Arc<str>, reason: &'static str) -> Counter {
    metrics::counter!("jwtgate_refusals_total", "route" => route.clone(), "reason" => reason)
}

fn duration(route: &Arc<str>, outcome: Outcome, class: &'static str) -> Histogram {
    metrics::histogram!(
        "jwtgate_request_duration_seconds",
        "route" => route.clone(), "outcome" => outcome.as_str(), "status_class" => class
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_a_distinct_label_and_status_classes() {
        let mut names: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
        assert!(Outcome::ALL.iter().enumerate().all(|(i, o)| *o as usize == i), "ALL in declaration order");
        assert!(Outcome::ALL.iter().all(|o| !o.status_classes().is_empty()));
    }

    #[test]
    fn status_classes_follow_the_first_digit() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(308), "3xx");
        assert_eq!(status_class(431), "4xx");
        assert_eq!(status_class(504), "5xx");
    }
}
