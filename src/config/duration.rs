//! Human durations in the config, read by the `humantime` crate: a number
//! and a unit (`250ms`, `30s`, `5m`, `1h`, `1d`), fractions (`1.5s`) and
//! sums (`1m30s`, `1h 15m`) too.

use std::time::Duration;

/// A config duration `humantime` refused: the text as written, with
/// examples of what is accepted; the parser's own reason is the `source`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "invalid duration `{text}`: expected a number and a unit (ms, s, m, h, d), \
     e.g. `250ms`, `30s`, `1.5s` or `1m30s`"
)]
pub struct DurationError {
    pub text: String,
    #[source]
    pub reason: humantime::DurationError,
}

/// Parses a duration as `humantime` reads it; the error names the text and
/// what was wrong with it, with examples.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|reason| DurationError { text: text.trim().to_string(), reason })
}

/// `#[serde(with = "duration::serde_fmt")]` for `Duration` fields.
pub mod serde_fmt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        // serde keeps only a message: the reason goes into it here (this
        // module cannot use `crate::error::Causes`, config is the bottom).
        super::parse_duration(&text).map_err(|err| serde::de::Error::custom(format_args!("{err}: {}", err.reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_to_the_right_length() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn sums_and_fractions_parse() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 15m"), Ok(Duration::from_secs(4500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 30s "), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn nonsense_is_refused_with_a_hint() {
        for bad in ["", "5", "s", "5 parsecs", "-1s", "1.5.5s", "99999999999999999999d"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("expected a number and a unit"), "{bad}: {err}");
            assert!(err.starts_with(&format!("invalid duration `{}`", bad.trim())), "{bad}: {err}");
        }
    }

    #[test]
    fn the_reason_is_the_source_and_reaches_the_config_message() {
        let err = parse_duration(" 5 parsecs ").unwrap_err();
        assert_eq!(err.text, "5 parsecs");
        let reason = std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default();
        assert!(reason.contains("parsecs"), "{reason}");
        assert!(!err.to_string().contains(&reason), "Display repeats the source: {err}");

        let value = serde_yaml::Value::String("5 parsecs".into());
        let message = serde_fmt::deserialize(value).unwrap_err().to_string();
        assert!(message.contains("invalid duration `5 parsecs`: expected a number"), "{message}");
        assert!(message.contains(&format!("`1m30s`: {reason}")), "{message}");
    }
}
