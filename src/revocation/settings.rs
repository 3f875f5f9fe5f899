//! Compiling `revocation:` into what the store is built from
//! ([`StoreSettings`]) and how revocation behaves ([`Policy`]). Both are
//! fixed at start: a reload compares them with the ones in force.

use super::legacy::LegacyRules;
use crate::config::{
    secret, ConfigError, MissingJti, OnStoreError, Origin, RedisSpec, RevocationSpec, SecretSource, SentinelSpec,
    StoreKind,
};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
// Built once per config load and compared on reload: its size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum StoreSettings {
    Memory,
    /// `nodes`: the server's URL, a cluster's seed nodes, or (with
    /// `sentinel`) the sentinels.
    Redis {
        nodes: Vec<String>,
        cluster: bool,
        sentinel: Option<SentinelSettings>,
        timeout: Duration,
        heartbeat: Duration,
        ping_timeout: Duration,
        tls_ca: Option<Vec<u8>>,
        /// Where the subscription is held when not on `nodes`
        /// (`subscribe_nodes`).
        subscribe_nodes: Vec<String>,
    },
}

/// The master a Redis Sentinel deployment hands out, and how to log in to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelSettings {
    pub master_name: String,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub db: i64,
    pub min_replicas_acked: u32,
}

/// How revocation behaves, from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub key_prefix: String,
    pub on_store_error: OnStoreError,
    pub missing_jti: MissingJti,
    pub leeway_secs: i64,
    pub max_token_lifetime: Duration,
    pub not_revoked_ttl: Duration,
    pub cache_entries: usize,
    pub circuit_failures: u32,
    pub circuit_cooldown: Duration,
    pub legacy: LegacyRules,
}

/// The store and the policy of a `revocation:` section; `leeway` is
/// `jwt.leeway` (a revocation outlives its token by it).
pub fn compile(
    spec: &RevocationSpec,
    leeway: Duration,
    origin: &Origin<'_>,
) -> Result<(StoreSettings, Policy), ConfigError> {
    let store = match (spec.store, &spec.redis) {
        (StoreKind::Memory, _) => StoreSettings::Memory,
        (StoreKind::Redis, None) => {
            let message = "store: redis needs a `redis:` section with a url";
            return Err(ConfigError::at(origin, "revocation.redis", message));
        }
        (StoreKind::Redis, Some(r)) => compile_redis(r, origin)?,
    };
    if spec.legacy.as_ref().is_some_and(|l| l.keys.is_empty()) {
        return Err(ConfigError::at(origin, "revocation.legacy.keys", "at least one key template is required"));
    }
    Ok((store, compile_policy(spec, leeway)))
}

fn compile_policy(spec: &RevocationSpec, leeway: Duration) -> Policy {
    Policy {
        key_prefix: spec.redis.as_ref().map_or_else(|| "jwtgate:".into(), |r| r.key_prefix.clone()),
        on_store_error: spec.on_store_error,
        missing_jti: spec.missing_jti,
        leeway_secs: leeway.as_secs() as i64,
        max_token_lifetime: spec.max_token_lifetime,
        not_revoked_ttl: spec.cache.not_revoked_ttl,
        cache_entries: spec.cache.max_entries,
        circuit_failures: spec.circuit.failures,
        circuit_cooldown: spec.circuit.cooldown,
        legacy: spec.legacy.as_ref().map_or_else(LegacyRules::default, |l| LegacyRules {
            templates: l.keys.clone(),
            values: l.values.clone(),
            cache_ttl: l.cache_ttl,
        }),
    }
}

fn compile_redis(r: &RedisSpec, origin: &Origin<'_>) -> Result<StoreSettings, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, format!("revocation.redis.{field}"), msg);
    let one_of = "exactly one of url, cluster_nodes, sentinel is required";
    let (nodes, list): (Vec<String>, &str) = match (&r.url, r.cluster_nodes.is_empty(), &r.sentinel) {
        (Some(url), true, None) => (vec![url.clone()], "url"),
        (None, false, None) => (r.cluster_nodes.clone(), "cluster_nodes"),
        (None, true, Some(s)) => (s.nodes.clone(), "sentinel.nodes"),
        _ => return Err(ConfigError::at(origin, "revocation.redis", one_of)),
    };
    if nodes.is_empty() {
        return Err(err(list, "at least one node is required".into()));
    }
    let sentinel = r.sentinel.as_ref().map(|s| compile_sentinel(s, origin)).transpose()?;
    let store_nodes = nodes.iter().enumerate().map(|(i, node)| match r.url {
        Some(_) => ("url".to_string(), node),
        None => (format!("{list}[{i}]"), node),
    });
    let subscribe_nodes = r.subscribe_nodes.iter().enumerate().map(|(i, node)| (format!("subscribe_nodes[{i}]"), node));
    for (field, node) in store_nodes.chain(subscribe_nodes) {
        redis::Client::open(node.as_str()).map_err(|e| err(&field, format!("not a usable redis url: {e}")))?;
    }
    let tls_ca = match &r.tls_ca_file {
        None => None,
        Some(p) => {
            let path = origin.dir.join(p);
            Some(std::fs::read(&path).map_err(|e| err("tls_ca_file", format!("cannot read {}: {e}", path.display())))?)
        }
    };
    if tls_ca.is_some() && r.url.is_none() {
        return Err(err("tls_ca_file", "a private CA is supported with `url` only".into()));
    }
    // A zero interval would stop the subscriber; a zero PING timeout
    // would drop every subscription at its first heartbeat.
    for (field, value) in [("heartbeat", r.heartbeat), ("ping_timeout", r.ping_timeout)] {
        if value.is_zero() {
            return Err(err(field, "must be more than zero".into()));
        }
    }
    let cluster = !r.cluster_nodes.is_empty();
    let (timeout, heartbeat, ping_timeout) = (r.timeout, r.heartbeat, r.ping_timeout);
    let subscribe_nodes = r.subscribe_nodes.clone();
    Ok(StoreSettings::Redis { nodes, cluster, sentinel, timeout, heartbeat, ping_timeout, tls_ca, subscribe_nodes })
}

