//! Human durations in the config: `250ms`, `30s`, `5m`, `1h`, `2d`.

use std::time::Duration;

/// Parses `<integer><unit>` with unit one of ms, s, m, h, d.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let hint =
        || format!("invalid duration `{text}`: expected a number and a unit (ms, s, m, h, d), e.g. `250ms` or `30s`");
    let value: u64 = digits.parse().map_err(|_| hint())?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(hint()),
    };
    value.checked_mul(millis_per_unit).map(Duration::from_millis).ok_or_else(hint)
}

/// `#[serde(with = "duration::serde_fmt")]` for `Duration` fields.
pub mod serde_fmt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
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
    fn nonsense_is_refused_with_a_hint() {
        for bad in ["", "5", "s", "5 parsecs", "-1s", "1.5s", "99999999999999999999d"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("expected a number and a unit"), "{bad}: {err}");
        }
    }
}
