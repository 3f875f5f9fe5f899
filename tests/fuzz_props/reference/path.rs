//! The most permissive reading of a request path an app could make: the
//! canonical form `C` the path property compares jwtgate's decision with.
//!
//! In order: every percent-escape decoded once (RFC 3986 §2.1; an app that
//! decodes before routing, `%2F` and `%3B` included); `\` read as `/`
//! (IIS, Windows servers); `;params` cut from every segment (RFC 3986
//! §3.3, as Tomcat and Spring drop them); repeated slashes merged (nginx
//! `merge_slashes`, Express); dot segments removed (RFC 3986 §5.2.4,
//! `remove_dot_segments`, written out from the RFC's steps A–E); slashes
//! merged again; one trailing slash dropped (Express non-strict routing);
//! ASCII case folded unless the app is case-sensitive (Express, IIS).

/// The canonical form of `raw` (a request path without query).
pub fn canonical(raw: &[u8], fold_case: bool) -> Vec<u8> {
    let decoded = super::percent_decode_all(raw);
    let slashed: Vec<u8> = decoded.iter().map(|b| if *b == b'\\' { b'/' } else { *b }).collect();
    let no_params = drop_params(&slashed);
    let dotless = remove_dot_segments(&merge_slashes(&no_params));
    let mut out = merge_slashes(&dotless);
    if out.is_empty() {
        out.push(b'/');
    }
    if out.len() > 1 && out.ends_with(b"/") {
        out.pop();
    }
    if fold_case {
        out.make_ascii_lowercase();
    }
    out
}

/// Each `/`-separated segment cut at its first `;`.
fn drop_params(path: &[u8]) -> Vec<u8> {
    let segments: Vec<&[u8]> =
        path.split(|b| *b == b'/').map(|seg| seg.split(|b| *b == b';').next().unwrap_or(seg)).collect();
    segments.join(&b'/')
}

fn merge_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for b in path {
        if !(*b == b'/' && out.last() == Some(&b'/')) {
            out.push(*b);
        }
    }
    out
}

/// RFC 3986 §5.2.4, step by step: `input` is consumed from the front,
/// `output` grows at the back.
pub fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut input: Vec<u8> = path.to_vec();
    let mut output: Vec<u8> = Vec::with_capacity(path.len());
    while !input.is_empty() {
        if input.starts_with(b"../") {
            // A: a leading "../" or "./" is removed.
            input.drain(..3);
        } else if input.starts_with(b"./") {
            input.drain(..2);
        } else if input.starts_with(b"/./") {
            // B: "/./" or a final "/." becomes "/".
            input.drain(..2);
        } else if input == b"/." {
            input = b"/".to_vec();
        } else if input.starts_with(b"/../") || input == b"/.." {
            // C: "/../" or a final "/.." becomes "/", and the last segment
            // (with its "/") is removed from the output.
            let len = if input == b"/.." { 3 } else { 4 };
            input.splice(..len, [b'/']);
            let cut = output.iter().rposition(|b| *b == b'/').unwrap_or(0);
            output.truncate(cut);
        } else if input == b"." || input == b".." {
            // D: a lone "." or "..".
            input.clear();
        } else {
            // E: the first segment, with its leading "/", moves to the output.
            let start = usize::from(input[0] == b'/');
            let end = input[start..].iter().position(|b| *b == b'/').map_or(input.len(), |i| i + start);
            output.extend(input.drain(..end));
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_hold() {
        // RFC 3986 §5.2.4 and §5.4.
        assert_eq!(remove_dot_segments(b"/a/b/c/./../../g"), b"/a/g");
        assert_eq!(remove_dot_segments(b"mid/content=5/../6"), b"mid/6");
        assert_eq!(remove_dot_segments(b"/b/c/../../../g"), b"/g");
        assert_eq!(remove_dot_segments(b"/b/c/g/.."), b"/b/c/");
        assert_eq!(remove_dot_segments(b"/b/c/./g/."), b"/b/c/g/");
    }

    #[test]
    fn the_canonical_form_is_the_loosest_reading() {
        assert_eq!(canonical(b"//Internal/x/", true), b"/internal/x");
        assert_eq!(canonical(b"/public/..%2Finternal", true), b"/internal");
        assert_eq!(canonical(b"/public/..%3Bx/internal", true), b"/internal");
        assert_eq!(canonical(b"/a;x/..;y/b\\c", false), b"/b/c");
        assert_eq!(canonical(b"/%2e%2e/%2e/", false), b"/");
        assert_eq!(canonical(b"/Logout//", false), b"/Logout");
    }
}