fn compile_sentinel(spec: &SentinelSpec, origin: &Origin<'_>) -> Result<SentinelSettings, ConfigError> {
    if spec.master_name.is_empty() {
        return Err(ConfigError::at(origin, "revocation.redis.sentinel.master_name", "must not be empty"));
    }
    let password = match &spec.password_env {
        None => None,
        Some(name) => Some(secret::from_env(name).map_err(|e| {
            ConfigError::at(origin, "revocation.redis.sentinel.password_env", crate::error::Causes(&e).to_string())
        })?),
    };
    Ok(SentinelSettings {
        master_name: spec.master_name.clone(),
        username: spec.username.clone(),
        password,
        db: spec.db,
        min_replicas_acked: spec.min_replicas_acked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};

    const REVOCATION: &str = "\
revocation:
  store: redis
  redis:
    url: redis://127.0.0.1:6379/0
    key_prefix: \"app:\"
    heartbeat: 500ms
  on_store_error: fail_open
  cache: { max_entries: 10, not_revoked_ttl: 1.5s }
";

    fn compiled(text: &str) -> Result<(StoreSettings, Policy), ConfigError> {
        compile(&section::<RevocationSpec>(text, "revocation"), Duration::from_secs(30), &origin(text))
    }

    #[test]
    fn a_revocation_section_compiles_from_yaml() {
        let (store, policy) = compiled(REVOCATION).unwrap();
        let StoreSettings::Redis { nodes, cluster, heartbeat, .. } = store else { panic!("{store:?}") };
        assert_eq!(
            (nodes, cluster, heartbeat),
            (vec!["redis://127.0.0.1:6379/0".into()], false, Duration::from_millis(500))
        );
        assert_eq!((policy.key_prefix.as_str(), policy.on_store_error), ("app:", OnStoreError::FailOpen));
        assert_eq!(
            (policy.cache_entries, policy.not_revoked_ttl, policy.leeway_secs),
            (10, Duration::from_millis(1500), 30)
        );
    }

    #[test]
    fn subscribe_nodes_are_kept_beside_the_store_nodes() {
        let text =
            REVOCATION.replace("heartbeat: 500ms", "heartbeat: 500ms\n    subscribe_nodes: [redis://10.0.0.2:6379]");
        let (store, _) = compiled(&text).unwrap();
        let StoreSettings::Redis { nodes, subscribe_nodes, .. } = store else { panic!("{store:?}") };
        assert_eq!(
            (nodes, subscribe_nodes),
            (vec!["redis://127.0.0.1:6379/0".into()], vec!["redis://10.0.0.2:6379".into()])
        );
        let (plain, _) = compiled(REVOCATION).unwrap();
        assert!(matches!(plain, StoreSettings::Redis { subscribe_nodes, .. } if subscribe_nodes.is_empty()));
    }

    #[test]
    fn the_default_section_is_the_memory_store() {
        let (store, policy) = compiled("revocation: {}\n").unwrap();
        assert_eq!(store, StoreSettings::Memory);
        assert_eq!(policy.key_prefix, "jwtgate:");
    }

    #[test]
    fn bad_store_settings_name_their_field_and_line() {
        for (from, to, field, line) in [
            ("  redis:\n    url: redis://127.0.0.1:6379/0\n", "  redis:\n", "revocation.redis", 3),
            ("url: redis://127.0.0.1:6379/0", "url: http://x", "revocation.redis.url", 4),
            ("heartbeat: 500ms", "heartbeat: 0s", "revocation.redis.heartbeat", 6),
            (
                "heartbeat: 500ms",
                "heartbeat: 500ms\n    subscribe_nodes:\n      - redis://127.0.0.1:6380\n      - http://x",
                "revocation.redis.subscribe_nodes[1]",
                9,
            ),
            ("store: redis\n  redis:", "store: redis\n  legacy: { keys: [] }\n  redis:", "revocation.legacy.keys", 3),
        ] {
            let text = REVOCATION.replace(from, to);
            let err = compiled(&text).unwrap_err();
            assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), (field, Some(line)), "{text}\n{err}");
        }
    }
}
