//! The paths jwtgate answers itself, ahead of every rule: logout (revoke
//! this token), `logout_all` (every token of its subject) and the OpenID
//! Connect back-channel logout receiver; compiled from their sections.

use super::compile::{methods, path};
use super::Cors;
use crate::config::{ConfigError, CorsSpec, FileConfig, Origin, PathSpec};
use http::Method;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct LogoutRule {
    pub path: String,
    pub methods: Vec<Method>,
    pub forward: bool,
    /// `cors:` of the section (an answer policy).
    pub cors: Option<Arc<Cors>>,
}

impl LogoutRule {
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        path == self.path && !self.methods.is_empty() && super::method_listed(&self.methods, method)
    }
}

#[derive(Debug, Clone)]
pub struct BackchannelRule {
    pub path: String,
    pub issuer: String,
}

/// `logout`, `logout_all` and `backchannel_logout`, compiled.
#[derive(Debug)]
pub struct SpecialPaths {
    pub logout: LogoutRule,
    pub logout_all: Option<LogoutRule>,
    pub backchannel: Option<BackchannelRule>,
}

/// The special paths of a config; a back-channel issuer must be one of
/// `jwt.issuers`.
pub fn compile_special(file: &FileConfig, origin: &Origin<'_>) -> Result<SpecialPaths, ConfigError> {
    let cs = file.case_sensitive_paths;
    let logout_methods = methods(&file.logout.methods, "logout.methods", origin)?;
    let logout = LogoutRule {
        path: path(&file.logout.path, cs, "logout.path", origin)?,
        cors: own_cors(file.logout.cors.as_ref(), &logout_methods, "logout.cors", origin)?,
        methods: logout_methods,
        forward: file.logout.forward,
    };
    let logout_all = file.logout_all.as_ref().map(|p| path_rule(p, cs, "logout_all", origin)).transpose()?;
    let backchannel = match &file.backchannel_logout {
        None => None,
        Some(b) => {
            if !file.jwt.issuers.iter().any(|i| i.issuer == b.issuer) {
                let message = format!("`{}` is not one of jwt.issuers", b.issuer);
                return Err(ConfigError::at(origin, "backchannel_logout.issuer", message));
            }
            let path = path(&b.path, cs, "backchannel_logout.path", origin)?;
            Some(BackchannelRule { path, issuer: b.issuer.clone() })
        }
    };
    Ok(SpecialPaths { logout, logout_all, backchannel })
}

fn path_rule(spec: &PathSpec, cs: bool, at: &str, origin: &Origin<'_>) -> Result<LogoutRule, ConfigError> {
    let methods = methods(&spec.methods, &format!("{at}.methods"), origin)?;
    Ok(LogoutRule {
        path: path(&spec.path, cs, &format!("{at}.path"), origin)?,
        cors: own_cors(spec.cors.as_ref(), &methods, &format!("{at}.cors"), origin)?,
        methods,
        forward: false,
    })
}

/// A CORS policy on a path jwtgate answers: `preflight: forward` would send
/// the preflight to an app that never sees this path.
fn own_cors(
    spec: Option<&CorsSpec>,
    methods: &[Method],
    at: &str,
    origin: &Origin<'_>,
) -> Result<Option<Arc<Cors>>, ConfigError> {
    let Some(spec) = spec else { return Ok(None) };
    match super::cors::compile(spec, methods, at, origin)? {
        Cors::Forward => {
            let message = "jwtgate answers this path: give it an answer policy (allow_origins), not preflight: forward";
            Err(ConfigError::at(origin, format!("{at}.preflight"), message))
        }
        answer => Ok(Some(Arc::new(answer))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::origin;

    const FILE: &str = "\
listen: 127.0.0.1:0
upstream: { url: http://127.0.0.1:9 }
jwt:
  issuers:
    - { issuer: idp, algorithms: [HS256], keys: [{ insecure_secret: s }] }
logout: { path: /Bye, methods: [POST, delete] }
logout_all: { path: /bye-all }
backchannel_logout: { path: /oidc/logout, issuer: idp }
";

    fn compiled(text: &str) -> Result<SpecialPaths, ConfigError> {
        compile_special(&crate::config::parse_str(text, "test.yaml").unwrap(), &origin(text))
    }

    #[test]
    fn special_paths_compile_from_yaml() {
        let special = compiled(FILE).unwrap();
        assert_eq!(special.logout.path, "/bye", "paths compare without case by default");
        assert!(special.logout.matches(&Method::DELETE, "/bye"));
        assert!(!special.logout.matches(&Method::GET, "/bye"));
        assert!(special.logout_all.unwrap().matches(&Method::POST, "/bye-all"));
        assert_eq!(special.backchannel.unwrap().issuer, "idp");
    }

    #[test]
    fn a_backchannel_issuer_must_be_configured() {
        let err = compiled(&FILE.replace("issuer: idp }\n", "issuer: other }\n")).unwrap_err();
        assert_eq!(err.field, "backchannel_logout.issuer");
        assert_eq!(err.line_col.map(|(line, _)| line), Some(8), "{err}");
    }
}
