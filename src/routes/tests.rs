use super::*;
use http::HeaderValue;
use serde_json::json;

fn head<'a>(method: &'a Method, host: Option<&'a str>, path: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead { method, host, path, headers }
}

#[test]
fn prefix_is_segment_aware_and_first_match_wins() {
    let table = RouteTable::new(vec![
        Route::simple(PathMatch::Exact("/healthz".into()), vec![], AuthMode::None),
        Route::simple(PathMatch::prefix("/api/"), vec![Method::GET], AuthMode::Deny),
        Route::simple(PathMatch::prefix("/api"), vec![], AuthMode::Optional),
    ]);
    let h = HeaderMap::new();
    let pick = |m: &Method, p: &str| table.pick(&head(m, None, p, &h)).auth;
    assert_eq!(pick(&Method::GET, "/healthz"), AuthMode::None);
    assert_eq!(pick(&Method::GET, "/healthz/x"), AuthMode::Required);
    assert_eq!(pick(&Method::GET, "/api/x"), AuthMode::Deny);
    assert_eq!(pick(&Method::POST, "/api/x"), AuthMode::Optional);
    assert_eq!(pick(&Method::GET, "/api"), AuthMode::Deny);
    assert_eq!(pick(&Method::POST, "/apix"), AuthMode::Required);
}

#[test]
fn hosts_match_exactly_or_by_subdomain_in_any_case() {
    let exact = HostMatch::parse("API.example.com").unwrap();
    assert!(exact.matches("api.EXAMPLE.com"));
    assert!(!exact.matches("x.api.example.com"));
    let wild = HostMatch::parse("*.example.com").unwrap();
    assert!(wild.matches("a.example.com") && wild.matches("a.b.Example.COM"));
    assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
    assert!(HostMatch::parse("*.").is_err() && HostMatch::parse("a b").is_err());
}

#[test]
fn regex_is_anchored_and_glob_respects_segments() {
    let re = PathMatch::regex("/orders/[0-9]+").unwrap();
    assert!(re.matches("/orders/42") && !re.matches("/orders/42/x") && !re.matches("/v1/orders/42"));
    let one = PathMatch::glob("/users/*/profile").unwrap();
    assert!(one.matches("/users/7/profile") && !one.matches("/users/7/8/profile"));
    let any = PathMatch::glob("/static/**").unwrap();
    assert!(any.matches("/static") && any.matches("/static/a/b.css") && !any.matches("/staticx"));
    let dots = PathMatch::glob("/files/*.txt").unwrap();
    assert!(dots.matches("/files/a.txt") && !dots.matches("/files/a_txt"));
}

#[test]
fn header_rules_need_presence_or_the_exact_value() {
    let mut h = HeaderMap::new();
    h.insert("x-tenant", HeaderValue::from_static("blue"));
    let present = HeaderMatch { name: HeaderName::from_static("x-tenant"), value: None };
    let blue = HeaderMatch { name: HeaderName::from_static("x-tenant"), value: Some(HeaderValue::from_static("blue")) };
    let red = HeaderMatch { name: HeaderName::from_static("x-tenant"), value: Some(HeaderValue::from_static("red")) };
    assert!(present.matches(&h) && blue.matches(&h) && !red.matches(&h));
    assert!(!present.matches(&HeaderMap::new()));
}

#[test]
fn rules_after_a_catch_all_or_a_duplicate_are_unreachable() {
    let table = RouteTable::new(vec![
        Route::simple(PathMatch::prefix("/api"), vec![Method::GET], AuthMode::None),
        Route::simple(PathMatch::prefix("/api"), vec![Method::GET], AuthMode::Deny),
        Route::simple(PathMatch::prefix("/api"), vec![Method::POST], AuthMode::Deny),
        Route::simple(PathMatch::prefix("/"), vec![], AuthMode::Required),
        Route::simple(PathMatch::Exact("/late".into()), vec![], AuthMode::None),
    ]);
    let found: Vec<usize> = table.unreachable().into_iter().map(|(i, _)| i).collect();
    assert_eq!(found, [1, 4]);
}

fn claims(payload: serde_json::Value) -> crate::auth::Claims {
    crate::auth::Claims {
        iss: "iss-a".into(),
        issuer_tag: Arc::from("t"),
        sub: None,
        jti: None,
        sid: None,
        exp_unix: None,
        nbf_unix: None,
        iat_unix: None,
        content_sha256: [0; 32],
        payload: payload.as_object().cloned().unwrap_or_default(),
        store_keys: Default::default(),
        verdict: Default::default(),
    }
}

#[test]
fn requirements_check_scopes_claims_issuers_and_audiences() {
    let req = Requirements {
        issuers: vec!["iss-a".into()],
        audiences: vec!["orders".into()],
        scopes: vec!["orders:read".into()],
        claims: vec![
            ClaimCondition::Contains(ClaimPath::parse("realm_access.roles").unwrap(), json!("admin")),
            ClaimCondition::OneOf(ClaimPath::parse("tier").unwrap(), vec![json!("gold"), json!("silver")]),
            ClaimCondition::Equals(ClaimPath::parse("email_verified").unwrap(), json!(true)),
        ],
        scope_attr: Arc::from("orders:read"),
    };
    let good = json!({"aud": ["x", "orders"], "scope": "a orders:read", "realm_access": {"roles": ["admin"]}, "tier": "gold", "email_verified": true});
    assert!(req.check(&claims(good.clone())).is_ok());
    let scp = json!({"aud": "orders", "scp": ["orders:read"], "realm_access": {"roles": ["admin"]}, "tier": "silver", "email_verified": true});
    assert!(req.check(&claims(scp)).is_ok());
    for (field, bad) in [
        ("scope", json!("orders:write")),
        ("aud", json!("billing")),
        ("realm_access", json!({"roles": ["user"]})),
        ("tier", json!("bronze")),
        ("email_verified", json!("true")),
    ] {
        let mut p = good.clone();
        p[field] = bad;
        let err = req.check(&claims(p)).unwrap_err();
        assert!(matches!(err, ProxyError::InsufficientScope { .. }), "{field}: {err:?}");
    }
    let mut other_issuer = claims(good);
    other_issuer.iss = "iss-b".into();
    assert!(req.check(&other_issuer).is_err());
}
