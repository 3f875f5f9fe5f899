//! Where a field's value is in the YAML text, asked of the YAML parser
//! itself: the fallback of [`super::ConfigError::at`] for spellings the
//! text search in `load` cannot see (explicit `? key` entries, escapes in
//! quoted keys). The text is parsed again, the field path followed through
//! maps and sequences, and the value found is refused on purpose: serde_yaml
//! puts the value's own position on that error.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

const EXPECTING: &str = "the position of a config field";

/// 1-based line and column of the value at `field` (`routes[0].match.path`).
pub fn of(text: &str, field: &str) -> Option<(usize, usize)> {
    let steps: Vec<Step<'_>> = field
        .split('.')
        .flat_map(|segment| {
            let (name, indexes) = segment.split_at(segment.find('[').unwrap_or(segment.len()));
            let index = indexes.split('[').filter_map(|i| i.strip_suffix(']')?.parse().ok()).map(Step::Index);
            (!name.is_empty()).then_some(Step::Key(name)).into_iter().chain(index)
        })
        .collect();
    let err = Seek(&steps).deserialize(serde_yaml::Deserializer::from_str(text)).err()?;
    let at = err.location().filter(|_| err.to_string().contains(EXPECTING))?;
    Some((at.line(), at.column()))
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Follows the remaining steps; `Ok(())` when the path is not there.
struct Seek<'a, 'b>(&'b [Step<'a>]);

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.first() {
            None => d.deserialize_any(Here),
            Some(Step::Key(_)) => d.deserialize_map(self),
            Some(Step::Index(_)) => d.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map or sequence on the way to a config field")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(Step::Key(name)) = self.0.first() else { return Ok(()) };
        while let Some(key) = map.next_key::<String>()? {
            if key == *name {
                return map.next_value_seed(Seek(&self.0[1..]));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(Step::Index(n)) = self.0.first() else { return Ok(()) };
        for _ in 0..*n {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(&self.0[1..])).map(|_| ())
    }
}

/// Refuses whatever value it is given (every `visit_*` left to its
/// default, an "invalid type" error), so the error carries its position.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_parser_finds_values_the_text_search_cannot() {
        let explicit = "? listen\n: nope\nroutes:\n  - match: { \"pa\\x74h\": x }\n";
        assert_eq!(super::of(explicit, "listen"), Some((2, 3)));
        assert_eq!(super::of(explicit, "routes[0].match.path"), Some((4, 25)));
        assert_eq!(super::of(explicit, "routes[1]"), None);
        assert_eq!(super::of(explicit, "upstream.url"), None);
    }
}
