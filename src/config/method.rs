//! The HTTP methods a config may name: those of the IANA HTTP Method
//! Registry (RFC 9110 §16.1), so a typo (`GTE`) is refused at load instead
//! of making a rule that never matches. Case-insensitive, as routes read
//! them (`get` is `GET`).

/// The registry's methods (RFC 9110 §9, RFC 5789, WebDAV and its
/// extensions: RFC 4918, 3253, 3648, 3744, 4437, 4791, 5323, 5842, and
/// LINK/UNLINK from RFC 2068), less `*` (reserved, not a method) and `PRI`
/// (the HTTP/2 connection preface, never a request a rule sees). `QUERY`
/// (draft-ietf-httpbis-safe-method-w-body, which registers it) is accepted
/// so rules can name it before every app has moved to it.
pub const REGISTERED: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "QUERY",
    "ACL",
    "BASELINE-CONTROL",
    "BIND",
    "CHECKIN",
    "CHECKOUT",
    "COPY",
    "LABEL",
    "LINK",
    "LOCK",
    "MERGE",
    "MKACTIVITY",
    "MKCALENDAR",
    "MKCOL",
    "MKREDIRECTREF",
    "MKWORKSPACE",
    "MOVE",
    "ORDERPATCH",
    "PROPFIND",
    "PROPPATCH",
    "REBIND",
    "REPORT",
    "SEARCH",
    "UNBIND",
    "UNCHECKOUT",
    "UNLINK",
    "UNLOCK",
    "UPDATE",
    "UPDATEREDIRECTREF",
    "VERSION-CONTROL",
];

/// `Ok` for a registered method (any case); else the message for the
/// config error, with the closest registered name when one is an obvious
/// typo away.
pub fn check_method(name: &str) -> Result<(), String> {
    let upper = name.to_ascii_uppercase();
    if REGISTERED.contains(&upper.as_str()) {
        return Ok(());
    }
    let known = "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, QUERY or a WebDAV method";
    Err(match closest(&upper) {
        Some(near) => format!("`{name}` is not a registered HTTP method; did you mean `{near}`?"),
        None => format!("`{name}` is not a registered HTTP method (expected {known})"),
    })
}

/// The registered method within one edit (two for names of seven letters
/// or more) of `upper`, when exactly one is nearest.
fn closest(upper: &str) -> Option<&'static str> {
    let limit = if upper.len() >= 7 { 2 } else { 1 };
    let scored: Vec<(usize, &'static str)> =
        REGISTERED.iter().map(|m| (edit_distance(upper, m), *m)).filter(|(d, _)| *d <= limit).collect();
    let best = scored.iter().map(|(d, _)| *d).min()?;
    let mut nearest = scored.iter().filter(|(d, _)| *d == best);
    match (nearest.next(), nearest.next()) {
        (Some((_, m)), None) => Some(m),
        _ => None,
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours (`GTE` → `GET` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d: Vec<Vec<usize>> =
        (0..=a.len()).map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_methods_pass_in_any_case() {
        for ok in ["GET", "get", "Patch", "PROPFIND", "version-control", "QUERY"] {
            assert_eq!(check_method(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_typo_is_refused_with_the_method_it_was_meant_to_be() {
        let cases = [("GTE", "GET"), ("POTS", "POST"), ("DELTE", "DELETE"), ("OPTINS", "OPTIONS"), ("PUTT", "PUT")];
        for (typo, meant) in cases {
            let err = check_method(typo).unwrap_err();
            assert!(err.contains(&format!("did you mean `{meant}`?")), "{typo}: {err}");
        }
        let cases = [("PROPFNDD", "PROPFIND")];
        for (typo, meant) in cases {
            assert!(check_method(typo).unwrap_err().contains(&format!("`{meant}`?")), "{typo}");
        }
        let err = check_method("FETCH").unwrap_err();
        assert!(err.contains("not a registered HTTP method") && !err.contains("did you mean"), "{err}");
        assert!(check_method("*").is_err() && check_method("PRI").is_err() && check_method("g t").is_err());
    }
}
