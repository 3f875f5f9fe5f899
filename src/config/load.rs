//! Reading the config: YAML → [`FileConfig`] (serde, with the field path
//! and line of any error), and [`ConfigError`], which every section's
//! compiler (in `auth`, `routes`, `revocation`, `upstream`, assembled by
//! `runtime::compile`) raises at a field of the [`Origin`] text.

use super::FileConfig;
use std::fmt;
use std::path::{Path, PathBuf};

/// A config error that says where: file, line and column when known, the
/// field path, and what is wrong. Never echoes values (they may be secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub line_col: Option<(usize, usize)>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error found after parsing, at `field`; the line is looked up in
    /// the source text so the message still points at the file position.
    pub fn at(origin: &Origin<'_>, field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            origin: origin.name.to_string(),
            line_col: origin.text.and_then(|t| {
                let found = locate_nearest(t, &field).map(|l| (l, key_column(t, l, &field)));
                found.or_else(|| super::position::of(t, &field))
            }),
            field,
            message: message.into(),
        }
    }
}

impl ConfigError {
    /// Like [`at`](Self::at), placed at the value itself as the YAML
    /// parser reads it (an item of a flow sequence, `methods: [GET, GTE]`,
    /// has its own column), falling back to `at`'s search.
    pub fn at_value(origin: &Origin<'_>, field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let exact = origin.text.and_then(|t| super::position::of(t, &field));
        let mut err = Self::at(origin, field, message);
        if exact.is_some() {
            err.line_col = exact;
        }
        err
    }
}

/// Where a config came from: its display name, its directory (relative key
/// paths resolve against it) and its text (to find line numbers).
pub struct Origin<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
    pub text: Option<&'a str>,
}

/// Values given on the command line that win over the file (and keep
/// winning on every reload): the sidecar injector sets the upstream port
/// per workload while the ConfigMap stays shared.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub upstream: Option<String>,
}

impl Overrides {
    /// An error at a field a flag replaced is the flag's: it names the
    /// flag (`--upstream: ...`), not a line of the file the value did not
    /// come from.
    pub fn attribute(&self, err: ConfigError) -> ConfigError {
        let flag = match err.field.as_str() {
            "listen" if self.listen.is_some() => "--listen",
            "upstream.url" if self.upstream.is_some() => "--upstream",
            _ => return err,
        };
        ConfigError { origin: flag.to_string(), line_col: None, field: String::new(), message: err.message }
    }
}

/// A config file as read: the name, directory and text its errors point
/// into (see [`Source::origin`]).
pub struct Source {
    pub name: String,
    pub dir: PathBuf,
    pub text: String,
}

impl Source {
    pub fn origin(&self) -> Origin<'_> {
        Origin { name: &self.name, dir: &self.dir, text: Some(&self.text) }
    }
}

/// Reads and parses a config file, command-line overrides applied; the
/// [`Source`] is what `runtime::compile` then needs to place its errors.
pub fn read_file(path: &Path, overrides: &Overrides) -> Result<(FileConfig, Source), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: name.clone(),
        line_col: None,
        field: String::new(),
        message: format!("cannot read config: {e}"),
    })?;
    let mut file = parse_str(&text, &name)?;
    if let Some(listen) = &overrides.listen {
        file.listen = listen.clone();
    }
    if let Some(upstream) = &overrides.upstream {
        file.upstream.url = upstream.clone();
    }
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok((file, Source { name, dir, text }))
}

/// Parses YAML text into the as-written config, refusing unknown fields.
pub fn parse_str(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let field = match err.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        let inner = err.into_inner();
        // serde_yaml places errors raised inside a value (a bad duration)
        // at the enclosing map; the field path finds the exact line.
        let serde_pos = inner.location().map(|l| (l.line(), l.column()));
        let line_col = match (locate(text, &field), serde_pos) {
            (Some(line), Some((l, c))) if l == line => Some((l, c)),
            (Some(line), _) => Some((line, key_column(text, line, &field))),
            (None, pos) => pos,
        };
        let message = strip_path(&strip_location(&inner.to_string()), &field);
        ConfigError { origin: origin.to_string(), line_col, field, message }
    })
}

