//! Compiling `jwt:` into the [`Verifier`]: algorithm names parsed, key
//! files and secrets read and decoded, `jwks_url` and `discovery` sources
//! prepared (not fetched: that is [`Verifier::start_jwks`]). Errors name
//! the field.

use super::jwks::{ExtraRoots, JwksSettings, JwksSource};
use super::keys::{self, KeyError, KeySet};
use super::{IssuerRule, Verifier};
use crate::config::secret::{self, SecretError};
use crate::config::{ConfigError, IssuerSpec, JwksSpec, JwtSpec, KeySpec, Origin};
use crate::error::Causes;
use jsonwebtoken::Algorithm;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why one `keys[i]` entry could not be loaded; [`field`](Self::field) is
/// the sub-field to blame, so the config error points at its line.
#[derive(Debug, thiserror::Error)]
enum KeyLoadError {
    #[error("exactly one of pem_file, jwks_file, jwks_url, secret_env, secret_file, insecure_secret is required")]
    SourceCount,
    #[error("a jwks_file brings its own kids; remove kid")]
    KidWithJwksFile,
    #[error("cannot read {}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file, then (the source) what is wrong with its content:
    /// `keys/a.pem: not a PEM public key …`.
    #[error("{}", path.display())]
    Decode {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error(transparent)]
    SecretEnv(SecretError),
    #[error(transparent)]
    SecretFile(SecretError),
    /// Only a `jwks_url`, which the caller handles before loading keys.
    #[error("no key source")]
    NoSource,
}

impl KeyLoadError {
    /// The suffix of `keys[i]` the error is about (empty: the entry itself).
    fn field(&self) -> &'static str {
        match self {
            KeyLoadError::SourceCount | KeyLoadError::NoSource => "",
            KeyLoadError::KidWithJwksFile => ".kid",
            KeyLoadError::Read { field, .. } | KeyLoadError::Decode { field, .. } => field,
            KeyLoadError::SecretEnv(_) => ".secret_env",
            KeyLoadError::SecretFile(_) => ".secret_file",
        }
    }
}

/// The verifier of a `jwt:` section: every issuer, its algorithms and keys.
pub fn compile(spec: &JwtSpec, origin: &Origin<'_>) -> Result<Verifier, ConfigError> {
    if spec.issuers.is_empty() {
        return Err(ConfigError::at(origin, "jwt.issuers", "at least one issuer is required"));
    }
    let jwks = jwks_settings(&spec.jwks, origin)?;
    let mut rules = Vec::with_capacity(spec.issuers.len());
    for (i, issuer) in spec.issuers.iter().enumerate() {
        let at = format!("jwt.issuers[{i}]");
        if spec.issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
            let message = format!("duplicate issuer `{}`", issuer.issuer);
            return Err(ConfigError::at(origin, format!("{at}.issuer"), message));
        }
        rules.push(compile_issuer(issuer, &at, &jwks, origin)?);
    }
    let leeway_secs = spec.leeway.as_secs() as i64;
    Ok(Verifier::new(rules, leeway_secs, spec.max_token_bytes, spec.require_exp, spec.verified_cache_entries))
}

/// `jwt.jwks` checked, its CA file read.
fn jwks_settings(spec: &JwksSpec, origin: &Origin<'_>) -> Result<JwksSettings, ConfigError> {
    if spec.min_refresh > spec.max_refresh || spec.min_refresh.is_zero() || spec.fetch_timeout.is_zero() {
        let message = "need 0 < min_refresh <= max_refresh and a non-zero fetch_timeout";
        return Err(ConfigError::at(origin, "jwt.jwks", message));
    }
    let extra_roots = match &spec.ca_file {
        None => None,
        Some(p) => Some(
            ExtraRoots::from_pem_file(&origin.dir.join(p))
                .map_err(|e| ConfigError::at(origin, "jwt.jwks.ca_file", Causes(&e).to_string()))?,
        ),
    };
    Ok(JwksSettings::from_spec(spec, extra_roots))
}

