//! Replays every committed fuzz input (`fuzz/corpus/<target>/`, the
//! minimized corpora, and `fuzz/regressions/<target>/`, the inputs that
//! once failed) through the properties the fuzz targets check, on stable
//! and without cargo-fuzz: CI keeps every found bug fixed. The fuzzing
//! itself (nightly, libFuzzer) is described in `fuzz/README.md`.

#[cfg(test)]
mod fuzz_props;

#[cfg(test)]
mod replay {
    use super::fuzz_props;
    use std::path::{Path, PathBuf};

    fn inputs(target: &str) -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut files: Vec<PathBuf> = ["corpus", "regressions"]
            .iter()
            .filter_map(|dir| std::fs::read_dir(root.join(dir).join(target)).ok())
            .flat_map(|entries| entries.map(|e| e.unwrap().path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    }

    fn replay(target: &str, check: fn(&[u8])) {
        let files = inputs(target);
        assert!(files.len() >= 10, "fuzz/corpus/{target} holds {} files; the corpus is missing", files.len());
        let mut failed = Vec::new();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                failed.push(format!("{}: {why}", file.display()));
            }
        }
        assert!(failed.is_empty(), "{} inputs fail the {target} property:\n{}", failed.len(), failed.join("\n"));
    }

    #[test]
    fn token_corpus_keeps_its_properties() {
        replay("token", fuzz_props::token::check);
    }

    #[test]
    fn path_routes_corpus_keeps_its_properties() {
        replay("path_routes", fuzz_props::path_routes::check);
    }

    #[test]
    fn cookie_corpus_keeps_its_properties() {
        replay("cookie", fuzz_props::cookie::check);
    }

    #[test]
    fn config_corpus_keeps_its_properties() {
        replay("config", fuzz_props::config::check);
    }

    /// The properties are not vacuous: signed tokens reach the "verified"
    /// branch, and the table jwtgate compiled is the reference table.
    #[test]
    fn positive_controls_reach_the_checked_branches() {
        use fuzz_props::{path_routes, token};
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let claims = serde_json::json!({"iss": token::HS_ISSUER, "aud": "api", "exp": token::NOW + 60});
        let hs = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(token::HS_SECRET)).unwrap();
        assert!(token::verifies(&hs));
        token::check(format!("\u{1}ABearer {hs}\nCaccess_token={hs}").as_bytes());
        let es_claims = serde_json::json!({"iss": token::ES_ISSUER, "aud": "api", "exp": token::NOW + 60});
        let key = EncodingKey::from_ec_pem(token::EC_PRIVATE).unwrap();
        let es = encode(&Header::new(Algorithm::ES256), &es_claims, &key).unwrap();
        assert!(token::verifies(&es));
        token::check(format!("\u{0}ABearer {es}").as_bytes());

        for (method, path) in
            [(http::Method::GET, "/internal/x"), (http::Method::GET, "/static/a"), (http::Method::PUT, "/")]
        {
            let reference = path_routes::pick(&method, path.as_bytes());
            assert_eq!(path_routes::jwtgate_pick(&method, path), reference, "{method} {path}");
        }
        assert_eq!(path_routes::pick(&http::Method::GET, b"/reports/7/raw"), jwtgate::config::AuthMode::Deny);
    }
}