/// serde_yaml appends " at line X column Y"; we print the position up front.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde_yaml starts nested errors with its own (shorter) path: `upstream: ...`.
fn strip_path(message: &str, field: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && field.starts_with(head) => rest.to_string(),
        _ => message.to_string(),
    }
}

/// Finds the line of a dotted field path such as `jwt.issuers[1].keys[0].pem_file`
/// by walking the YAML text: each name is looked for below the previous
/// match, each `[i]` counts list items. Best effort, for messages only.
fn locate(text: &str, field: &str) -> Option<usize> {
    walk(text, field).and_then(|(line, complete)| complete.then_some(line))
}

/// Like [`locate`], but when a later step is not found (a flow sequence,
/// JSON) the line of the deepest part that was; `None` only when not even
/// the first name is found.
fn locate_nearest(text: &str, field: &str) -> Option<usize> {
    walk(text, field).map(|(line, _)| line)
}

/// The 1-based line reached and whether the whole path was found.
fn walk(text: &str, field: &str) -> Option<(usize, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent = 0usize;
    for (depth, segment) in field.split('.').enumerate() {
        let (name, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        // `upstream: { url: … }`: a flow mapping keeps its keys on the line
        // of its parent.
        let parent = lines.get(from).copied().unwrap_or_default();
        let on_parent_line = depth > 0 && inline_keys(name).iter().any(|p| parent.contains(p.as_str()));
        if !name.is_empty() && !on_parent_line {
            match find_key(&lines, from, min_indent, name) {
                Some((at, indent)) => (from, min_indent) = (at, indent + 1),
                None if depth == 0 => return None,
                None => return Some((from + 1, false)),
            }
        }
        for index in indexes.split('[').filter_map(|s| s.strip_suffix(']')) {
            match index.parse().ok().and_then(|n| find_item(&lines, from + 1, n)) {
                Some((at, indent)) => (from, min_indent) = (at, indent),
                None => return Some((from + 1, false)),
            }
        }
    }
    Some((from + 1, true))
}

/// What may stand right before a key on its line: a flow mapping's `{` or
/// `,`, a sequence item's `-`.
const KEY_OPENERS: [char; 3] = ['{', ',', '-'];

/// 1-based column of `field`'s last key on 1-based `line` (inside a flow
/// mapping too), else of the line's first non-blank character.
fn key_column(text: &str, line: usize, field: &str) -> usize {
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else { return 1 };
    let last = field.rsplit('.').next().unwrap_or(field);
    let name = last.split('[').next().unwrap_or(last);
    let key = format!("{name}:");
    let at_key = l.match_indices(&key).find(|(i, _)| {
        let before = l[..*i].trim_end();
        before.is_empty() || before.ends_with(KEY_OPENERS)
    });
    match at_key {
        Some((i, _)) if !name.is_empty() => i + 1,
        _ => indent_of(l.trim_start_matches("- ")) + 1,
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// How `name` appears as a key inside a flow mapping, plain or quoted
/// (JSON is YAML too).
fn inline_keys(name: &str) -> Vec<String> {
    let keys = [format!("{name}:"), format!("\"{name}\":"), format!("'{name}':")];
    ["{ ", "{", ", ", ","].iter().flat_map(|open| keys.iter().map(move |key| format!("{open}{key}"))).collect()
}

fn find_key(lines: &[&str], from: usize, min_indent: usize, name: &str) -> Option<(usize, usize)> {
    let keys = [format!("{name}:"), format!("\"{name}\":"), format!("'{name}':")];
    let inline = inline_keys(name);
    lines.iter().enumerate().skip(from).find_map(|(i, line)| {
        let body = line.trim_start().trim_start_matches("- ");
        let hit = keys.iter().any(|k| body.starts_with(k.as_str())) || inline.iter().any(|p| line.contains(p.as_str()));
        (hit && indent_of(line) >= min_indent && !line.trim_start().starts_with('#'))
            .then_some((i, indent_of(line) + (line.trim_start().len() - body.len())))
    })
}

/// The `n`th item of the block sequence starting at line `from`; `None`
/// when the value is not one (a flow sequence on the key's line: the next
/// line is another key, whose list must not be taken for this one).
fn find_item(lines: &[&str], from: usize, n: usize) -> Option<(usize, usize)> {
    let significant = |l: &&str| !l.trim_start().is_empty() && !l.trim_start().starts_with('#');
    let first = lines.iter().enumerate().skip(from).find(|(_, l)| significant(l))?;
    if !first.1.trim_start().starts_with("- ") {
        return None;
    }
    let indent = indent_of(first.1);
    let mut count = 0;
    for (i, line) in lines.iter().enumerate().skip(first.0) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent_of(line) < indent {
            return None;
        }
        if indent_of(line) == indent && trimmed.starts_with("- ") {
            if count == n {
                return Some((i, indent));
            }
            count += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "listen: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:9\njwt:\n  issuers:\n    - issuer: a\n      algorithms: [HS256]\n      keys:\n        - { insecure_secret: s }\n    - issuer: b\n      algorithms: [RS256]\n      keys:\n        - { kid: k, pem_file: nope.pem }\n";

    #[test]
    fn unknown_field_names_line_and_path() {
        let text = MINIMAL.replace("  url:", "  uri:");
        let err = parse_str(&text, "c.yaml").unwrap_err();
        assert_eq!(err.field, "upstream.uri");
        assert_eq!(err.line_col.map(|l| l.0), Some(3));
        assert!(err.to_string().starts_with("c.yaml:3:"), "{err}");
        assert!(err.message.starts_with("unknown field `uri`"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_field() {
        let text = MINIMAL.replace("  url: http://127.0.0.1:9\n", "  url: http://127.0.0.1:9\n  timeout: 5 parsecs\n");
        let err = parse_str(&text, "c.yaml").unwrap_err();
        assert_eq!(err.field, "upstream.timeout");
        assert_eq!(err.line_col.map(|l| l.0), Some(4));
        assert!(err.message.starts_with("invalid duration"), "{err}");
    }

    #[test]
    fn shipped_configs_parse() {
        for (name, text) in [
            ("reference.yaml", include_str!("../../config/reference.yaml")),
            ("demo.yaml", include_str!("../../config/demo.yaml")),
            ("examples/gateway.yaml", include_str!("../../config/examples/gateway.yaml")),
        ] {
            if let Err(err) = parse_str(text, name) {
                panic!("{err}");
            }
        }
    }

    #[test]
    fn json_and_flow_sequences_point_at_the_nearest_line_found() {
        // Found by the config fuzz target: an error in a config written as
        // JSON (quoted keys) or with flow sequences had no line at all.
        let json =
            "{\"listen\": \"x\",\n \"jwt\": {\"issuers\": [{\"issuer\": \"a\", \"algorithms\": [\"HS257\"]}]}}\n";
        assert_eq!(locate(json, "listen"), Some(1));
        assert_eq!(locate(json, "jwt.issuers[0].algorithms[0]"), None, "not found exactly");
        assert_eq!(locate_nearest(json, "jwt.issuers[0].algorithms[0]"), Some(2), "the line of `issuers`");
        let flow = "jwt:\n  issuers: [ { issuer: a } ]\n";
        assert_eq!(locate_nearest(flow, "jwt.issuers[0].issuer"), Some(2));
        assert_eq!(locate_nearest(flow, "upstream.url"), None, "nothing of it in the text");
    }

    #[test]
    fn locate_walks_lists_and_inline_maps() {
        assert_eq!(locate(MINIMAL, "jwt.issuers[1].keys[0].pem_file"), Some(13));
        let flow = "listen: x\nupstream: { url: ftp://x, timeout: 3s }\njwt:\n  jwks: { ca_file: nope.pem }\n";
        assert_eq!(locate(flow, "upstream.url"), Some(2), "a flow mapping's key is on its parent's line");
        assert_eq!(locate(flow, "upstream.timeout"), Some(2));
        assert_eq!(locate(flow, "jwt.jwks.ca_file"), Some(4));
        assert_eq!(locate(MINIMAL, "jwt.issuers[1].algorithms"), Some(11));
        // A flow sequence's item is on its key's line, not in the next key's list.
        assert_eq!(locate_nearest(MINIMAL, "jwt.issuers[1].algorithms[0]"), Some(11));
        assert_eq!(locate(MINIMAL, "upstream.url"), Some(3));
    }
}