fn compile_issuer(
    spec: &IssuerSpec,
    at: &str,
    jwks_settings: &JwksSettings,
    origin: &Origin<'_>,
) -> Result<IssuerRule, ConfigError> {
    let algorithms = compile_algorithms(&spec.algorithms, at, origin)?;
    let (keys, mut jwks) = compile_keys(&spec.keys, at, jwks_settings, origin)?;
    if spec.discovery {
        jwks.push(discovery_source(spec, at, jwks_settings, origin)?);
    }
    if keys.is_empty() && jwks.is_empty() {
        return Err(ConfigError::at(origin, format!("{at}.keys"), "at least one key is required (or discovery: true)"));
    }
    // Families of fetched keys are known only once fetched.
    if jwks.is_empty() {
        if let Some(alg) = algorithms.iter().find(|alg| !keys.families().any(|f| f == alg.family())) {
            let message = format!("{alg:?} is allowed but no key of its family is configured (an HMAC secret never verifies RS/ES/EdDSA, a public key never HS)");
            return Err(ConfigError::at(origin, format!("{at}.algorithms"), message));
        }
    }
    Ok(IssuerRule {
        issuer: spec.issuer.clone(),
        issuer_tag: Arc::from(super::issuer_tag(&spec.issuer)),
        audiences: spec.audiences.clone(),
        algorithms,
        keys,
        jwks,
    })
}

/// The source of `discovery: true`. A `jwks_url` beside it is refused:
/// two sets for one issuer, one of them not checked against the document.
fn discovery_source(
    spec: &IssuerSpec,
    at: &str,
    jwks_settings: &JwksSettings,
    origin: &Origin<'_>,
) -> Result<Arc<JwksSource>, ConfigError> {
    if let Some(i) = spec.keys.iter().position(|k| k.jwks_url.is_some()) {
        let message = "discovery: true finds the issuer's JWK Set; remove this jwks_url or set discovery: false";
        return Err(ConfigError::at(origin, format!("{at}.keys[{i}].jwks_url"), message));
    }
    JwksSource::discover(&spec.issuer, jwks_settings.clone())
        .map_err(|e| ConfigError::at(origin, format!("{at}.issuer"), Causes(&e).to_string()))
}

fn compile_algorithms(names: &[String], at: &str, origin: &Origin<'_>) -> Result<Vec<Algorithm>, ConfigError> {
    let mut algorithms = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let alg: Algorithm = name.parse().map_err(|_| {
            ConfigError::at(origin, format!("{at}.algorithms[{i}]"), format!("unknown algorithm `{name}`; expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA (`none` is never accepted)"))
        })?;
        algorithms.push(alg);
    }
    if algorithms.is_empty() {
        return Err(ConfigError::at(origin, format!("{at}.algorithms"), "at least one algorithm is required"));
    }
    Ok(algorithms)
}

/// The issuer's fixed keys, and its `jwks_url` sources.
fn compile_keys(
    specs: &[KeySpec],
    at: &str,
    jwks_settings: &JwksSettings,
    origin: &Origin<'_>,
) -> Result<(KeySet, Vec<Arc<JwksSource>>), ConfigError> {
    let mut keys = KeySet::default();
    let mut jwks = Vec::new();
    for (i, key) in specs.iter().enumerate() {
        let field = format!("{at}.keys[{i}]");
        if let Some(url) = &key.jwks_url {
            let others = [&key.kid, &key.pem_file, &key.jwks_file, &key.secret_env, &key.secret_file];
            if others.iter().any(|f| f.is_some()) || key.insecure_secret.is_some() {
                let message = "a jwks_url entry has no other field (the set brings its kids)";
                return Err(ConfigError::at(origin, field, message));
            }
            let source = JwksSource::new(url, jwks_settings.clone())
                .map_err(|e| ConfigError::at(origin, format!("{field}.jwks_url"), Causes(&e).to_string()))?;
            jwks.push(source);
            continue;
        }
        let loaded = load_key(key, origin.dir)
            .map_err(|e| ConfigError::at(origin, format!("{field}{}", e.field()), Causes(&e).to_string()))?;
        for k in loaded {
            keys.add(k).map_err(|e| ConfigError::at(origin, field.clone(), Causes(&e).to_string()))?;
        }
    }
    Ok((keys, jwks))
}

