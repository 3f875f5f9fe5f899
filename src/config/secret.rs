//! Secret material: loaded from env or file at config load, held in a type
//! whose `Debug` never prints the bytes.

use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// Secret bytes. `Debug` prints `***` so a secret cannot reach a log line by
/// accident through `{:?}` of a config struct.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSource(Vec<u8>);

impl SecretSource {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(String::deserialize(d)?.into_bytes()))
    }
}

/// Why a secret could not be loaded. Names the variable or the file, never
/// the content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Empty once its one trailing newline is dropped.
    #[error("{} is empty", .0.display())]
    FileEmpty(PathBuf),
}

/// Reads a secret from an environment variable.
pub fn from_env(name: &str) -> Result<SecretSource, SecretError> {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => Ok(SecretSource(v.into_encoded_bytes())),
        Some(_) => Err(SecretError::EnvEmpty(name.to_string())),
        None => Err(SecretError::EnvUnset(name.to_string())),
    }
}

/// Reads a secret from a file; one trailing newline (as editors and
/// `kubectl create secret --from-file` leave it) is not part of the secret.
pub fn from_file(path: &Path) -> Result<SecretSource, SecretError> {
    let mut bytes = std::fs::read(path).map_err(|source| SecretError::Read { path: path.to_path_buf(), source })?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(SecretError::FileEmpty(path.to_path_buf()));
    }
    Ok(SecretSource(bytes))
}

/// A URL fit for a log line: the password of its userinfo replaced,
/// `redis://user:secret@host/0` → `redis://user:***@host/0`. The userinfo
/// ends at the authority's last `@` (a password may contain `@`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretSource::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "***");
    }

    #[test]
    fn file_secret_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(from_file(&p).unwrap().expose(), b"abc");
    }

    #[test]
    fn an_empty_or_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("token");
        std::fs::write(&empty, "\r\n").unwrap();
        let err = from_file(&empty).unwrap_err();
        assert!(matches!(&err, SecretError::FileEmpty(p) if p == &empty), "{err:?}");
        assert_eq!(err.to_string(), format!("{} is empty", empty.display()));

        let missing = dir.path().join("absent");
        let err = from_file(&missing).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read {}", missing.display()));
        let source = std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default();
        assert!(!source.is_empty() && !err.to_string().contains(&source), "the io error is the source: {err:?}");
    }

    #[test]
    fn an_unset_or_empty_variable_is_named() {
        let unset = "JWTGATE_UNIT_SURELY_UNSET_SECRET_91C2";
        assert!(std::env::var_os(unset).is_none());
        let err = from_env(unset).unwrap_err();
        assert!(matches!(&err, SecretError::EnvUnset(n) if n == unset), "{err:?}");
        assert_eq!(err.to_string(), format!("environment variable {unset} is not set"));
        // Setting a variable would race other tests' reads of the
        // environment; the empty case's text is checked as built.
        assert_eq!(SecretError::EnvEmpty("X".into()).to_string(), "environment variable X is empty");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact_url("redis://gate:s3cret@127.0.0.1:6379/3"), "redis://gate:***@127.0.0.1:6379/3");
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("rediss://u:p@ss@host:6380/0"), "rediss://u:***@host:6380/0");
        assert_eq!(redact_url("redis://:only-pass@host/1?x=a@b"), "redis://:***@host/1?x=a@b");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