/// Loads one key source; the error names the sub-field that failed.
fn load_key(spec: &KeySpec, dir: &Path) -> Result<Vec<keys::Key>, KeyLoadError> {
    let kid = spec.kid.clone();
    let read = |field: &'static str, p: &str| {
        let path = dir.join(p);
        std::fs::read(&path).map(|bytes| (bytes, path.clone())).map_err(|source| KeyLoadError::Read {
            field,
            path,
            source,
        })
    };
    let sources = [
        spec.pem_file.is_some(),
        spec.jwks_file.is_some(),
        spec.jwks_url.is_some(),
        spec.secret_env.is_some(),
        spec.secret_file.is_some(),
        spec.insecure_secret.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(KeyLoadError::SourceCount);
    }
    if let Some(p) = &spec.pem_file {
        let (pem, path) = read(".pem_file", p)?;
        return keys::from_pem(kid, &pem).map(|k| vec![k]).map_err(|source| KeyLoadError::Decode {
            field: ".pem_file",
            path,
            source,
        });
    }
    if let Some(p) = &spec.jwks_file {
        if kid.is_some() {
            return Err(KeyLoadError::KidWithJwksFile);
        }
        let (json, path) = read(".jwks_file", p)?;
        return keys::from_jwks(&json).map_err(|source| KeyLoadError::Decode { field: ".jwks_file", path, source });
    }
    let secret = match (&spec.secret_env, &spec.secret_file, &spec.insecure_secret) {
        (Some(var), _, _) => secret::from_env(var).map_err(KeyLoadError::SecretEnv)?,
        (_, Some(p), _) => secret::from_file(&dir.join(p)).map_err(KeyLoadError::SecretFile)?,
        (_, _, Some(s)) => s.clone(),
        _ => return Err(KeyLoadError::NoSource),
    };
    Ok(vec![keys::from_secret(kid, secret.expose())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};

    const JWT: &str = "\
jwt:
  leeway: 1m30s
  issuers:
    - issuer: https://idp.example/
      algorithms: [HS256]
      keys:
        - { kid: k1, insecure_secret: an-hmac-secret }
";

    fn compiled(text: &str) -> Result<Verifier, ConfigError> {
        compile(&section::<JwtSpec>(text, "jwt"), &origin(text))
    }

    #[test]
    fn a_jwt_section_compiles_from_yaml() {
        let verifier = compiled(JWT).unwrap();
        let issuers: Vec<&IssuerRule> = verifier.issuers().collect();
        assert_eq!(issuers.len(), 1);
        assert_eq!(issuers[0].algorithms, [Algorithm::HS256]);
        assert_eq!(&*issuers[0].issuer_tag, super::super::issuer_tag("https://idp.example/"));
        assert_eq!(verifier.leeway_secs(), 90);
    }

    #[test]
    fn an_unknown_algorithm_is_refused_at_its_line() {
        let err = compiled(&JWT.replace("[HS256]", "[HS257]")).err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].algorithms[0]");
        assert_eq!(err.line_col.map(|(line, _)| line), Some(5), "{err}");
    }

    #[test]
    fn an_algorithm_without_a_key_of_its_family_is_refused() {
        let err = compiled(&JWT.replace("[HS256]", "[HS256, ES256]")).err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].algorithms");
        assert!(err.message.starts_with("ES256 is allowed but no key of its family"), "{err}");
    }

    #[test]
    fn a_duplicate_issuer_and_a_jwks_url_with_company_are_refused() {
        let twice = format!("{JWT}{}", &JWT[JWT.find("    - issuer").unwrap()..]);
        assert_eq!(compiled(&twice).err().unwrap().field, "jwt.issuers[1].issuer");
        let crowded = JWT.replace("{ kid: k1, insecure_secret: an-hmac-secret }", "{ kid: k1, jwks_url: http://idp/ }");
        assert_eq!(compiled(&crowded).err().unwrap().field, "jwt.issuers[0].keys[0]");
    }

    #[test]
    fn key_file_errors_name_the_sub_field_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let with_key = |key: &str| {
            let text = JWT.replace("{ kid: k1, insecure_secret: an-hmac-secret }", key);
            compile(&section::<JwtSpec>(&text, "jwt"), &Origin { dir: dir.path(), ..origin(&text) })
        };
        let missing = dir.path().join("absent.pem");
        let err = with_key("{ kid: k1, pem_file: absent.pem }").err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[0].pem_file");
        let cannot = format!("cannot read {}: ", missing.display());
        assert!(err.message.starts_with(&cannot) && err.message.len() > cannot.len(), "{err}");

        std::fs::write(dir.path().join("junk.pem"), "junk").unwrap();
        let err = with_key("{ kid: k1, pem_file: junk.pem }").err().unwrap();
        let junk = dir.path().join("junk.pem");
        assert_eq!(
            err.message,
            format!("{}: not a PEM public key of a supported type (RSA, EC P-256/P-384, Ed25519)", junk.display())
        );

        std::fs::write(dir.path().join("set.json"), r#"{"keys": 1}"#).unwrap();
        let err = with_key("{ jwks_file: set.json }").err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[0].jwks_file");
        let head = format!("{}: not a JWK Set: invalid type", dir.path().join("set.json").display());
        assert!(err.message.starts_with(&head), "the parser's detail of a local file is kept: {err}");

        std::fs::write(dir.path().join("secret"), "\n").unwrap();
        let err = with_key("{ kid: k1, secret_file: secret }").err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[0].secret_file");
        assert_eq!(err.message, format!("{} is empty", dir.path().join("secret").display()));

        let err = with_key("{ kid: k1, secret_env: JWTGATE_UNIT_SURELY_UNSET_KEY_5E1D }").err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[0].secret_env");
        assert_eq!(err.message, "environment variable JWTGATE_UNIT_SURELY_UNSET_KEY_5E1D is not set");

        let err = with_key("{ kid: k1, jwks_file: set.json }").err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[0].kid");
    }

    /// `JWT` with a discovery issuer named `issuer` and the given keys
    /// (YAML list items, or nothing).
    fn discovery(issuer: &str, keys: &str) -> String {
        format!(
            "jwt:\n  issuers:\n    - issuer: \"{issuer}\"\n      algorithms: [RS256]\n      discovery: true\n{keys}"
        )
    }

    #[test]
    fn a_discovery_issuer_needs_no_keys_and_may_keep_fixed_ones() {
        let verifier = compiled(&discovery("https://idp.example/", "")).unwrap();
        let rule = verifier.issuers().next().unwrap();
        assert!(rule.keys.is_empty());
        assert_eq!(rule.jwks.len(), 1);
        assert!(rule.jwks[0].is_discovery());
        assert_eq!(rule.jwks[0].url(), "https://idp.example/.well-known/openid-configuration");
        let loopback = compiled(&discovery("http://127.0.0.1:8080/realms/x", "")).unwrap();
        let url = loopback.issuers().next().unwrap().jwks[0].url();
        assert_eq!(url, "http://127.0.0.1:8080/realms/x/.well-known/openid-configuration");
        let pinned = "      keys:\n        - { kid: k1, insecure_secret: an-hmac-secret }\n";
        let both = compiled(&discovery("https://idp.example/", pinned).replace("[RS256]", "[RS256, HS256]")).unwrap();
        let rule = both.issuers().next().unwrap();
        assert_eq!((rule.keys.len(), rule.jwks.len()), (1, 1));
    }

    #[test]
    fn discovery_errors_name_the_field_and_line() {
        let with_url =
            "      keys:\n        - { kid: k1, insecure_secret: s }\n        - jwks_url: https://idp.example/jwks\n";
        let text = discovery("https://idp.example/", with_url);
        let err = compiled(&text).err().unwrap();
        assert_eq!(err.field, "jwt.issuers[0].keys[1].jwks_url");
        assert!(err.message.starts_with("discovery: true finds the issuer's JWK Set"), "{err}");
        assert_eq!(err.line_col.map(|(line, _)| line), Some(8), "{err}");

        for (issuer, says) in [
            ("http://idp.example/", "must be https (plain http only to a loopback host"),
            ("https://idp.example/?tenant=a", "no query or fragment"),
            ("https://user:pw@idp.example/", "credentials"),
            ("idp.example", "not an absolute http(s) URL"),
        ] {
            let text = discovery(issuer, "");
            let err = compiled(&text).err().unwrap();
            assert_eq!(err.field, "jwt.issuers[0].issuer", "{issuer}");
            assert!(err.message.starts_with("discovery needs the issuer as its URL: "), "{issuer}: {err}");
            assert!(err.message.contains(says), "{issuer}: {err}");
            assert_eq!(err.line_col.map(|(line, _)| line), Some(3), "{err}");
        }

        let nothing = discovery("https://idp.example/", "").replace("      discovery: true\n", "");
        let err = compiled(&nothing).err().unwrap();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("jwt.issuers[0].keys", "at least one key is required (or discovery: true)")
        );
    }

    #[test]
    fn jwks_defaults_are_the_config_defaults() {
        let spec = JwksSpec::default();
        let settings = JwksSettings::default();
        assert_eq!((settings.min_refresh, settings.max_refresh), (spec.min_refresh, spec.max_refresh));
        assert_eq!(
            (settings.unknown_kid_cooldown, settings.fetch_timeout),
            (spec.unknown_kid_cooldown, spec.fetch_timeout)
        );
        assert_eq!(settings.retry, spec.min_refresh.min(std::time::Duration::from_secs(10)));
        let bad = JWT.replace("  leeway: 1m30s\n", "  leeway: 1m30s\n  jwks: { min_refresh: 2h }\n");
        assert_eq!(compiled(&bad).err().unwrap().field, "jwt.jwks");
    }
}
